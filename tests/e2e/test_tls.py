"""TLS mode: the official SDK with E2B_DOMAIN and SSL_CERT_FILE only (none of its deprecated
URL variables), reaching the REST API, envd, the code interpreter and a user port over HTTPS."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_tls_server, stop_tls_server

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


def test_sdk_over_tls_with_e2b_domain(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    server = start_tls_server(tmp_path)
    port, data, ca = server.port, server.data_dir, server.ca
    try:
        # The certificate is for the wildcard domain, signed by our CA, and the key is private.
        assert oct((data / "tls" / "server.key").stat().st_mode & 0o777) == "0o600"
        done = subprocess.run([sys.executable, "-c", CLIENT], env=server.client_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:] + server.log()[-2000:]
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
        # A stopped server leaves its sandboxes running (for re-adoption): stop_tls_server kills
        # whatever the client made, even if it failed half-way.
        stop_tls_server(server)
