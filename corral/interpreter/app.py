"""The code-interpreter HTTP surface (port 49999 in E2B terms): /execute, /contexts, /health.

`/execute` answers with one JSON object a line, written as events happen, a keepalive line after
5 s of silence (so a vanished client is noticed even during a silent cell) and never a blank
line. The response watches for the client's disconnect itself: that is the SDK's `timeout`, and
it must interrupt the running cell rather than let it run on unobserved.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from corral.errors import CorralError
from corral.interpreter import events
from corral.interpreter.contexts import (
    ExecutionContextError,
    ContextManager,
    ContextNotFound,
    Execution,
    InterpreterConfig,
)
from corral.interpreter.languages import UnknownLanguage

KEEPALIVE_SECONDS = 5.0
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MAX_ENV_VARS = 1024


class BadRequest(CorralError):
    """A malformed request (400), or one too large (413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status=status)


async def _json_body(request: Request) -> dict[str, Any]:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_REQUEST_BYTES:
        raise BadRequest("request body too large", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise BadRequest("request body too large", 413)
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


def _env_vars(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadRequest("env_vars must be an object of strings")
    if len(value) > MAX_ENV_VARS:
        raise BadRequest(f"at most {MAX_ENV_VARS} env_vars per execution")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key or "=" in key or "\x00" in key:
            raise BadRequest(f"invalid environment variable name {key!r}")
        if isinstance(val, bool) or not isinstance(val, (str, int, float)):
            raise BadRequest(f"environment variable {key!r} must be a string")
        text = str(val)
        if "\x00" in text:
            raise BadRequest(f"environment variable {key!r} contains a NUL byte")
        out[key] = text
    return out


class ExecutionStream:
    """ASGI response streaming an execution's events; a disconnect abandons the execution."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        execution = self.execution
        finished = False
        disconnected = asyncio.ensure_future(self._wait_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            while True:
                getter = asyncio.ensure_future(execution.queue.get())
                done, _ = await asyncio.wait({getter, disconnected}, timeout=KEEPALIVE_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    if disconnected in done:
                        return
                    await send({"type": "http.response.body", "body": events.encode(events.keepalive()),
                                "more_body": True})
                    continue
                event = getter.result()
                if event is None:
                    await send({"type": "http.response.body",
                                "body": events.encode(events.end_of_execution()), "more_body": False})
                    finished = True
                    return
                await send({"type": "http.response.body", "body": events.encode(event), "more_body": True})
        finally:
            disconnected.cancel()
            if not finished:
                execution.abandon()

    @staticmethod
    async def _wait_disconnect(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return


class InterpreterApp:
    def __init__(self, config: InterpreterConfig) -> None:
        self.config = config
        self.contexts = ContextManager(config)
        self._warm: asyncio.Task[None] | None = None

    def start_default_kernels(self) -> asyncio.Task[None]:
        """Start the default contexts' kernels now (idempotent); call from the daemon's loop."""
        if self._warm is None:
            self._warm = asyncio.ensure_future(self.contexts.start_defaults())
        return self._warm

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("OK")

    async def execute(self, request: Request) -> Response:
        self.start_default_kernels()
        try:
            body = await _json_body(request)
            code = body.get("code")
            if not isinstance(code, str):
                raise BadRequest("code must be a string")
            context_id = body.get("context_id")
            language = body.get("language")
            if context_id is not None and language is not None:
                raise BadRequest("Only one of context_id or language can be provided")
            env_vars = _env_vars(body.get("env_vars"))
            if context_id is not None:
                if not isinstance(context_id, str):
                    raise BadRequest("context_id must be a string")
                ctx = self.contexts.get(context_id)
            else:
                ctx = self.contexts.default(language)
        except BadRequest as exc:
            return PlainTextResponse(str(exc), status_code=exc.status)
        except ContextNotFound as exc:
            return PlainTextResponse(str(exc), status_code=404)
        except (UnknownLanguage, ValueError) as exc:
            return PlainTextResponse(str(exc), status_code=400)
        except ExecutionContextError as exc:
            return PlainTextResponse(str(exc), status_code=500)
        execution = self.contexts.execute(ctx, code, env_vars)
        return ExecutionStream(execution)  # type: ignore[return-value]

    async def create_context(self, request: Request) -> Response:
        self.start_default_kernels()
        try:
            body = await _json_body(request)
            ctx = self.contexts.create(body.get("language"), body.get("cwd"))
        except BadRequest as exc:
            return PlainTextResponse(str(exc), status_code=exc.status)
        except (UnknownLanguage, ValueError) as exc:
            return PlainTextResponse(str(exc), status_code=400)
        except ExecutionContextError as exc:
            return PlainTextResponse(f"Failed to create context: {exc}", status_code=500)
        try:
            await self.contexts.start(ctx)
        except ExecutionContextError as exc:
            return PlainTextResponse(f"Failed to create context: {exc}", status_code=500)
        return JSONResponse(ctx.to_json())

    async def list_contexts(self, request: Request) -> Response:
        try:
            self.contexts.ensure_defaults()
        except ExecutionContextError as exc:
            return PlainTextResponse(str(exc), status_code=500)
        return JSONResponse([c.to_json() for c in self.contexts.contexts.values() if not c.removed])

    async def restart_context(self, request: Request) -> Response:
        try:
            ctx = self.contexts.get(request.path_params["context_id"])
            await ctx.restart()
        except ContextNotFound as exc:
            return PlainTextResponse(str(exc), status_code=404)
        except ExecutionContextError as exc:
            return PlainTextResponse(f"Failed to restart context: {exc}", status_code=500)
        return JSONResponse(ctx.to_json())

    async def remove_context(self, request: Request) -> Response:
        try:
            await self.contexts.remove(request.path_params["context_id"])
        except ContextNotFound as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return Response(status_code=204)

    async def close(self) -> None:
        if self._warm is not None:
            self._warm.cancel()
        await self.contexts.close()

    def kill_all(self) -> None:
        """Synchronous: SIGKILL every kernel (daemon shutdown, where awaiting is not possible)."""
        self.contexts.kill_all()


def create_app(config: InterpreterConfig | None = None) -> Starlette:
    """The interpreter as a Starlette app; `app.state.interpreter` is its InterpreterApp."""
    interp = InterpreterApp(config or InterpreterConfig())
    routes = [
        Route("/health", interp.health, methods=["GET"]),
        Route("/execute", interp.execute, methods=["POST"]),
        Route("/contexts", interp.create_context, methods=["POST"]),
        Route("/contexts", interp.list_contexts, methods=["GET"]),
        Route("/contexts/{context_id}/restart", interp.restart_context, methods=["POST"]),
        Route("/contexts/{context_id}", interp.remove_context, methods=["DELETE"]),
    ]
    app = Starlette(routes=routes)
    app.state.interpreter = interp
    return app
