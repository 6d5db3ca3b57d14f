"""What the manager's create puts on the wire, read by a loopback server that records the SDK's
request and refuses it (no sandbox service is involved)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from corral.mediagateway import SandboxError, SandboxManager, SandboxSecurityConfig, Settings


@pytest.fixture
def capture():
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            bodies.append({"path": self.path, "body": json.loads(raw or b"{}")})
            data = json.dumps({"code": 400, "message": "captured"}).encode()
            self.send_response(400)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", bodies
    httpd.shutdown()
    httpd.server_close()


async def test_create_request_fields(capture):
    url, bodies = capture
    m = SandboxManager(Settings.from_env({"E2B_API_KEY": "e2b_" + "0" * 40, "E2B_BASE_URL": url}))
    config = SandboxSecurityConfig(internet_access=True, allowed_hosts=["api.themoviedb.org", "*.justwatch.com"],
                                   timeout_seconds=45, memory_mb=768, cpu_cores=1)
    with pytest.raises(SandboxError, match="captured"):
        await m.create_sandbox("media-gateway-agent", config)
    create = next(b["body"] for b in bodies if b["path"].endswith("/sandboxes"))
    assert create["templateID"] == "media-gateway-agent"
    assert create["timeout"] >= 45
    assert create["network"]["allowOut"] == ["api.themoviedb.org", "*.justwatch.com"]
    assert create["network"]["denyOut"] == ["0.0.0.0/0"]
    assert create["metadata"]["corral.cpu_count"] == "1" and create["metadata"]["corral.memory_mb"] == "768"

    bodies.clear()
    with pytest.raises(SandboxError):
        await m.create_sandbox("base", SandboxSecurityConfig())
    create = next(b["body"] for b in bodies if b["path"].endswith("/sandboxes"))
    assert create["allow_internet_access"] is False and "network" not in create
