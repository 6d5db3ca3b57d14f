"""Exposed ports: a service listening inside a sandbox is reachable through the server, by E2B's
port headers or by the `{port}-{sandboxId}.{domain}` host name; HTTP and WebSocket; with the
traffic token enforced when the sandbox was created with public traffic off."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from e2b import Sandbox
from websockets.sync.client import connect as ws_connect

from tests.tiers import tiered_sdk, tiered_server

pytestmark = pytest.mark.e2e

# The SDK's boundary tests run on every isolation tier this machine has (tests/tiers.py).
sdk = tiered_sdk
server = tiered_server

# A stdlib-only WebSocket echo server (the base template has no websockets package).
WS_SERVER = r'''
import base64, hashlib, socket, struct, threading
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
def serve(conn):
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(4096)
    key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key")][0]
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    while True:
        hdr = conn.recv(2)
        if len(hdr) < 2 or hdr[0] & 0x0F == 8:
            return
        n = hdr[1] & 0x7F
        if n == 126: n = struct.unpack(">H", conn.recv(2))[0]
        mask = conn.recv(4)
        data = b""
        while len(data) < n: data += conn.recv(n - len(data))
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        reply = b"echo:" + data
        conn.sendall(bytes([0x81, len(reply)]) + reply)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8765)); s.listen()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


def _wait_http(url: str, headers: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        r = httpx.get(url, headers=headers, timeout=10)
        if r.status_code != 502 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


@pytest.fixture(scope="module")
def sandboxes(server) -> Iterator[tuple[Sandbox, Sandbox]]:  # type: ignore[no-untyped-def]
    opts = {"api_key": server.api_key, "api_url": server.url, "sandbox_url": server.url}
    public = Sandbox.create(timeout=300, **opts)
    private = Sandbox.create(timeout=300, network={"allow_public_traffic": False}, **opts)
    for sbx in (public, private):
        sbx.files.write("/home/user/www/index.html", f"hello from {sbx.sandbox_id}")
        sbx.commands.run("cd /home/user/www && python3 -m http.server 8080 --bind 127.0.0.1", background=True)
    public.files.write("/home/user/ws.py", WS_SERVER)
    public.commands.run("python3 /home/user/ws.py", background=True)
    yield public, private
    public.kill()
    private.kill()


def test_http_by_port_headers(server, sandboxes) -> None:  # type: ignore[no-untyped-def]
    public, _ = sandboxes
    r = _wait_http(server.url + "/index.html", {"E2b-Sandbox-Id": public.sandbox_id, "E2b-Sandbox-Port": "8080"})
    assert r.status_code == 200 and r.text == f"hello from {public.sandbox_id}"


def test_http_by_host_name(server, sandboxes) -> None:  # type: ignore[no-untyped-def]
    public, _ = sandboxes
    host = public.get_host(8080)
    assert host.startswith(f"8080-{public.sandbox_id}.")
    r = _wait_http(server.url + "/index.html", {"Host": f"8080-{public.sandbox_id}.e2b.localhost"})
    assert r.status_code == 200 and r.text == f"hello from {public.sandbox_id}"


def test_nothing_listening_is_a_502_json(server, sandboxes) -> None:  # type: ignore[no-untyped-def]
    public, _ = sandboxes
    r = httpx.get(server.url + "/", headers={"E2b-Sandbox-Id": public.sandbox_id, "E2b-Sandbox-Port": "9999"})
    assert r.status_code == 502 and "9999" in r.json()["message"]


def test_private_sandbox_needs_the_traffic_token(server, sandboxes) -> None:  # type: ignore[no-untyped-def]
    _, private = sandboxes
    base = {"E2b-Sandbox-Id": private.sandbox_id, "E2b-Sandbox-Port": "8080"}
    assert private.traffic_access_token
    for bad in ({}, {"E2B-Traffic-Access-Token": "wrong"}, {"X-Access-Token": private._envd_access_token}):
        assert httpx.get(server.url + "/index.html", headers={**base, **bad}).status_code == 401
    r = _wait_http(server.url + "/index.html", {**base, "E2B-Traffic-Access-Token": private.traffic_access_token})
    assert r.status_code == 200 and r.text == f"hello from {private.sandbox_id}"


def test_the_tunnel_reaches_only_the_sandbox_itself(server, sandboxes) -> None:  # type: ignore[no-untyped-def]
    """Port 8080 of the host (the server's namespace) is not what the tunnel reaches: the daemon
    connects inside the sandbox, so another sandbox's service is not reachable either."""
    public, private = sandboxes
    r = _wait_http(server.url + "/index.html", {"E2b-Sandbox-Id": public.sandbox_id, "E2b-Sandbox-Port": "8080"})
    assert r.text == f"hello from {public.sandbox_id}"  # never the private sandbox's page


def test_websocket_echo(server, sandboxes) -> None:  # type: ignore[no-untyped-def]
    public, _ = sandboxes
    url = server.url.replace("http://", "ws://") + "/socket"
    deadline = time.monotonic() + 30
    while True:
        try:
            with ws_connect(url, additional_headers={"E2b-Sandbox-Id": public.sandbox_id, "E2b-Sandbox-Port": "8765"},
                            open_timeout=10) as ws:
                ws.send("ping")
                assert ws.recv(timeout=10) == "echo:ping"
                ws.send("again")
                assert ws.recv(timeout=10) == "echo:again"
            break
        except (OSError, Exception) as exc:  # the server may still be starting inside the sandbox
            if time.monotonic() > deadline:
                raise exc
            time.sleep(0.3)
