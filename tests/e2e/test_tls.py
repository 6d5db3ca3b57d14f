"""TLS mode: the official SDK with E2B_DOMAIN and SSL_CERT_FILE only (none of its deprecated
URL variables), reaching the REST API, envd, the code interpreter and a user port over HTTPS."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import E2E_KEY, REPO

pytestmark = pytest.mark.e2e

CLIENT = r'''
import json, os, httpx
from e2b import Sandbox
sbx = Sandbox.create(timeout=120)
try:
    out = {"domain": os.environ["E2B_DOMAIN"]}
    out["run"] = sbx.commands.run("echo over-tls").stdout
    sbx.files.write("/tmp/t.txt", "tls file")
    out["file"] = sbx.files.read("/tmp/t.txt")
    sbx.commands.run("mkdir -p /tmp/www && echo served > /tmp/www/i.html && cd /tmp/www && python3 -m http.server 8080 --bind 127.0.0.1", background=True)
    out["host"] = sbx.get_host(8080)
    out["id"] = sbx.sandbox_id
    print(json.dumps(out))
finally:
    pass  # the test kills the sandbox through the API
'''


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sdk_over_tls_with_e2b_domain(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    port, data = _port(), tmp_path / "data"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "CORRAL_"))},
           "CORRAL_API_KEY": E2E_KEY, "CORRAL_EGRESS": "off", "CORRAL_POOL": ""}
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "corral.cli.main", "serve", "--tls", "--port", str(port),
                               "--data-dir", str(data)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    ca = data / "tls" / "ca.pem"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ctx = ssl.create_default_context(cafile=str(ca))
                if httpx.get(f"https://127.0.0.1:{port}/health", verify=ctx, timeout=2).status_code == 200:
                    break
            except (httpx.HTTPError, OSError, ssl.SSLError):
                pass
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.2)
        # The certificate is for the wildcard domain, signed by our CA, and the key is private.
        assert oct((data / "tls" / "server.key").stat().st_mode & 0o777) == "0o600"
        cenv = {**env, "E2B_API_KEY": E2E_KEY, "E2B_DOMAIN": f"e2b.localhost:{port}", "SSL_CERT_FILE": str(ca)}
        done = subprocess.run([sys.executable, "-c", CLIENT], env=cenv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:] + (tmp_path / "server.log").read_text()[-2000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["run"] == "over-tls\n" and out["file"] == "tls file"
        assert out["host"] == f"8080-{out['id']}.e2b.localhost:{port}"
        # get_host's form works over TLS: connect to the server, name the sandbox host in SNI and Host.
        ctx = ssl.create_default_context(cafile=str(ca))
        host = out["host"].split(":")[0]
        deadline = time.monotonic() + 30
        with httpx.Client(verify=ctx, timeout=10) as client:
            while True:
                req = client.build_request("GET", f"https://127.0.0.1:{port}/i.html", headers={"Host": out["host"]},
                                           extensions={"sni_hostname": host})
                r = client.send(req)
                if r.status_code != 502 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        assert r.status_code == 200 and r.text == "served\n"
        # Without our CA, a client refuses the server.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{port}/health", timeout=5)
    finally:
        # A stopped server leaves its sandboxes running (for re-adoption): kill whatever the client
        # made, even if it failed half-way.
        if ca.exists():
            ctx, hdr = ssl.create_default_context(cafile=str(ca)), {"X-API-Key": E2E_KEY}
            try:
                for s in httpx.get(f"https://127.0.0.1:{port}/v2/sandboxes", headers=hdr, verify=ctx).json():
                    httpx.delete(f"https://127.0.0.1:{port}/sandboxes/{s['sandboxID']}", headers=hdr, verify=ctx)
            except httpx.HTTPError:
                pass
        server.terminate()
        server.wait(timeout=60)
