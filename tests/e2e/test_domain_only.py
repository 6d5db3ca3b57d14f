"""Domain-only clients against `corral serve --tls`: configured with E2B_DOMAIN, an API key and
the CA (SSL_CERT_FILE / NODE_EXTRA_CA_CERTS) and nothing else, they derive https://api.<domain>
and https://<port>-<id>.<domain> themselves. Covered: the npm SDKs, the old e2b 1.x Python SDK
(which has no E2B_API_URL at all) and E2B's own `e2b-mcp-server` from PyPI, started over stdio
by the official `mcp` client, running code.

Unlike the current Python SDK (whose resolver answers *.localhost itself), these resolve names
with glibc, and this Debian host does not resolve *.localhost. Hosts with systemd-resolved or
nss-myhostname do; the tests get the same in a private mount namespace: nss-myhostname's module
(unpacked by `make client-deps`) and an nsswitch.conf that uses it, bind-mounted for the client
only. Nothing on the host changes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import E2E_KEY, REPO
from tests.e2e.node_client import JS_DIR, client_env, node_binary
from tests.network.fakenet import DNS_IP, build_internet, make_tls_context
from tests.processes import stop

pytestmark = [pytest.mark.e2e, pytest.mark.root]

CLIENTS = REPO / ".cache" / "clients"
MCP_PYTHON = CLIENTS / "e2b-mcp-server" / "bin" / "python"
NSS_DIR = CLIENTS / "nss"
SYSTEM_NSS = [Path("/lib/x86_64-linux-gnu/libnss_myhostname.so.2"), Path("/usr/lib/x86_64-linux-gnu/libnss_myhostname.so.2")]
CAN_NET = os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", "nft", "nsenter", "openssl", "unshare"))
PORT = 3443
NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files myhostname dns\n"


KILL_ALL = """
import ssl, sys, httpx
url, key, ca = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca)
for s in httpx.get(url + "/v2/sandboxes", headers={"X-API-Key": key}, verify=ctx, timeout=10).json():
    httpx.delete(url + "/sandboxes/" + s["sandboxID"], headers={"X-API-Key": key}, verify=ctx, timeout=30)
