"""The node credential: what lets an API replica, and nothing else, talk to a node.

One secret per cluster (`CORRAL_NODE_SECRET`, kept outside the database, which sandboxes'
metadata also lives in). API replicas send it in `X-Corral-Node-Credential` on every call to a
node; `NodeGate`, the outermost layer of a node's server, compares it in constant time and
answers 401 (or closes a WebSocket) when it is missing or wrong, and removes it before anything
else sees the request, so no sandbox service or log can ever read it. `/health` alone is open
(a liveness probe; it says nothing but "ok").
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

HEADER = b"x-corral-node-credential"
OPEN_PATHS = frozenset({"/health"})


def credential_header(secret: str) -> tuple[bytes, bytes]:
    return HEADER, secret.encode()


def presented_ok(headers: list[tuple[bytes, bytes]], secret: str) -> bool:
    """Exactly one credential header, equal to the secret (compared in constant time)."""
    values = [v for k, v in headers if k == HEADER]
    return len(values) == 1 and hmac.compare_digest(values[0], secret.encode())


def without_credential(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k != HEADER]


class NodeGate:
    """A node's outer ASGI layer: only API replicas (holders of the secret) get through."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self.secret = secret
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = list(scope["headers"])
        if not (scope["type"] == "http" and scope["path"] in OPEN_PATHS) and not presented_ok(headers, self.secret):
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.close", "code": 1008})
                return
            body = json.dumps({"code": 401, "message": "this is a corral node: it answers only corral API "
                                                       "replicas (missing or wrong node credential)"}).encode()
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app({**scope, "headers": without_credential(headers)}, receive, send)
