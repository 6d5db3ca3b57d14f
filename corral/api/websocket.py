"""Relaying a client's WebSocket to a service inside a sandbox.

The handshake goes through the daemon's ports tunnel like any HTTP request (the daemon only
reads the port header, then splices bytes), so the sandbox's service performs a normal upgrade;
after it, messages are relayed both ways until either side closes.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

_SKIP = {b"host", b"connection", b"upgrade", b"sec-websocket-key", b"sec-websocket-version",
         b"sec-websocket-extensions", b"sec-websocket-protocol", b"content-length"}
# The handshake's own headers, which a relay's new handshake replaces.
HANDSHAKE_HEADERS = frozenset(_SKIP)


async def relay_websocket(scope: Scope, receive: Receive, send: Send, ports_socket: str, port: int) -> None:
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    uri = "ws://sandbox" + path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in _SKIP]
    headers.append(("E2b-Sandbox-Port", str(port)))
    try:
        upstream = await unix_connect(ports_socket, uri, additional_headers=headers,
                                      subprotocols=scope.get("subprotocols") or None,
                                      open_timeout=10, max_size=None, compression=None)
    except (OSError, InvalidHandshake, InvalidStatus, asyncio.TimeoutError):
        await send({"type": "websocket.close", "code": 1011})
        return
    await relay_frames(receive, send, upstream)


async def relay_frames(receive: Receive, send: Send, upstream: ClientConnection) -> None:
    """Accept the client's WebSocket and relay messages both ways with an open `upstream` until
    either side closes (a cluster's router relays to a node with it)."""
    await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})

    async def client_to_sandbox() -> None:
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                await upstream.close(code=msg.get("code", 1000))
                return
            if msg.get("bytes") is not None:
                await upstream.send(msg["bytes"])
            elif msg.get("text") is not None:
                await upstream.send(msg["text"])

    async def sandbox_to_client() -> None:
        try:
            async for data in upstream:
                if isinstance(data, bytes):
                    await send({"type": "websocket.send", "bytes": data})
                else:
                    await send({"type": "websocket.send", "text": data})
        except ConnectionClosed:
            pass
        code = upstream.close_code or 1000
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code})

    tasks = [asyncio.create_task(client_to_sandbox()), asyncio.create_task(sandbox_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
