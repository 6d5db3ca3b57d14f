"""The daemon's ASGI application: a façade that routes to the services.

Plain HTTP routes (/health, /envs, /files, the server-only hand-over) and the Connect services
(`process_rpc`, `filesystem_rpc`, run by `rpc`) are assembled here, with the token check in front
of everything but /health and /files (which authenticates itself). Apps for other E2B ports (the
code interpreter) are handed in by whoever assembles the daemon (`server`), keyed by port: envd
itself knows nothing about them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from corral.envd import rpc
from corral.envd.auth import UNAUTHORIZED_MESSAGE, token_matches
from corral.envd.creds import UserExecutor
from corral.envd.deadline import Deadline, set_deadline
from corral.envd.files_route import files
from corral.envd.filesystem_rpc import FilesystemService
from corral.envd.handover import hand_over
from corral.envd.httpio import ClientDisconnected, Request
from corral.envd.process_rpc import STREAM_INPUT, ProcessService
from corral.envd.processes import ProcessManager
from corral.envd.watchers import WatchRegistry
from corral.wire.constants import DEADLINE_PATH, INIT_PATH
from corral.wire.handoff import EnvdConfig

log = logging.getLogger("corral.envd")

ASGIApp = Callable[..., Any]


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


class EnvdApp:
    def __init__(self, config: EnvdConfig) -> None:
        self.config = config
        # The sandbox's own end time; whoever runs the app (`server.serve`) says what ending is
        # and arms it once its loop runs.
        self.deadline = Deadline(config.end_at, lambda: None)
        self.processes = ProcessManager(dict(config.env_vars))
        self._executor: UserExecutor | None = None
        self._watches: WatchRegistry | None = None
        # Apps served for other E2B ports, by the port header's exact bytes (b"49999").
        self._hosted: dict[bytes, ASGIApp] = {}
        # Called first by close(): hosted apps (the interpreter's kernels) register here.
        self.on_close: list[Callable[[], None]] = []
        self.process_service = ProcessService(self.processes)
        self.filesystem_service = FilesystemService(lambda: self.executor, lambda: self.watches)
        self.unary: dict[str, rpc.Unary] = {**self.process_service.unary, **self.filesystem_service.unary}
        self.streams: dict[str, rpc.ServerStream] = {**self.process_service.streams,
                                                     **self.filesystem_service.streams}

    def host(self, port: int, app: ASGIApp) -> None:
        """Serve `app` for requests whose E2b-Sandbox-Port header is `port`. Their callers were
        authenticated by the server's proxy; this socket is reachable only from there."""
        self._hosted[str(port).encode()] = app

    @property
    def executor(self) -> UserExecutor:
        if self._executor is None:
            self._executor = UserExecutor()
        return self._executor

    @property
    def watches(self) -> WatchRegistry:
        if self._watches is None:
            self._watches = WatchRegistry(self.executor)
        return self._watches

    def close(self) -> None:
        """Kill what we started and release watchers (used on shutdown)."""
        self.deadline.close()
        for hook in self.on_close:
            hook()
        self.processes.kill_all()
        if self._watches is not None:
            self._watches.close_all()
        if self._executor is not None:
            self._executor.shutdown()

    # ------------------------------------------------------------------ ASGI entry

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        port = _header(scope, b"e2b-sandbox-port")
        hosted = self._hosted.get(port) if port is not None else None
        if hosted is not None:
            await hosted(scope, receive, send)
            return
        req = Request(scope, receive, send)
        try:
            await self._route(req)
        except ClientDisconnected:
            pass
        except Exception:
            log.exception("unhandled error in %s %s", req.method, req.path)
            if not req.response_started:
                await req.respond_http_error(500, "internal error")

    async def _route(self, req: Request) -> None:
        path, method = req.path, req.method
        if path == "/health":
            if method not in ("GET", "HEAD"):
                return await req.respond_http_error(405, "method not allowed")
            return await req.respond(204, b"", None)
        if path == "/files":
            if method not in ("GET", "POST"):
                return await req.respond_http_error(405, "method not allowed")
            return await files(req, self.config, self.executor)
        token = self.config.access_token
        if token is not None and not token_matches(token, req.headers.get("x-access-token")):
            return await req.respond_http_error(401, UNAUTHORIZED_MESSAGE)
        if path == INIT_PATH:
            if method != "POST":
                return await req.respond_http_error(405, "method not allowed")
            return await hand_over(req, self.config, self.processes, self.deadline)
        if path == DEADLINE_PATH:
            if method != "POST":
                return await req.respond_http_error(405, "method not allowed")
            return await set_deadline(req, self.deadline)
        if path == "/envs":
            if method != "GET":
                return await req.respond_http_error(405, "method not allowed")
            return await req.respond_json(200, dict(self.config.env_vars))
        if path in self.unary or path in self.streams or path == STREAM_INPUT:
            if method != "POST":
                return await req.respond_http_error(405, "method not allowed")
            if path in self.unary:
                return await rpc.serve_unary(req, self.config, self.unary[path])
            if path in self.streams:
                return await rpc.serve_server_stream(req, self.config, self.streams[path])
            return await rpc.serve_client_stream(req, self.process_service.stream_input())
        return await req.respond_http_error(404, f"no route for {path}")


def create_app(config: EnvdConfig) -> EnvdApp:
    return EnvdApp(config)
