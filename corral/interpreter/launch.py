"""Starting a kernel process inside the sandbox, as the sandbox user, reaped by the daemon's reaper.

Kernels are exec'd with explicit argv (no kernelspec search, no entry points) through
`corral.guest.spawn`, in their own session so an interrupt or kill reaches everything they
started. Their exit status comes from the daemon's reaper (pid 1 reaps every child; asyncio's
child watchers would race it). The last few
KB of a kernel's stderr are kept so a kernel that fails to start or dies can say why.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from corral.errors import CorralError
from corral.guest import exitstatus
from corral.guest.output import OutputReader
from corral.guest.reaper import reaper_for
from corral.guest.spawn import is_valid_env_pair, login_env, mark_reaped, spawn_as
from corral.guest.users import User

STDERR_TAIL_BYTES = 8192

OnData = Callable[[bytes], None]

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)  # dlopen(NULL): works after pivot_root


def _die_with_parent() -> None:  # in the child, after the uid switch (which would clear it)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class KernelStartError(CorralError, RuntimeError):
    """A kernel could not be started; the message is meant for the API caller."""


@dataclass(frozen=True)
class Pipes:
    """Which extra pipes the kernel gets (beyond stderr, always captured)."""

    stdin: bool = False
    stdout: bool = False
    control: bool = False   # a pipe on the kernel's fd 3 for protocol messages to us


def kernel_env(user: User, sandbox_env: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    env = {**login_env(user), "LANG": "C.UTF-8", "SHELL": user.shell or "/bin/bash"}
    env.update(sandbox_env)
    env.update(extra)
    return {k: v for k, v in env.items() if is_valid_env_pair(k, v)}


class KernelProcess:
    """One running kernel process and the parent ends of its pipes."""

    def __init__(self, argv: Sequence[str], user: User, cwd: str, env: Mapping[str, str],
                 pipes: Pipes = Pipes(), *, on_stdout: OnData | None = None,
                 on_stderr: OnData | None = None, on_control: OnData | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.argv = list(argv)
        self.exited: asyncio.Future[int] = self.loop.create_future()
        self._stderr_tail: deque[bytes] = deque()
        self._stderr_size = 0
        self.stdin_fd: int | None = None
        self.stdout_fd: int | None = None
        self.control_fd: int | None = None
        self.stderr_fd: int | None = None
        parent: list[int] = []
        child: list[int] = []
        try:
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            parent.append(err_r)
            child.append(err_w)
            stdin_arg: int = subprocess.DEVNULL
            stdout_arg: int = subprocess.DEVNULL
            pass_fds: tuple[int, ...] = ()
            if pipes.stdin:
                in_r, in_w = os.pipe2(os.O_CLOEXEC)
                parent.append(in_w)
                child.append(in_r)
                self.stdin_fd, stdin_arg = in_w, in_r
            if pipes.stdout:
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                parent.append(out_r)
                child.append(out_w)
                self.stdout_fd, stdout_arg = out_r, out_w
            if pipes.control:
                ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
                parent.append(ctl_r)
                child.append(ctl_w)
                self.control_fd = ctl_r
            # A kernel must not outlive the daemon, even one killed outright outside a pid
            # namespace (development, tests); inside a sandbox pid 1's death ends them anyway.
            preexec = _die_with_parent
            if pipes.control:
                ctl_child = child[-1]

                def preexec() -> None:  # in the child: the control pipe becomes fd 3
                    _die_with_parent()
                    os.dup2(ctl_child, 3)
                    os.set_inheritable(3, True)

                # close_fds runs after preexec_fn in the child: keep fd 3 through it.
                pass_fds = (3,)
            self.popen = spawn_as(self.argv, user, cwd=cwd, env=env, stdin=stdin_arg, stdout=stdout_arg,
                                  stderr=err_w, pass_fds=pass_fds, preexec_fn=preexec)
        except OSError as exc:
            for fd in parent + child:
                os.close(fd)
            if exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC):
                raise KernelStartError(f"cannot start {self.argv[0]}: {exc.strerror}") from None
            raise KernelStartError(f"cannot start {self.argv[0]}: {exc}") from None
        for fd in child:
            os.close(fd)
        self.pid = self.popen.pid
        self.stderr_fd = err_r
        for fd in parent:
            os.set_blocking(fd, False)
        self._readers: dict[str, OutputReader] = {}
        for name, sink in (("stdout_fd", on_stdout), ("stderr_fd", on_stderr), ("control_fd", on_control)):
            fd = getattr(self, name)
            if fd is not None:
                self._readers[name] = OutputReader(self.loop, fd, self._sink(name, sink), self._eof(name))
        reaper_for(self.loop).watch(self.pid, self._on_exit)

    # ------------------------------------------------------------------ lifetime

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def _on_exit(self, status: int) -> None:
        mark_reaped(self.popen, status)
        self.drain("stdout_fd", "stderr_fd", "control_fd")
        # The session may have left children behind (a shell's background job); they go too.
        self.signal_group(signal.SIGKILL)
        if not self.exited.done():
            self.exited.set_result(status)

    def describe_exit(self) -> str:
        if not self.exited.done():
            return "running"
        return exitstatus.describe(self.exited.result())[2]

    def stderr_tail(self) -> str:
        return b"".join(self._stderr_tail).decode("utf-8", "replace").strip()

    def drain(self, *names: str) -> None:
        """Read whatever is already in the named pipes (e.g. before acting on a control line)."""
        for name in names:
            reader = self._readers.get(name)
            if reader is not None:
                reader.drain()

    def _sink(self, name: str, sink: OnData | None) -> OnData:
        def on_data(data: bytes) -> None:
            if name == "stderr_fd":
                self._stderr_tail.append(data)
                self._stderr_size += len(data)
                while self._stderr_size > STDERR_TAIL_BYTES and len(self._stderr_tail) > 1:
                    self._stderr_size -= len(self._stderr_tail.popleft())
            if sink is not None:
                sink(data)
        return on_data

    def _eof(self, name: str) -> Callable[[], None]:
        def on_eof() -> None:
            self._readers.pop(name, None)
            setattr(self, name, None)
        return on_eof

    def signal(self, sig: int) -> None:
        if self.alive:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    async def terminate(self, grace: float = 2.0) -> None:
        """SIGTERM, then SIGKILL after `grace`; returns once the process is reaped."""
        if self.alive:
            self.signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), grace)
            except asyncio.TimeoutError:
                self.signal_group(signal.SIGKILL)
                await asyncio.shield(self.exited)
        self.close_fds()

    def kill_now(self) -> None:
        """Synchronous last resort (daemon shutdown): SIGKILL the kernel's whole session."""
        self.signal_group(signal.SIGKILL)
        self.close_fds()

    def close_fds(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        if self.stdin_fd is not None:
            try:
                os.close(self.stdin_fd)
            except OSError:
                pass
        self.stdin_fd = self.stdout_fd = self.control_fd = self.stderr_fd = None
