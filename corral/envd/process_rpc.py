"""The `process.Process` service: start, list, connect to, feed and signal processes.

Handlers decode the protobuf-JSON request and drive `processes.ProcessManager`; the call shapes
(unary, server stream, client stream) are run by `rpc`.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

from corral.envd.connect import (
    decode_bytes, get_bool, get_enum, get_int, get_obj, get_str, get_str_list, get_str_map,
)
from corral.envd.processes import ManagedProcess, ProcessManager, ProcessSpec, event_stream
from corral.envd.rpc import Call, ClientStream, Json, ServerStream, Unary
from corral.wire.framing import ConnectError

SIGNALS = {"SIGNAL_UNSPECIFIED": 0, "SIGNAL_SIGTERM": 15, "SIGNAL_SIGKILL": 9}
STREAM_INPUT = "/process.Process/StreamInput"


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


async def _write_input(proc: ManagedProcess, inp: Json) -> None:
    if "pty" in inp:
        await proc.write_input(decode_bytes(inp["pty"], "input.pty"), pty=True)
    elif "stdin" in inp:
        await proc.write_input(decode_bytes(inp["stdin"], "input.stdin"), pty=False)
    else:
        raise ConnectError("invalid_argument", "input must carry stdin or pty bytes")


class _StreamInput(ClientStream):
    """start{process}, then data{input}... (keepalives ignored)."""

    def __init__(self, processes: ProcessManager) -> None:
        self.processes = processes
        self.proc: ManagedProcess | None = None

    async def message(self, msg: Json) -> None:
        if "start" in msg:
            pid, tag = _selector(get_obj(msg, "start") or {})
            self.proc = self.processes.find(pid, tag)
        elif "data" in msg:
            if self.proc is None:
                raise ConnectError("failed_precondition", "data before start in StreamInput")
            await _write_input(self.proc, get_obj(get_obj(msg, "data") or {}, "input") or {})


class ProcessService:
    def __init__(self, processes: ProcessManager) -> None:
        self.processes = processes
        self.unary: dict[str, Unary] = {
            "/process.Process/List": self.list,
            "/process.Process/SendInput": self.send_input,
            "/process.Process/SendSignal": self.send_signal,
            "/process.Process/CloseStdin": self.close_stdin,
            "/process.Process/Update": self.update,
        }
        self.streams: dict[str, ServerStream] = {
            "/process.Process/Start": self.start,
            "/process.Process/Connect": self.connect,
        }

    def stream_input(self) -> ClientStream:
        return _StreamInput(self.processes)

    async def list(self, call: Call, msg: Json) -> Json:
        return {"processes": [p.info() for p in self.processes.procs.values()]}

    async def send_input(self, call: Call, msg: Json) -> Json:
        pid, tag = _selector(msg)
        await _write_input(self.processes.find(pid, tag), get_obj(msg, "input") or {})
        return {}

    async def send_signal(self, call: Call, msg: Json) -> Json:
        pid, tag = _selector(msg)
        sig = get_enum(msg, "signal", SIGNALS)
        if sig not in (signal.SIGTERM, signal.SIGKILL):
            raise ConnectError("invalid_argument", "signal must be SIGNAL_SIGTERM or SIGNAL_SIGKILL")
        self.processes.find(pid, tag).signal(sig)
        return {}

    async def close_stdin(self, call: Call, msg: Json) -> Json:
        pid, tag = _selector(msg)
        proc = self.processes.find(pid, tag)
        if proc.pty_fd is not None:
            raise ConnectError("failed_precondition", "a pty process has no separate stdin")
        proc.close_stdin()
        return {}

    async def update(self, call: Call, msg: Json) -> Json:
        pid, tag = _selector(msg)
        proc = self.processes.find(pid, tag)
        size = _pty_size(get_obj(msg, "pty"))
        if size is not None:
            proc.resize(*size)
        return {}

    async def start(self, call: Call, msg: Json) -> AsyncIterator[Json]:
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
        cwd = call.path(cwd_raw) if cwd_raw else (call.config.default_workdir or user.home)
        tag = get_str(msg, "tag") if "tag" in msg else None
        stdin = get_bool(msg, "stdin")
        timeout = call.timeout()
        proc = self.processes.start(
            spec, user, cwd=cwd, tag=tag, stdin=True if stdin is None else stdin,
            pty_size=_pty_size(get_obj(msg, "pty")), timeout=timeout)
        end_at = None if timeout is None else asyncio.get_running_loop().time() + timeout
        async for event in self._follow(proc, call.keepalive(), end_at):
            yield event

    async def connect(self, call: Call, msg: Json) -> AsyncIterator[Json]:
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
                if end_at is not None and "end" in event and asyncio.get_running_loop().time() >= end_at:
                    # The process ended because the request's Connect-Timeout-Ms killed it: the
                    # caller's answer is the deadline, as with E2B's envd (the SDK raises its
                    # TimeoutException), not an exit code of a kill it did not ask for.
                    raise ConnectError("deadline_exceeded", "stream exceeded its Connect-Timeout-Ms")
                yield {"event": event}
            if sub.overflowed:
                raise ConnectError("resource_exhausted", "the client fell too far behind the process output")
        finally:
            proc.unsubscribe(sub)
