"""Minimal ASGI request/response helpers.

The daemon speaks raw ASGI instead of a web framework: every idle sandbox runs one, so the
resident set matters, and the routes are few and fixed.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, AsyncIterator, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class ClientDisconnected(Exception):
    pass


class Request:
    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.headers = headers
        self.query: dict[str, list[str]] = urllib.parse.parse_qs(
            scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        )
        self.body_done = False
        self.response_started = False

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    async def iter_body(self) -> AsyncIterator[bytes]:
        while not self.body_done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            if not message.get("more_body", False):
                self.body_done = True
            chunk = message.get("body", b"")
            if chunk:
                yield chunk

    async def read_body(self, limit: int) -> bytes:
        length = self.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise BodyTooLarge()
        parts: list[bytes] = []
        size = 0
        async for chunk in self.iter_body():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            parts.append(chunk)
        return b"".join(parts)

    async def start_response(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.response_started = True
        await self.send({
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        })

    async def send_body(self, data: bytes, more: bool) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(self, status: int, body: bytes, content_type: str | None,
                      extra: list[tuple[str, str]] | None = None) -> None:
        headers = [("content-length", str(len(body)))]
        if content_type:
            headers.append(("content-type", content_type))
        headers += extra or []
        await self.start_response(status, headers)
        await self.send_body(body, False)

    async def respond_json(self, status: int, value: Any) -> None:
        body = json.dumps(value, separators=(",", ":")).encode()
        await self.respond(status, body, "application/json")

    async def respond_http_error(self, status: int, message: str) -> None:
        """envd's plain (non-Connect) error shape: an integer code the SDK maps from the status."""
        await self.respond_json(status, {"code": status, "message": message})

    async def wait_disconnect(self) -> None:
        """Returns once the client has gone away (only meaningful after the body was read)."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return
