"""The processes the daemon started: spawning, output fan-out, input, signals, lifetime.

Every process is started by `corral.guest.spawn` (its own session, so a signal reaches its whole
process group) and is tracked until it has exited and its output is drained. Output is read by
`corral.guest.output.OutputReader`s and fanned out to every subscriber (the Start stream and any
Connect streams); exit statuses arrive from the daemon's reaper, never from Popen.wait.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import struct
import subprocess
import termios
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from corral.envd.connect import encode_bytes
from corral.wire.framing import ConnectError
from corral.guest import exitstatus
from corral.guest.output import OutputReader
from corral.guest.reaper import reaper_for
from corral.guest.limits import reclaim_process_slots, user_pids_max
from corral.guest.spawn import is_valid_env_pair, login_env, mark_reaped, spawn_as
from corral.guest.users import User

Event = dict[str, Any]

# After the main process exits, how long to keep draining output held open by background
# children before ending the stream (they keep running; we stop waiting for them).
DRAIN_GRACE_SECONDS = 0.25
# A subscriber this many events behind is dropped rather than letting the daemon's memory grow
# without bound behind a stalled client; the process itself keeps running.
MAX_QUEUED_EVENTS = 4096


@dataclass
class ProcessSpec:
    cmd: str
    args: list[str] = field(default_factory=list)
    envs: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cmd": self.cmd, "args": self.args, "envs": self.envs}
        if self.cwd is not None:
            out["cwd"] = self.cwd
        return out


class Subscription:
    """One reader of a process's events; dropped (ended) if it falls too far behind."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.overflowed = False

    def put(self, event: Event | None) -> None:
        if self.overflowed:
            return
        if event is not None and self.queue.qsize() >= MAX_QUEUED_EVENTS:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


