"""Forwarding in-sandbox traffic (envd, and later user ports) to the sandbox's unix socket.

Written against raw ASGI rather than a framework response class because Connect streams must
flow both ways unbuffered, and a client that hangs up must cancel the upstream request at once
(otherwise a closed command stream would hold an envd connection until the command ends).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable

import httpx
from starlette.types import Message, Receive, Scope, Send

from corral.api.http_protocol import RESET_EXTENSION
from corral.api.websocket import relay_websocket
from corral.errors import CorralError
from corral.lifecycle import SandboxService
from corral.store import SandboxRecord
# SERVER_ONLY_PREFIX: envd routes the server uses to manage a sandbox (the warm-pool hand-over),
# never reachable by clients. PORTS_SOCKET: beside envd.sock, the daemon's raw tunnels to the
# sandbox's own TCP ports.
from corral.wire import ENVD_PORT, INTERPRETER_PORT, PORTS_SOCKET, SERVER_ONLY_PREFIX

_HOP_BY_HOP = {
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailers",
    b"transfer-encoding", b"upgrade", b"host", b"content-length",
}


async def _send_json(send: Send, status: int, message: str) -> None:
    body = json.dumps({"code": status, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _token_matches(scope: Scope, header: bytes, expected: str | None) -> bool:
    if not expected:
        return False
    ok = False
    for name, value in scope["headers"]:
        if name == header:
            ok |= hmac.compare_digest(value, expected.encode())
    return ok


def _interpreter_authorized(scope: Scope, rec: SandboxRecord) -> bool:
    return (_token_matches(scope, b"x-access-token", rec.envd_access_token)
            | _token_matches(scope, b"e2b-traffic-access-token", rec.traffic_access_token))


class SandboxProxy:
    def __init__(self, service: SandboxService) -> None:
        self.service = service
        self._clients = service.clients

    async def drop(self, sandbox_id: str) -> None:
        await self._clients.drop(sandbox_id)

    async def close(self) -> None:
        await self._clients.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send, sandbox_id: str, port: int) -> None:
        await self.service.settled(sandbox_id)   # a pause under way: answer once it is paused
        rec, socket = self.service.envd_socket(sandbox_id)
        if rec is not None and rec.state == "paused" and await self.service.auto_resume(sandbox_id):
            rec, socket = self.service.envd_socket(sandbox_id)   # the first request waited for it
        if rec is None or socket is None:
            await self.drop(sandbox_id)
            # "was not found" is what the SDK looks for to raise SandboxNotRunningException.
            await _send_json(send, 502, f"The sandbox {sandbox_id} was not found")
            return
        if rec.state == "paused":
            await _send_json(send, 502, f"The sandbox {sandbox_id} is paused; connect to it to resume it")
            return
        if scope["path"].startswith(SERVER_ONLY_PREFIX):
            await _send_json(send, 404, f"no route for {scope['path']}")
            return
        # The code interpreter lives inside envd; the daemon tells the two apart by the port header.
        # envd checks its own token; interpreter calls are checked here, because the SDK sends the
        # access token only on /execute and the traffic token on every call.
        if port == INTERPRETER_PORT and not _interpreter_authorized(scope, rec) and not (
                rec.public_traffic and self.service.settings.interpreter_token == "optional"):
            await _send_json(send, 401, "unauthorized: a valid X-Access-Token or E2B-Traffic-Access-Token is required")
            return
        if port in (ENVD_PORT, INTERPRETER_PORT):
            # envd tells envd from interpreter calls by this header: it must name the port checked
            # above, also when the port came from the Host (old SDKs send no routing headers), and
            # a client must not send Host 49983-<id> with a 49999 header to skip that check.
            headers = [(k, v) for k, v in scope["headers"] if k != b"e2b-sandbox-port"]
            scope = {**scope, "headers": [*headers, (b"e2b-sandbox-port", str(port).encode())]}
            await self._forward(scope, receive, send, self._clients.get(sandbox_id, socket))
            return
        # A user's own service inside the sandbox: tunnelled through the daemon's ports socket.
        if not 0 < port < 65536:
            await _send_json(send, 400, f"invalid sandbox port {port}")
            return
        if not rec.public_traffic and not _token_matches(scope, b"e2b-traffic-access-token", rec.traffic_access_token):
            await _send_json(send, 401, "unauthorized: this sandbox's ports need its E2B-Traffic-Access-Token")
            return
        client = self._clients.get(f"{sandbox_id}:{port}", socket.parent / PORTS_SOCKET)
        await self._forward(scope, receive, send, client, port=port)

    async def websocket(self, scope: Scope, receive: Receive, send: Send, sandbox_id: str, port: int) -> None:
        """WebSocket to a user's port: the upgrade goes through the ports tunnel, then frames are
        relayed both ways."""
        rec, socket = self.service.envd_socket(sandbox_id)
        ok = rec is not None and socket is not None and rec.state == "running" and 0 < port < 65536 \
            and port not in (ENVD_PORT, INTERPRETER_PORT)
        if ok and not rec.public_traffic:  # type: ignore[union-attr]
            ok = _token_matches(scope, b"e2b-traffic-access-token", rec.traffic_access_token)  # type: ignore[union-attr]
        await receive()  # websocket.connect
        if not ok:
            await send({"type": "websocket.close", "code": 1008})
            return
        await relay_websocket(scope, receive, send, str(socket.parent / PORTS_SOCKET), port)  # type: ignore[union-attr]

    async def _forward(self, scope: Scope, receive: Receive, send: Send, client: httpx.AsyncClient,
                       port: int | None = None) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k not in _HOP_BY_HOP]
        if port is not None:
            # A user's service sees the Host the client used; the tunnel needs the port header
            # even when the port came from the host name.
            headers = [(k, v) for k, v in headers if k != b"e2b-sandbox-port"]
            headers += [(b"e2b-sandbox-port", str(port).encode())]
            headers += [(k, v) for k, v in scope["headers"] if k == b"host"]
        await forward(scope, receive, send, client, headers)


def hop_by_hop(name: bytes) -> bool:
    """Headers that belong to one connection, never forwarded (a cluster's router uses it too)."""
    return name in _HOP_BY_HOP


async def forward(scope: Scope, receive: Receive, send: Send, client: httpx.AsyncClient,
                  headers: list[tuple[bytes, bytes]], *, unreachable: str = "The sandbox did not answer",
                  on_unreachable: Callable[[], Awaitable[CorralError | None]] | None = None) -> None:
    """Stream one HTTP request to `client`'s upstream and its answer back, both ways unbuffered;
    a client that hangs up cancels the upstream request. An upstream that cannot be reached is a
    502 `{"code", "message"}` starting with `unreachable`, unless `on_unreachable` (the cluster
    router, re-reading its node registry) names a better answer."""
    body_done = asyncio.Event()
    disconnected = asyncio.Event()

    async def body():  # type: ignore[no-untyped-def]
        while True:
            msg: Message = await receive()
            if msg["type"] == "http.disconnect":
                disconnected.set()
                body_done.set()
                return
            chunk = msg.get("body", b"")
            if chunk:
                yield chunk
            if not msg.get("more_body", False):
                body_done.set()
                return

    has_body = any(k == b"content-length" and v != b"0" for k, v in scope["headers"]) or any(
        k == b"transfer-encoding" for k, _ in scope["headers"])
    path = scope.get("raw_path") or scope["path"].encode()
    url = path.decode("latin-1") + (("?" + scope["query_string"].decode("latin-1")) if scope.get("query_string") else "")
    if not has_body:
        body_done.set()
    request = client.build_request(scope["method"], url, headers=headers, content=body() if has_body else None)

    async def watch_disconnect() -> None:
        await body_done.wait()
        while not disconnected.is_set():
            msg = await receive()
            if msg["type"] == "http.disconnect":
                disconnected.set()

    async def relay() -> None:
        try:
            upstream = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            better = await on_unreachable() if on_unreachable is not None else None
            if better is not None:
                await _send_json(send, better.status, better.message)
            else:
                await _send_json(send, 502, f"{unreachable}: {exc.__class__.__name__}")
            return
        try:
            out_headers = [(k, v) for k, v in upstream.headers.raw if k.lower() not in _HOP_BY_HOP]
            if "content-length" in upstream.headers:
                out_headers.append((b"content-length", upstream.headers["content-length"].encode()))
            await send({"type": "http.response.start", "status": upstream.status_code, "headers": out_headers})
            try:
                async for chunk in upstream.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError:
                # The upstream went away mid-response: reset the client's connection, the way
                # E2B's edge does, so the SDK checks health and reports the sandbox as gone.
                reset = scope.get("extensions", {}).get(RESET_EXTENSION)
                if reset is None:
                    raise
                reset()
                return
            await send({"type": "http.response.body", "body": b""})
        finally:
            await upstream.aclose()

    relay_task = asyncio.create_task(relay())
    watch_task = asyncio.create_task(watch_disconnect())
    try:
        done, _ = await asyncio.wait({relay_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
        if relay_task not in done:
            relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)
        if relay_task.done() and not relay_task.cancelled() and relay_task.exception():
            raise relay_task.exception()  # type: ignore[misc]
    finally:
        watch_task.cancel()
        await asyncio.gather(watch_task, return_exceptions=True)
