"""The daemon's ASGI application: routing, authentication, and the RPC handlers.

Connect unary calls, server streams (Start, Connect, WatchDir), the StreamInput client stream
and the plain HTTP routes (/health, /envs, /files) all enter here.  Framing lives in
`connect`, process supervision in `processes`, filesystem work in `filesystem`/`files_http`,
which this module runs in the requesting user's identity through a UserExecutor.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any, AsyncIterator, Awaitable, Callable

from corral.envd import filesystem as fs
from corral.envd.auth import UNAUTHORIZED_MESSAGE, basic_username, signature_valid, token_matches
from corral.wire.handoff import EnvdConfig
from corral.envd.connect import (
    FLAG_END_STREAM,
    MAX_MESSAGE_BYTES,
    STREAM_CONTENT_TYPE,
    ConnectError,
    EnvelopeReader,
    decode_bytes,
    end_stream_envelope,
    get_bool,
    get_enum,
    get_int,
    get_obj,
    get_str,
    get_str_list,
    get_str_map,
    loads_message,
    message_envelope,
    parse_timeout_ms,
)
from corral.envd.creds import UserExecutor
from corral.envd.files_http import HTTPFailure, download, upload
from corral.envd.httpio import BodyTooLarge, ClientDisconnected, Request
from corral.envd.processes import ManagedProcess, ProcessManager, ProcessSpec, event_stream
from corral.envd.users import User, lookup_user, resolve_path
from corral.envd.watchers import WatchRegistry

log = logging.getLogger("corral.envd")

DEFAULT_KEEPALIVE_SECONDS = 90.0
SIGNALS = {"SIGNAL_UNSPECIFIED": 0, "SIGNAL_SIGTERM": 15, "SIGNAL_SIGKILL": 9}

Json = dict[str, Any]


class Call:
    """One RPC or HTTP request, with lazily resolved caller identity."""

    def __init__(self, app: "EnvdApp", req: Request, username: str | None = None) -> None:
        self.app = app
        self.req = req
        self._username = username
        self._user: User | None = None

    @property
    def user(self) -> User:
        if self._user is None:
            name = self._username or basic_username(self.req.headers.get("authorization"))
            self._user = lookup_user(name or self.app.config.default_user)
        return self._user

    def path(self, raw: str) -> str:
        return resolve_path(raw, self.user, self.app.config.default_workdir)

    def keepalive(self) -> float:
        raw = self.req.headers.get("keepalive-ping-interval", "")
        try:
            value = float(raw)
        except ValueError:
            return DEFAULT_KEEPALIVE_SECONDS
        return value if 0 < value <= 24 * 3600 else DEFAULT_KEEPALIVE_SECONDS

    def timeout(self) -> float | None:
        return parse_timeout_ms(self.req.headers.get("connect-timeout-ms"))


def _selector(msg: Json) -> tuple[int | None, str | None]:
    sel = get_obj(msg, "process") or {}
    if "pid" in sel:
        return get_int(sel, "pid", minimum=1, maximum=2**32 - 1), None
    if "tag" in sel:
        return None, get_str(sel, "tag")
    raise ConnectError("invalid_argument", "a process selector (pid or tag) is required")


def _pty_size(pty: Json | None) -> tuple[int, int] | None:
    if pty is None:
        return None
    size = get_obj(pty, "size") or {}
    cols = get_int(size, "cols", minimum=0, maximum=65535)
    rows = get_int(size, "rows", minimum=0, maximum=65535)
    return (cols or 80, rows or 24)


INTERPRETER_PORT = b"49999"


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


# Server-only: the proxy refuses every path under /.corral/, so only the host side (which holds
# the socket) can reach it, and only with the token the daemon currently has.
INIT_PATH = "/.corral/init"


class EnvdApp:
    def __init__(self, config: EnvdConfig) -> None:
        self.config = config
        # Called after /.corral/init with the new env vars.
        self.on_init: list[Callable[[dict[str, str]], None]] = []
        self._interpreter: Any = None
        self.processes = ProcessManager(dict(config.env_vars))
        self._executor: UserExecutor | None = None
        self._watches: WatchRegistry | None = None
        self.unary: dict[str, Callable[[Call, Json], Awaitable[Json]]] = {
            "/process.Process/List": self.rpc_list,
            "/process.Process/SendInput": self.rpc_send_input,
            "/process.Process/SendSignal": self.rpc_send_signal,
            "/process.Process/CloseStdin": self.rpc_close_stdin,
            "/process.Process/Update": self.rpc_update,
            "/filesystem.Filesystem/Stat": self.rpc_stat,
            "/filesystem.Filesystem/MakeDir": self.rpc_make_dir,
            "/filesystem.Filesystem/Move": self.rpc_move,
            "/filesystem.Filesystem/ListDir": self.rpc_list_dir,
            "/filesystem.Filesystem/Remove": self.rpc_remove,
            "/filesystem.Filesystem/CreateWatcher": self.rpc_create_watcher,
            "/filesystem.Filesystem/GetWatcherEvents": self.rpc_get_watcher_events,
            "/filesystem.Filesystem/RemoveWatcher": self.rpc_remove_watcher,
        }
        self.streams: dict[str, Callable[[Call, Json], AsyncIterator[Json]]] = {
            "/process.Process/Start": self.stream_start,
            "/process.Process/Connect": self.stream_connect,
            "/filesystem.Filesystem/WatchDir": self.stream_watch_dir,
        }

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

    @property
    def interpreter(self) -> Any:
        """The code interpreter's ASGI app, made on first use (or at start, for warm kernels)."""
        if self._interpreter is None:
            from corral.interpreter.app import create_app as create_interpreter
            from corral.interpreter.contexts import InterpreterConfig

            self._interpreter = create_interpreter(InterpreterConfig(
                env_vars=lambda: self.processes.env_vars,
                default_user=self.config.default_user,
                default_cwd=self.config.default_workdir,
                default_languages=tuple(self.config.start_kernels),
            ))
        return self._interpreter

    def start_kernels(self) -> None:
        """Warm start: kernels listed in the config start now, in the daemon's loop."""
        if self.config.start_kernels:
            self.interpreter.state.interpreter.start_default_kernels()

    def close(self) -> None:
        """Kill what we started and release watchers (used on shutdown)."""
        if self._interpreter is not None:
            self._interpreter.state.interpreter.kill_all()
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
        if _header(scope, b"e2b-sandbox-port") == INTERPRETER_PORT:
            # The code interpreter (E2B's port 49999). Its callers were authenticated by the
            # server's proxy (access or traffic token); this socket is reachable only from there.
            await self.interpreter(scope, receive, send)
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
            return await self._files(req)
        token = self.config.access_token
        if token is not None and not token_matches(token, req.headers.get("x-access-token")):
            return await req.respond_http_error(401, UNAUTHORIZED_MESSAGE)
        if path == INIT_PATH:
            if method != "POST":
                return await req.respond_http_error(405, "method not allowed")
            return await self._init(req)
        if path == "/envs":
            if method != "GET":
                return await req.respond_http_error(405, "method not allowed")
            return await req.respond_json(200, dict(self.config.env_vars))
        if path in self.unary or path in self.streams or path == "/process.Process/StreamInput":
            if method != "POST":
                return await req.respond_http_error(405, "method not allowed")
            if path in self.unary:
                return await self._unary(req, self.unary[path])
            if path in self.streams:
                return await self._server_stream(req, self.streams[path])
            return await self._stream_input(req)
        return await req.respond_http_error(404, f"no route for {path}")

    # ------------------------------------------------------------------ /.corral/init

    async def _init(self, req: Request) -> None:
        """Hand a pre-started (pooled) sandbox to its owner: a new access token and env vars.

        A warm pool starts sandboxes before anyone asks for them, with a token only the server
        knows; claiming one swaps in the token the client gets and the client's env vars.
        """
        try:
            body = loads_message(await req.read_body(MAX_MESSAGE_BYTES))
            token = body.get("accessToken")
            if token is not None and (not isinstance(token, str) or not token):
                raise ConnectError("invalid_argument", "accessToken must be a non-empty string or null")
            env_vars = get_str_map(body, "envVars")
        except ConnectError as exc:
            return await req.respond_http_error(400, exc.message)
        self.config.access_token = token
        self.config.env_vars = dict(env_vars)
        self.processes.env_vars = dict(env_vars)
        for hook in self.on_init:
            hook(dict(env_vars))
        return await req.respond(204, b"", None)

    # ------------------------------------------------------------------ /files

    async def _files(self, req: Request) -> None:
        operation = "read" if req.method == "GET" else "write"
        path_param = req.query_value("path")
        username = req.query_value("username") or None
        token = self.config.access_token
        if token is not None:
            header = req.headers.get("x-access-token")
            signature = req.query_value("signature")
            if header is not None:
                if not token_matches(token, header):
                    return await req.respond_http_error(401, UNAUTHORIZED_MESSAGE)
            elif signature is not None:
                ok, reason = signature_valid(
                    signature=signature, expiration=req.query_value("signature_expiration"),
                    path=path_param or "", operation=operation, username=username, token=token)
                if not ok:
                    return await req.respond_http_error(401, f"{UNAUTHORIZED_MESSAGE}: {reason}")
            else:
                return await req.respond_http_error(401, UNAUTHORIZED_MESSAGE)
        call = Call(self, req, username)
        try:
            user = call.user
            if operation == "read":
                if not path_param:
                    return await req.respond_http_error(400, "the path query parameter is required")
                return await download(req, user, self.executor, path_param, self.config.default_workdir)
            result = await upload(req, user, self.executor, self.config.max_upload_bytes,
                                  self.config.default_workdir)
            await req.respond_json(200, result)
        except HTTPFailure as exc:
            if not req.response_started:
                await req.respond_http_error(exc.status, exc.message)
        except ConnectError as exc:
            if not req.response_started:
                await req.respond_http_error(exc.http_status, exc.message)

    # ------------------------------------------------------------------ Connect plumbing

    @staticmethod
    def _content_type(req: Request) -> str:
        return req.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @staticmethod
    def _check_identity_encoding(req: Request, *names: str) -> None:
        for name in names:
            value = req.headers.get(name, "identity").strip().lower()
            if value not in ("identity", ""):
                raise ConnectError("unimplemented", f"{name} {value!r} is not supported")

    async def _unary(self, req: Request, handler: Callable[[Call, Json], Awaitable[Json]]) -> None:
        try:
            if self._content_type(req) != "application/json":
                return await req.respond_json(415, {"code": "unknown", "message": "expected content-type application/json"})
            self._check_identity_encoding(req, "content-encoding")
            call = Call(self, req)
            timeout = call.timeout()
            try:
                body = await req.read_body(MAX_MESSAGE_BYTES)
            except BodyTooLarge:
                raise ConnectError("resource_exhausted", "request message too large") from None
            msg = loads_message(body)
            try:
                result = await asyncio.wait_for(handler(call, msg), timeout)
            except asyncio.TimeoutError:
                raise ConnectError("deadline_exceeded", "the call exceeded its Connect-Timeout-Ms") from None
            await req.respond_json(200, result)
        except ConnectError as exc:
            await req.respond_json(exc.http_status, exc.to_json())

    async def _read_single_envelope(self, req: Request) -> Json:
        reader = EnvelopeReader()
        messages: list[bytes] = []
        received = 0
        async for chunk in req.iter_body():
            received += len(chunk)
            if received > MAX_MESSAGE_BYTES + 64:
                raise ConnectError("resource_exhausted", "request message too large")
            for flags, payload in reader.feed(chunk):
                if flags & FLAG_END_STREAM:
                    continue
                messages.append(payload)
        if reader.pending or len(messages) != 1:
            raise ConnectError("invalid_argument", "a server-streaming call needs exactly one request message")
        return loads_message(messages[0])

    async def _server_stream(self, req: Request, handler: Callable[[Call, Json], AsyncIterator[Json]]) -> None:
        if self._content_type(req) != STREAM_CONTENT_TYPE:
            return await req.respond_json(415, {"code": "unknown", "message": f"expected content-type {STREAM_CONTENT_TYPE}"})
        error: ConnectError | None = None
        pump: asyncio.Task[None] | None = None
        gone: asyncio.Task[None] | None = None
        try:
            # Read the whole request before answering: the SDK's HTTP client (hyper) stops
            # sending a chunked request body once response headers arrive.
            try:
                self._check_identity_encoding(req, "connect-content-encoding")
                call = Call(self, req)
                msg = await self._read_single_envelope(req)
            finally:
                await req.start_response(200, [("content-type", STREAM_CONTENT_TYPE)])

            async def run() -> None:
                async for message in handler(call, msg):
                    await req.send_body(message_envelope(message), True)

            pump = asyncio.ensure_future(run())
            gone = asyncio.ensure_future(req.wait_disconnect())
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not pump.done():
                pump.cancel()  # the client went away; the process (if any) keeps running
                await asyncio.gather(pump, return_exceptions=True)
                return
            pump.result()
        except ConnectError as exc:
            error = exc
        finally:
            for task in (pump, gone):
                if task is not None and not task.done():
                    task.cancel()
        await req.send_body(end_stream_envelope(error), False)

    async def _stream_input(self, req: Request) -> None:
        """Client streaming: start{process}, then data{input}... ; one empty reply at the end."""
        if self._content_type(req) != STREAM_CONTENT_TYPE:
            return await req.respond_json(415, {"code": "unknown", "message": f"expected content-type {STREAM_CONTENT_TYPE}"})
        error: ConnectError | None = None
        proc: ManagedProcess | None = None
        try:
            self._check_identity_encoding(req, "connect-content-encoding")
            reader = EnvelopeReader()
            async for chunk in req.iter_body():
                for flags, payload in reader.feed(chunk):
                    if flags & FLAG_END_STREAM:
                        continue
                    msg = loads_message(payload)
                    if "start" in msg:
                        start = get_obj(msg, "start") or {}
                        pid, tag = _selector(start)
                        proc = self.processes.find(pid, tag)
                    elif "data" in msg:
                        if proc is None:
                            raise ConnectError("failed_precondition", "data before start in StreamInput")
                        data = get_obj(msg, "data") or {}
                        await self._write_input(proc, get_obj(data, "input") or {})
                    elif "keepalive" in msg:
                        continue
            if reader.pending:
                raise ConnectError("invalid_argument", "truncated envelope")
        except ConnectError as exc:
            error = exc
        await req.start_response(200, [("content-type", STREAM_CONTENT_TYPE)])
        body = (message_envelope({}) if error is None else b"") + end_stream_envelope(error)
        await req.send_body(body, False)

    # ------------------------------------------------------------------ process service

    async def rpc_list(self, call: Call, msg: Json) -> Json:
        return {"processes": [p.info() for p in self.processes.procs.values()]}

    async def _write_input(self, proc: ManagedProcess, inp: Json) -> None:
        if "pty" in inp:
            await proc.write_input(decode_bytes(inp["pty"], "input.pty"), pty=True)
        elif "stdin" in inp:
            await proc.write_input(decode_bytes(inp["stdin"], "input.stdin"), pty=False)
        else:
            raise ConnectError("invalid_argument", "input must carry stdin or pty bytes")

    async def rpc_send_input(self, call: Call, msg: Json) -> Json:
        pid, tag = _selector(msg)
        proc = self.processes.find(pid, tag)
        await self._write_input(proc, get_obj(msg, "input") or {})
        return {}

    async def rpc_send_signal(self, call: Call, msg: Json) -> Json:
        pid, tag = _selector(msg)
        sig = get_enum(msg, "signal", SIGNALS)
        if sig not in (signal.SIGTERM, signal.SIGKILL):
            raise ConnectError("invalid_argument", "signal must be SIGNAL_SIGTERM or SIGNAL_SIGKILL")
        self.processes.find(pid, tag).signal(sig)
        return {}

    async def rpc_close_stdin(self, call: Call, msg: Json) -> Json:
        pid, tag = _selector(msg)
        proc = self.processes.find(pid, tag)
        if proc.pty_fd is not None:
            raise ConnectError("failed_precondition", "a pty process has no separate stdin")
        proc.close_stdin()
        return {}

    async def rpc_update(self, call: Call, msg: Json) -> Json:
        pid, tag = _selector(msg)
        proc = self.processes.find(pid, tag)
        size = _pty_size(get_obj(msg, "pty"))
        if size is not None:
            proc.resize(*size)
        return {}

    async def stream_start(self, call: Call, msg: Json) -> AsyncIterator[Json]:
        process = get_obj(msg, "process")
        if process is None:
            raise ConnectError("invalid_argument", "process is required")
        cwd_raw = get_str(process, "cwd") or None
        spec = ProcessSpec(
            cmd=get_str(process, "cmd"),
            args=get_str_list(process, "args"),
            envs=get_str_map(process, "envs"),
            cwd=cwd_raw,
        )
        user = call.user
        cwd = call.path(cwd_raw) if cwd_raw else (self.config.default_workdir or user.home)
        tag = get_str(msg, "tag") if "tag" in msg else None
        stdin = get_bool(msg, "stdin")
        proc = self.processes.start(
            spec, user, cwd=cwd, tag=tag, stdin=True if stdin is None else stdin,
            pty_size=_pty_size(get_obj(msg, "pty")), timeout=call.timeout())
        async for event in self._follow(proc, call.keepalive()):
            yield event

    async def stream_connect(self, call: Call, msg: Json) -> AsyncIterator[Json]:
        pid, tag = _selector(msg)
        proc = self.processes.find(pid, tag)
        deadline = call.timeout()
        loop = asyncio.get_running_loop()
        end_at = None if deadline is None else loop.time() + deadline
        async for event in self._follow(proc, call.keepalive(), end_at):
            yield event

    async def _follow(self, proc: ManagedProcess, keepalive: float,
                      end_at: float | None = None) -> AsyncIterator[Json]:
        sub = proc.subscribe()
        try:
            stream = event_stream(sub, keepalive)
            while True:
                wait = None if end_at is None else end_at - asyncio.get_running_loop().time()
                if wait is not None and wait <= 0:
                    raise ConnectError("deadline_exceeded", "stream exceeded its Connect-Timeout-Ms")
                try:
                    event = await asyncio.wait_for(stream.__anext__(), wait)
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    raise ConnectError("deadline_exceeded", "stream exceeded its Connect-Timeout-Ms") from None
                yield {"event": event}
            if sub.overflowed:
                raise ConnectError("resource_exhausted", "the client fell too far behind the process output")
        finally:
            proc.unsubscribe(sub)

    # ------------------------------------------------------------------ filesystem service

    async def rpc_stat(self, call: Call, msg: Json) -> Json:
        return await self.executor.run(call.user, fs.stat_entry, call.path(get_str(msg, "path")))

    async def rpc_make_dir(self, call: Call, msg: Json) -> Json:
        return await self.executor.run(call.user, fs.make_dir, call.path(get_str(msg, "path")))

    async def rpc_move(self, call: Call, msg: Json) -> Json:
        src = call.path(get_str(msg, "source"))
        dst = call.path(get_str(msg, "destination"))
        return await self.executor.run(call.user, fs.move, src, dst)

    async def rpc_list_dir(self, call: Call, msg: Json) -> Json:
        depth = get_int(msg, "depth", minimum=0, maximum=2**32 - 1)
        return await self.executor.run(call.user, fs.list_dir, call.path(get_str(msg, "path")), depth)

    async def rpc_remove(self, call: Call, msg: Json) -> Json:
        return await self.executor.run(call.user, fs.remove, call.path(get_str(msg, "path")))

    def _watch_args(self, call: Call, msg: Json) -> tuple[User, str, bool, bool]:
        return (call.user, call.path(get_str(msg, "path")),
                bool(get_bool(msg, "recursive")),
                bool(get_bool(msg, "includeEntry", "include_entry")))

    async def rpc_create_watcher(self, call: Call, msg: Json) -> Json:
        watcher_id = await self.watches.create(*self._watch_args(call, msg))
        return {"watcherId": watcher_id}

    async def rpc_get_watcher_events(self, call: Call, msg: Json) -> Json:
        return {"events": self.watches.events(get_str(msg, "watcherId", "watcher_id"))}

    async def rpc_remove_watcher(self, call: Call, msg: Json) -> Json:
        self.watches.remove(get_str(msg, "watcherId", "watcher_id"))
        return {}

    async def stream_watch_dir(self, call: Call, msg: Json) -> AsyncIterator[Json]:
        watch = await self.watches.open(*self._watch_args(call, msg))
        keepalive = call.keepalive()
        try:
            yield {"start": {}}
            while True:
                try:
                    event = await asyncio.wait_for(watch.events.get(), keepalive)
                except asyncio.TimeoutError:
                    yield {"keepalive": {}}
                    continue
                yield {"filesystem": event}
                if watch.overflowed:
                    raise ConnectError("resource_exhausted", "too many unread filesystem events")
        finally:
            watch.close()


def create_app(config: EnvdConfig) -> EnvdApp:
    return EnvdApp(config)