def _make_controlling_tty() -> None:  # runs in the child, after setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class ManagedProcess:
    def __init__(self, manager: "ProcessManager", spec: ProcessSpec, tag: str | None) -> None:
        self.manager = manager
        self.spec = spec
        self.tag = tag
        self.pid = 0
        self.popen: subprocess.Popen[bytes] | None = None
        self.pty_fd: int | None = None
        self.stdin_fd: int | None = None
        self.outputs: dict[int, OutputReader] = {}  # fd -> its reader, until end of output
        self.subscribers: set[Subscription] = set()
        self.status: int | None = None
        self.ended = asyncio.Event()
        self.end_event: Event | None = None
        self._timeout: asyncio.TimerHandle | None = None
        self._grace: asyncio.TimerHandle | None = None

    # -------------------------------------------------------------- lifecycle

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"config": self.spec.to_json(), "pid": self.pid}
        if self.tag is not None:
            out["tag"] = self.tag
        return out

    def subscribe(self) -> Subscription:
        sub = Subscription()
        sub.put({"start": {"pid": self.pid}})
        if self.end_event is not None:
            sub.put(self.end_event)
            sub.put(None)
        else:
            self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    def _broadcast(self, event: Event | None) -> None:
        for sub in list(self.subscribers):
            sub.put(event)
            if sub.overflowed:
                self.subscribers.discard(sub)

    def _read_output(self, fd: int, kind: str) -> None:
        """Start streaming `fd` ("stdout" | "stderr" | "pty") to the subscribers."""
        def on_data(data: bytes) -> None:
            self._broadcast({"data": {kind: encode_bytes(data)}})

        def on_eof() -> None:
            self.outputs.pop(fd, None)
            self._maybe_finish()

        self.outputs[fd] = OutputReader(self.manager.loop, fd, on_data, on_eof, close_fd=fd != self.pty_fd)

    def _on_exit(self, status: int) -> None:
        self.status = status
        if self.popen is not None:
            mark_reaped(self.popen, status)
        if self._timeout is not None:
            self._timeout.cancel()
        # Pull whatever is already buffered before deciding whether to wait for EOF.
        for reader in list(self.outputs.values()):
            reader.drain()
        if self.outputs:
            self._grace = self.manager.loop.call_later(DRAIN_GRACE_SECONDS, self._finish)
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.status is not None and not self.outputs:
            self._finish()

    def _finish(self) -> None:
        if self.end_event is not None or self.status is None:
            return
        if self._grace is not None:
            self._grace.cancel()
        for reader in list(self.outputs.values()):
            reader.close()
        self.outputs.clear()
        self.close_stdin()
        if self.pty_fd is not None:
            os.close(self.pty_fd)
            self.pty_fd = None
        code, exited, text = exitstatus.describe(self.status)
        end: dict[str, Any] = {"exitCode": code, "exited": exited, "status": text}
        if not (exited and code == 0):
            end["error"] = text
        self.end_event = {"end": end}
        self._broadcast(self.end_event)
        self._broadcast(None)
        self.subscribers.clear()
        self.manager._forget(self)
        self.ended.set()

    def _on_timeout(self) -> None:
        self.signal(signal.SIGKILL)

    # -------------------------------------------------------------- control

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def close_stdin(self) -> None:
        if self.stdin_fd is not None:
            os.close(self.stdin_fd)
            self.stdin_fd = None

    async def write_input(self, data: bytes, pty: bool) -> None:
        if self.end_event is not None:
            raise ConnectError("not_found", f"process with pid {self.pid} has exited")
        fd = self.pty_fd if pty else self.stdin_fd
        if fd is None:
            what = "pty" if pty else "stdin"
            raise ConnectError("failed_precondition", f"process with pid {self.pid} has no open {what}")
        view = memoryview(data)
        loop = self.manager.loop
        while view:
            try:
                n = os.write(fd, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            except BrokenPipeError:
                raise ConnectError("failed_precondition", "the process closed its input") from None
            ready = loop.create_future()
            loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_writer(fd)
            # The process may have ended (and its fds been closed) while we waited.
            fd = self.pty_fd if pty else self.stdin_fd
            if fd is None:
                raise ConnectError("failed_precondition", "the process closed its input")

    def resize(self, cols: int, rows: int) -> None:
        if self.pty_fd is None:
            raise ConnectError("failed_precondition", f"process with pid {self.pid} has no pty")
        _set_winsize(self.pty_fd, cols, rows)


class ProcessManager:
    def __init__(self, env_vars: dict[str, str]) -> None:
        self.env_vars = env_vars
        self.procs: dict[int, ManagedProcess] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def _forget(self, proc: ManagedProcess) -> None:
        if self.procs.get(proc.pid) is proc:
            del self.procs[proc.pid]

    def find(self, pid: int | None = None, tag: str | None = None) -> ManagedProcess:
        if pid is not None:
            proc = self.procs.get(pid)
            if proc is None:
                raise ConnectError("not_found", f"process with pid {pid} not found")
            return proc
        if tag is not None:
            for proc in self.procs.values():
                if proc.tag == tag:
                    return proc
            raise ConnectError("not_found", f"process with tag {tag!r} not found")
        raise ConnectError("invalid_argument", "a process selector (pid or tag) is required")

    def build_env(self, user: User, request_envs: dict[str, str]) -> dict[str, str]:
        env = login_env(user)
        env.update(self.env_vars)
        env.update(request_envs)
        for key, value in env.items():
            if not is_valid_env_pair(key, value):
                raise ConnectError("invalid_argument", f"invalid environment variable {key!r}")
        return env

    def start(self, spec: ProcessSpec, user: User, *, cwd: str, tag: str | None, stdin: bool,
              pty_size: tuple[int, int] | None, timeout: float | None) -> ManagedProcess:
        """Spawn synchronously: the pid is registered with the reaper before the loop runs again."""
        self._loop = asyncio.get_running_loop()
        if not spec.cmd:
            raise ConnectError("invalid_argument", "process.cmd is required")
        if "\x00" in spec.cmd or any("\x00" in a for a in spec.args):
            raise ConnectError("invalid_argument", "command contains a NUL byte")
        if not os.path.isdir(cwd):
            raise ConnectError("invalid_argument", f"cwd '{cwd}' does not exist or is not a directory")
        if tag is not None and any(p.tag == tag for p in self.procs.values()):
            raise ConnectError("already_exists", f"a process with tag {tag!r} is running")
        env = self.build_env(user, spec.envs)
        # A fork bomb of an ended command may hold every user process slot: take them back.
        reclaim_process_slots(reaper_for(self.loop).watched(), user_pids_max())
        proc = ManagedProcess(self, spec, tag)
        parent_fds: list[int] = []
        child_fds: list[int] = []
        try:
            if pty_size is not None:
                master, slave = os.openpty()
                parent_fds.append(master)
                child_fds.append(slave)
                cols, rows = pty_size
                _set_winsize(master, cols, rows)
                os.fchown(slave, user.uid, -1)
                stdin_arg: Any = slave
                stdout_arg: Any = slave
                stderr_arg: Any = slave
                preexec = _make_controlling_tty
                proc.pty_fd = master
                outputs = {master: "pty"}
            else:
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                parent_fds += [out_r, err_r]
                child_fds += [out_w, err_w]
                if stdin:
                    in_r, in_w = os.pipe2(os.O_CLOEXEC)
                    parent_fds.append(in_w)
                    child_fds.append(in_r)
                    os.set_blocking(in_w, False)
                    proc.stdin_fd = in_w
                    stdin_arg = in_r
                else:
                    stdin_arg = subprocess.DEVNULL
                stdout_arg, stderr_arg = out_w, err_w
                preexec = None
                outputs = {out_r: "stdout", err_r: "stderr"}
            popen = spawn_as([spec.cmd, *spec.args], user, cwd=cwd, env=env, stdin=stdin_arg,
                             stdout=stdout_arg, stderr=stderr_arg, preexec_fn=preexec)
        except ConnectError:
            for fd in parent_fds + child_fds:
                os.close(fd)
            raise
        except subprocess.SubprocessError as exc:   # the child could not enter the user cgroup
            for fd in parent_fds + child_fds:
                os.close(fd)
            raise ConnectError("internal", f"failed to start {spec.cmd!r}: {exc}") from None
        except OSError as exc:
            for fd in parent_fds + child_fds:
                os.close(fd)
            if exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR):
                raise ConnectError("invalid_argument", f"failed to start {spec.cmd!r}: {exc.strerror}") from None
            raise ConnectError("internal", f"failed to start {spec.cmd!r}: {exc}") from None
        for fd in child_fds:
            os.close(fd)
        proc.popen = popen
        proc.pid = popen.pid
        self.procs[proc.pid] = proc
        reaper_for(self.loop).watch(proc.pid, proc._on_exit)
        for fd, kind in outputs.items():
            proc._read_output(fd, kind)
        if timeout is not None:
            proc._timeout = self.loop.call_later(timeout, proc._on_timeout)
        return proc

    def kill_all(self) -> None:
        for proc in list(self.procs.values()):
            proc.signal(signal.SIGKILL)


async def event_stream(sub: Subscription, keepalive: float) -> AsyncIterator[Event]:
    """Yield a subscriber's events, with a keepalive after `keepalive` seconds of silence."""
    while True:
        try:
            event = await asyncio.wait_for(sub.queue.get(), keepalive)
        except asyncio.TimeoutError:
            yield {"keepalive": {}}
            continue
        if event is None:
            return
        yield event