print(len(httpx.get(url + "/v2/sandboxes", headers={"X-API-Key": key}, verify=ctx, timeout=10).json()))
"""


@dataclass
class TlsServer:
    port: int
    ca: Path
    proc: subprocess.Popen
    log: Path
    enter: list[str]              # nsenter into the namespace where the server listens

    @property
    def domain(self) -> str:
        return f"e2b.localhost:{self.port}"

    def kill_all(self) -> int:
        """Kill every sandbox; return how many are left (0)."""
        done = subprocess.run([*self.enter, sys.executable, "-c", KILL_ALL, f"https://127.0.0.1:{self.port}", E2E_KEY,
                               str(self.ca)], capture_output=True, text=True, timeout=180, cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
        return int(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """`corral serve --tls` with egress on (E2B's old SDKs ask for internet by default), which is
    only safe inside network namespaces the test made: the server and its clients live in the
    "world" namespace of tests/network/fakenet.py, whose only route leads to a fake internet."""
    if not CAN_NET:
        pytest.skip("needs root, ip, nft, nsenter and openssl")
    root = tmp_path_factory.mktemp("domain")
    loop = asyncio.new_event_loop()
    net = loop.run_until_complete(build_internet(make_tls_context(root)))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    enter = ["nsenter", f"--net={net.world_path}"]
    data = root / "data"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "CORRAL_"))},
           "CORRAL_API_KEY": E2E_KEY, "CORRAL_DNS_UPSTREAMS": DNS_IP, "CORRAL_NETWORK_POOL": "10.211.0.0/16",
           "CORRAL_POOL": "", "CORRAL_INTERPRETER_TOKEN": "optional"}
    log = root / "server.log"
    proc = subprocess.Popen([*enter, sys.executable, "-m", "corral.cli.main", "serve", "--tls", "--port", str(PORT),
                             "--data-dir", str(data)], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            cwd=REPO)
    server = TlsServer(PORT, data / "tls" / "ca.pem", proc, log, enter)
    try:
        deadline = time.monotonic() + 90
        while b"Uvicorn running on" not in log.read_bytes():
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("TLS server did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        yield server
    finally:
        try:
            server.kill_all()
        except (AssertionError, subprocess.TimeoutExpired, ValueError, IndexError):
            pass
        stop(proc, timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(net.close())
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


def localhost_names(server: TlsServer, argv: list[str], env: dict[str, str],
                    tmp: Path) -> tuple[list[str], dict[str, str]]:
    """`argv` in the server's network namespace and a private mount namespace whose glibc
    resolves *.localhost to loopback."""
    if not any(p.exists() for p in SYSTEM_NSS):
        if not (NSS_DIR / "libnss_myhostname.so.2").exists():
            pytest.fail("nss-myhostname is missing: run `make client-deps`")
        env = {**env, "LD_LIBRARY_PATH": str(NSS_DIR)}
    conf = tmp / "nsswitch.conf"
    conf.write_text(NSSWITCH)
    script = 'mount --bind "$1" /etc/nsswitch.conf && shift && exec "$@"'
    return [*server.enter, shutil.which("unshare") or "unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", script, "sh", str(conf), *argv], env


def _domain_env(server: TlsServer, home: Path) -> dict[str, str]:
    return client_env({"E2B_API_KEY": E2E_KEY, "E2B_DOMAIN": server.domain, "SSL_CERT_FILE": str(server.ca),
                       "NODE_EXTRA_CA_CERTS": str(server.ca)}, home)


def test_the_name_trick_is_needed_and_private(tls_server: TlsServer, tmp_path: Path) -> None:
    """Without the namespace glibc cannot resolve the API host here, and the host's own
    nsswitch.conf is untouched by the test."""
    before = Path("/etc/nsswitch.conf").read_text()
    argv, env = localhost_names(tls_server, ["getent", "hosts", f"api.{tls_server.domain.split(':')[0]}"],
                                dict(os.environ), tmp_path)
    inside = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert inside.returncode == 0 and ("127.0.0.1" in inside.stdout or "::1" in inside.stdout), inside
    assert Path("/etc/nsswitch.conf").read_text() == before


def test_npm_sdks_with_e2b_domain_only(tls_server: TlsServer, tmp_path: Path) -> None:
    env = _domain_env(tls_server, tmp_path / "home")
    argv, env = localhost_names(tls_server, [node_binary(), "--test", "--test-reporter=tap", "domain.test.mjs"], env, tmp_path)
    proc = subprocess.run(argv, cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=300)
    report = proc.stdout[-5000:] + proc.stderr[-2000:]
    assert proc.returncode == 0 and "# pass 1" in proc.stdout, report + tls_server.log.read_text()[-3000:]
    assert tls_server.kill_all() == 0


def test_e2b_mcp_server_runs_code_with_e2b_domain_only(tls_server: TlsServer, tmp_path: Path) -> None:
    if not MCP_PYTHON.exists():
        pytest.fail("the e2b-mcp-server venv is missing: run `make client-deps`")
    env = _domain_env(tls_server, tmp_path / "home")
    argv, env = localhost_names(tls_server, [str(MCP_PYTHON), str(REPO / "tests" / "e2e" / "mcp_domain_client.py")], env, tmp_path)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:] + tls_server.log.read_text()[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    mcp = out["mcp"]
    assert mcp["tools"] == ["run_code"] and not mcp["is_error"], mcp
    result = json.loads(mcp["texts"][0])
    assert result == {"stdout": ["42\n"], "stderr": ["err\n"]}

    old = out["old_sdk"]
    assert old["api_url"] == f"https://api.{tls_server.domain}"
    assert old["run"] == "old-sdk\n" and old["code"] == "42" and old["file"] == "old sdk file"
    # E2B's MCP server never kills the sandbox it made; the test does (the fixture too, on failure).
    assert tls_server.kill_all() == 0


TOKENLESS = """
import json, ssl, sys, httpx
url, key, ca = sys.argv[1:4]
ctx, api = ssl.create_default_context(cafile=ca), {"X-API-Key": key}
out = {}
for name, network in (("public", None), ("private", {"allowPublicTraffic": False})):
    body = {"templateID": "code-interpreter-v1", "timeout": 120, **({"network": network} if network else {})}
    sid = httpx.post(url + "/v2/sandboxes", json=body, headers=api, verify=ctx, timeout=120).json()["sandboxID"]
    r = httpx.post(url + "/execute", json={"code": "6 * 7"}, verify=ctx, timeout=120,
                   headers={"E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "49999"})
    out[name] = r.status_code
    # envd itself still needs its token, whatever the interpreter setting.
    out[name + "_envd"] = httpx.post(url + "/filesystem.Filesystem/ListDir", json={"path": "/"}, verify=ctx,
                                     headers={"E2b-Sandbox-Id": sid, "Connect-Protocol-Version": "1"}).status_code
    httpx.delete(url + "/sandboxes/" + sid, headers=api, verify=ctx, timeout=60)
print(json.dumps(out))
"""


def test_optional_interpreter_token_keeps_private_sandboxes_and_envd_closed(tls_server: TlsServer) -> None:
    """`CORRAL_INTERPRETER_TOKEN=optional` (this server) opens only the interpreter port of
    sandboxes with public traffic; `allowPublicTraffic: false` and envd still need tokens."""
    done = subprocess.run([*tls_server.enter, sys.executable, "-c", TOKENLESS, f"https://127.0.0.1:{tls_server.port}",
                           E2E_KEY, str(tls_server.ca)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"public": 200, "public_envd": 401, "private": 401, "private_envd": 401}, out
