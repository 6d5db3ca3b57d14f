"""The gateway's HTTP side: the page, and the JSON API behind it.

    GET  /                       the page (inline CSS and JS, nothing fetched from elsewhere)
    GET  /api/health             {"status": "ok", "in_flight": n, "kept": n}
    GET  /api/users              the catalog's users, for the page's picker
    POST /api/query              {"query": "...", "user_id": "u001"?} -> the request's trace
    GET  /api/requests           the newest requests (id, query, user, time)
    GET  /api/requests/{id}      a past request's trace

Every refusal is a JSON `{"code": ..., "message": ...}` with a 4xx status. Requests run on the
event loop: a second query while one runs is served at once, up to `max_in_flight` together (the
orchestrator starts sandboxes for each; more than that is a 429, not a queue that grows).

What it defends against: agent output is untrusted and is only ever put into the page as text
(the page's script uses `textContent`, never HTML); the Content-Security-Policy allows only the
page's own nonce'd script and style, so an injected tag could not run even if one got through; a
Host check stops DNS rebinding (a web page elsewhere that resolves its name to 127.0.0.1); and a
query must be `application/json`, which a cross-site form cannot send.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Sequence
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.mediagateway.errors import MediaGatewayError
from corral.mediagateway.gateway.page import render_page
from corral.mediagateway.gateway.store import TraceStore
from corral.mediagateway.trace import RequestTrace

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
MAX_QUERY_CHARS = 500
USER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class RunsQueries(Protocol):
    """What the gateway needs from the orchestrator (`corral.mediagateway.Orchestrator`)."""

    async def run(self, query: str, *, user_id: str | None = None) -> RequestTrace: ...


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


class HostCheck:
    """Answers only to the names it is served under (DNS rebinding), and adds the headers every
    response carries."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name not in self.allowed:
            await _error(421, "unknown_host", f"this gateway does not answer to host {host!r}")(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                            (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def _json_body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the query as application/json")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"the request body is over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "the request body must be a JSON object")
    return data


def _parse_query(data: dict[str, Any], users: dict[str, str] | None) -> tuple[str, str | None]:
    unknown = set(data) - {"query", "user_id"}
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field(s): {', '.join(sorted(unknown))}")
    query = data.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ApiError(400, "invalid_query", "query must be a non-empty string")
    query = query.strip()
    if len(query) > MAX_QUERY_CHARS:
        raise ApiError(400, "invalid_query", f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    if any(ord(c) < 32 and c not in "\t" for c in query):
        raise ApiError(400, "invalid_query", "query must not contain control characters")
    user_id = data.get("user_id")
    if user_id in (None, ""):
        return query, None
    if not isinstance(user_id, str) or not USER_ID.match(user_id):
        raise ApiError(400, "invalid_user", "user_id must be 1-64 letters, digits, '.', '_' or '-'")
    if users is not None and user_id not in users:
        raise ApiError(400, "unknown_user", f"no user {user_id!r} in the catalog")
    return query, user_id


def create_app(orchestrator: RunsQueries, *, users: Sequence[tuple[str, str]] | None = None,
               allowed_hosts: Sequence[str] = LOOPBACK_NAMES, max_in_flight: int = 4,
               keep: int = 200) -> ASGIApp:
    """The gateway app around `orchestrator`. `users` are (id, name) pairs for the picker (None:
    any well-formed id is passed on); `allowed_hosts` the names it answers to."""
    store = TraceStore(keep)
    known = dict(users) if users is not None else None
    in_flight = 0

    async def page(request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
               "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        return HTMLResponse(render_page(nonce), headers={"content-security-policy": csp})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "in_flight": in_flight, "kept": len(store)})

    async def list_users(request: Request) -> Response:
        return JSONResponse({"users": [{"id": i, "name": n} for i, n in (users or [])]})

    async def query(request: Request) -> Response:
        nonlocal in_flight
        try:
            text, user_id = _parse_query(await _json_body(request), known)
        except ApiError as exc:
            return _error(exc.status, exc.code, exc.message)
        if in_flight >= max_in_flight:
            return _error(429, "busy", f"{in_flight} queries are running; the limit is {max_in_flight}, try again shortly")
        in_flight += 1
        try:
            trace = await orchestrator.run(text, user_id=user_id)
        except MediaGatewayError as exc:
            status = exc.status if 400 <= exc.status < 600 else 502
            return _error(status, exc.code, exc.message)
        except Exception:  # noqa: BLE001 - the page gets a message, the log gets the traceback
            log.exception("query failed")
            return _error(500, "internal_error", "the query failed inside the gateway; see its log")
        finally:
            in_flight -= 1
        data = trace.model_dump(mode="json")
        store.put(trace.request_id, data)
        return JSONResponse(data)

    async def recent(request: Request) -> Response:
        return JSONResponse({"requests": store.recent()})

    async def past(request: Request) -> Response:
        request_id = request.path_params["request_id"]
        trace = store.get(request_id) if REQUEST_ID.match(request_id) else None
        if trace is None:
            return _error(404, "not_found", f"no request {request_id!r} (the gateway keeps the last {store.capacity})")
        return JSONResponse(trace)

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)  # browsers ask; the page has no icon

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "not_found", f"no such page: {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}")

    app = Starlette(routes=[
        Route("/", page, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Route("/api/health", health, methods=["GET"]),
        Route("/api/users", list_users, methods=["GET"]),
        Route("/api/query", query, methods=["POST"]),
        Route("/api/requests", recent, methods=["GET"]),
        Route("/api/requests/{request_id}", past, methods=["GET"]),
    ], exception_handlers={404: not_found, 405: not_allowed})
    return HostCheck(app, allowed_hosts)
