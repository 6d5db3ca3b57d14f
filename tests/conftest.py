"""Shared fixtures: a real `corral serve` process for end-to-end and security tests."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import parallel
from tests.processes import stop

REPO = Path(__file__).resolve().parents[1]
E2E_KEY = "e2b_" + "5e" * 20


# Parallel runs (`make test`, pytest-xdist): see tests/parallel.py and docs/TESTING.md.
pytest_collection_modifyitems = parallel.pytest_collection_modifyitems


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    return parallel.make_scheduler(config, log) if config.getvalue("dist") == "loadfile" else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    api_key: str
    data_dir: Path
    proc: subprocess.Popen
    log_path: Path
    isolation: str = "namespace"   # the server's default isolation tier (tests/tiers.py)

    def env(self) -> dict[str, str]:
        return {"E2B_API_KEY": self.api_key, "E2B_API_URL": self.url, "E2B_SANDBOX_URL": self.url}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_server(data_dir: Path, port: int | None = None, extra_env: dict[str, str] | None = None) -> Server:
    port = port or _free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"server-{port}.log"
    # Servers in the host's network namespace never grant egress: a bug must not be able to send
    # a test's traffic off this machine (egress is tested inside namespaces: tests/e2e/test_egress.py).
    env = {**os.environ, "CORRAL_API_KEY": E2E_KEY, "CORRAL_EGRESS": "off", **(extra_env or {})}
    for k in ("E2B_API_KEY", "E2B_API_URL", "E2B_SANDBOX_URL", "E2B_DOMAIN"):
        env.pop(k, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log_path.open("ab"), stderr=subprocess.STDOUT, env=env, cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120   # generous for a loaded CI machine; not a product limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"corral serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return Server(url, E2E_KEY, data_dir, proc, log_path,
                              isolation=env.get("CORRAL_ISOLATION") or "namespace")
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"corral serve did not become healthy:\n{log_path.read_text()[-4000:]}")


def kill_all_sandboxes(server: Server) -> None:
    """A stopped server leaves its sandboxes running (a restarted one re-adopts them), so tests
    kill whatever they left before stopping it."""
    headers = {"X-API-Key": server.api_key}
    try:
        listed = httpx.get(server.url + "/v2/sandboxes", headers=headers, params={"state": "running,paused"}, timeout=10).json()
        for sbx in listed:
            httpx.delete(f"{server.url}/sandboxes/{sbx['sandboxID']}", headers=headers, timeout=30)
    except httpx.HTTPError:
        pass


def stop_server(server: Server, *, kill_sandboxes: bool = True) -> None:
    if kill_sandboxes and server.proc.poll() is None:
        kill_all_sandboxes(server)
    stop(server.proc, timeout=30)


@dataclass
class TlsServer:
    """`corral serve --tls`: the SDK reaches it with E2B_DOMAIN and the CA only."""

    port: int
    data_dir: Path
    proc: subprocess.Popen
    log_path: Path

    @property
    def ca(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    @property
    def domain(self) -> str:
        return f"e2b.localhost:{self.port}"

    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def client_env(self) -> dict[str, str]:
        """The environment of a user's process: only the key, the domain and the CA."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "CORRAL_"))}
        return {**base, "E2B_API_KEY": E2E_KEY, "E2B_DOMAIN": self.domain, "SSL_CERT_FILE": str(self.ca)}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_tls_server(tmp: Path) -> TlsServer:
    port, data = _free_port(), tmp / "data"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "CORRAL_"))},
           "CORRAL_API_KEY": E2E_KEY, "CORRAL_EGRESS": "off", "CORRAL_POOL": ""}
    log_path = tmp / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "corral.cli.main", "serve", "--tls", "--port", str(port),
                             "--data-dir", str(data)], stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
                            env=env, cwd=REPO)
    srv = TlsServer(port, data, proc, log_path)
    deadline = time.monotonic() + 120   # generous for a loaded CI machine; not a product limit
    while True:
        try:
            if httpx.get(f"https://127.0.0.1:{port}/health", verify=srv.verify(), timeout=2).status_code == 200:
                return srv
        except (httpx.HTTPError, OSError, ssl.SSLError):
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"corral serve --tls did not become healthy:\n{srv.log()}")
        time.sleep(0.2)


def stop_tls_server(srv: TlsServer) -> None:
    """Kill whatever sandboxes the clients made (even if they failed half-way), then the server."""
    if srv.ca.exists():
        hdr = {"X-API-Key": E2E_KEY}
        try:
            base = f"https://127.0.0.1:{srv.port}"
            for s in httpx.get(f"{base}/v2/sandboxes", headers=hdr, verify=srv.verify()).json():
                httpx.delete(f"{base}/sandboxes/{s['sandboxID']}", headers=hdr, verify=srv.verify())
        except httpx.HTTPError:
            pass
    stop(srv.proc, timeout=60)


@pytest.fixture(scope="session")
def namespace_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    srv = start_server(tmp_path_factory.mktemp("corral") / "data")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def server(namespace_server: Server) -> Server:
    """The test server (default isolation: namespace). Modules that run on every tier override
    it with the server of the tier they run on (tests/tiers.py)."""
    return namespace_server


@pytest.fixture(scope="session")
def gvisor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second test server whose default isolation is gVisor (see tests/tiers.py)."""
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    srv = start_server(tmp_path_factory.mktemp("corral-gvisor") / "data",
                       extra_env={"CORRAL_ISOLATION": "gvisor"})
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def sdk(server: Server) -> Iterator[Server]:
    """Point the unmodified official SDK at the test server for a whole module, exactly as a
    user's shell would: through its environment variables."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in server.env().items():
            mp.setenv(key, value)
        mp.delenv("E2B_DOMAIN", raising=False)
        mp.delenv("E2B_DEBUG", raising=False)
        yield server
