"""Jupyter kernels (Python through ipykernel, R through IRkernel), driven over ZeroMQ directly.

No jupyter server, kernel manager or kernelspec search: we pick the ports, write the connection
file, exec the kernel with explicit argv and talk to it with jupyter_client's AsyncKernelClient.
That keeps the daemon free of run-time discovery from disk (it runs after pivot_root, where the
host's Python library is gone) and saves a process per sandbox.

The connection file lives in a fresh root-owned directory (mkdtemp: never a path the sandbox
user could have prepared) and is deleted as soon as the kernel has read it.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import secrets
import shutil
import socket
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corral.interpreter import events
from corral.interpreter.events import Event
from corral.interpreter.kernel import Emit, Kernel, KernelDied, KernelSpec
from corral.interpreter.launch import KernelProcess, KernelStartError, kernel_env
from corral.interpreter.languages import PYTHON, R

# Run as one cell at kernel start: the chart description first, then the setup that uses it.
PYTHON_STARTUP = "\n\n".join(
    Path(__file__).with_name(name).read_text(encoding="utf-8") for name in ("python_charts.py", "python_startup.py"))

_POLL_SECONDS = 0.25
_REPLY_TIMEOUT = 30.0
_CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")

_zmq_context: Any = None


def _context() -> Any:
    """One ZeroMQ context (one I/O thread) for all kernels of this daemon, made after the fork."""
    global _zmq_context
    if _zmq_context is None:
        import zmq.asyncio

        _zmq_context = zmq.asyncio.Context()
    return _zmq_context


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _json_literal(value: Mapping[str, str]) -> str:
    # JSON string escapes (\n, \", \\, \uXXXX) are valid in both Python and R string literals.
    return json.dumps(dict(value), ensure_ascii=True)


def python_env_code(env_vars: Mapping[str, str]) -> tuple[str, str]:
    return f"__corral_env_push({_json_literal(env_vars)})", "__corral_env_pop()"


def r_env_code(env_vars: Mapping[str, str]) -> tuple[str, str]:
    pairs = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in env_vars.items())
    push = (
        f"local({{ v <- c({pairs}); "
        "assign('.corral_saved_env', Sys.getenv(names(v), unset = NA, names = TRUE), envir = globalenv()); "
        "do.call(Sys.setenv, as.list(v)) })"
    )
    pop = (
        "local({ s <- get0('.corral_saved_env', envir = globalenv()); "
        "for (k in names(s)) { if (is.na(s[[k]])) Sys.unsetenv(k) else do.call(Sys.setenv, setNames(list(s[[k]]), k)) }; "
        "if (exists('.corral_saved_env', envir = globalenv())) rm('.corral_saved_env', envir = globalenv()) })"
    )
    return push, pop


class JupyterKernel(Kernel):
    """A Jupyter-protocol kernel process plus the client that drives it."""

    def __init__(self, spec: KernelSpec, argv_prefix: Sequence[str], *, startup_code: str = "",
                 extra_env: Mapping[str, str] | None = None) -> None:
        super().__init__(spec)
        self.argv_prefix = list(argv_prefix)
        self.startup_code = startup_code
        self.extra_env = dict(extra_env or {})
        self.process: KernelProcess | None = None
        self.client: Any = None

    @property
    def alive(self) -> bool:
        # A kernel killed by kill_now() (an interrupt it ignored) is dead at once for the next
        # cell, even before its process has been reaped.
        return self.client is not None and self.process is not None and self.process.alive

    def _client(self, doing: str) -> Any:
        if self.client is None:
            raise self._died(doing)
        return self.client

    def _argv(self, connection_file: str) -> list[str]:
        if self.spec.language == R:
            return [*self.argv_prefix, "--args", connection_file]
        return [*self.argv_prefix, "-f", connection_file]

    def _died(self, doing: str) -> KernelDied:
        proc = self.process
        how = proc.describe_exit() if proc else "not started"
        tail = proc.stderr_tail() if proc else ""
        detail = f": {tail[-2000:]}" if tail else ""
        return KernelDied(f"the {self.spec.language} kernel died while {doing} ({how}){detail}")

    async def start(self, timeout: float) -> None:
        from jupyter_client.asynchronous.client import AsyncKernelClient

        user = self.spec.user
        ports = _free_ports(len(_CHANNELS))
        info: dict[str, Any] = dict(zip(_CHANNELS, ports))
        info.update(ip="127.0.0.1", transport="tcp", signature_scheme="hmac-sha256",
                    key=secrets.token_hex(32), kernel_name=self.spec.language)
        conn_dir = tempfile.mkdtemp(prefix=".corral-kernel-", dir="/tmp")
        try:
            os.chmod(conn_dir, 0o711)
            conn_file = os.path.join(conn_dir, "connection.json")
            fd = os.open(conn_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(info, fh)
            if os.geteuid() == 0:
                os.chown(conn_file, user.uid, user.gid)
            env = kernel_env(user, self.spec.sandbox_env(), self.extra_env)
            try:
                self.process = KernelProcess(self._argv(conn_file), user, self.spec.cwd, env)
            except KernelStartError as exc:
                raise KernelDied(f"the {self.spec.language} kernel could not start: {exc}") from None
            client = AsyncKernelClient(context=_context())
            client.load_connection_info(info)
            client.session.key = info["key"].encode()
            client.start_channels(hb=False)
            self.client = client
            await self._wait_ready(timeout)
        finally:
            shutil.rmtree(conn_dir, ignore_errors=True)
        if self.startup_code:
            await self._silent(self.startup_code)

    async def _wait_ready(self, timeout: float) -> None:
        """Ready means a kernel_info reply on shell *and* its status messages on iopub: a SUB
        socket joins late (ZeroMQ's slow joiner), and a cell whose `idle` was published before
        we were subscribed would never end."""
        assert self.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if not self.alive:
                raise self._died("starting")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"the {self.spec.language} kernel did not become ready in {timeout:.0f}s")
            msg_id = self.client.kernel_info()
            try:
                await self._shell_reply(msg_id, min(1.0, remaining), "starting")
            except TimeoutError:
                continue
            try:
                await self.client.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue  # not subscribed yet: ask again
            break
        # Drain the handshake's remaining status messages so they never reach a cell.
        while True:
            try:
                await self.client.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                return

    async def _shell_reply(self, msg_id: str, timeout: float, doing: str) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(doing)
            try:
                msg = await self._client(doing).get_shell_msg(timeout=min(_POLL_SECONDS, remaining))
            except queue.Empty:
                if not self.alive:
                    raise self._died(doing) from None
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg

    async def _next_iopub(self, doing: str) -> dict[str, Any]:
        while True:
            try:
                return await self._client(doing).get_iopub_msg(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not self.alive:
                    raise self._died(doing) from None

    async def _silent(self, code: str) -> None:
        await self._execute(code, None)

    async def run(self, code: str, env_vars: Mapping[str, str], emit: Emit) -> None:
        if not self.alive:
            raise self._died("idle")
        pop = None
        if env_vars:
            push, pop = (r_env_code if self.spec.language == R else python_env_code)(env_vars)
            await self._silent(push)
        try:
            await self._execute(code, emit)
        finally:
            if pop is not None and self.alive:
                await self._silent(pop)

    async def _execute(self, code: str, emit: Emit | None) -> None:
        silent = emit is None
        msg_id = self._client("receiving a cell").execute(code, silent=silent, store_history=not silent,
                                     allow_stdin=False, stop_on_error=False)
        error_sent = False
        while True:
            msg = await self._next_iopub("running a cell")
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue  # left over from an interrupted or silent cell
            kind = msg["msg_type"]
            content = msg["content"]
            if kind == "status":
                if content.get("execution_state") == "idle":
                    break
                continue
            if emit is None:
                continue
            event = self._event(kind, content, msg)
            if event is not None:
                error_sent = error_sent or event["type"] == "error"
                emit(event)
        reply = await self._shell_reply(msg_id, _REPLY_TIMEOUT, "finishing a cell")
        if emit is None or reply is None:
            return
        status = reply["content"].get("status")
        if status == "error" and not error_sent:
            c = reply["content"]
            emit(events.error(c.get("ename", "Error"), c.get("evalue", ""), "\n".join(c.get("traceback", []))))
        elif status in ("abort", "aborted"):
            emit(events.error("ExecutionAborted", "Execution was aborted", ""))

    @staticmethod
    def _event(kind: str, content: dict[str, Any], msg: dict[str, Any]) -> Event | None:
        if kind == "execute_input":
            return events.number_of_executions(int(content.get("execution_count") or 0))
        if kind == "stream":
            date = msg.get("header", {}).get("date")
            stamp = date.isoformat() if hasattr(date, "isoformat") else (str(date) if date else None)
            return events.stream(content.get("name", "stdout"), content.get("text", ""), stamp)
        if kind == "execute_result":
            return events.result(content.get("data", {}), True)
        if kind == "display_data":
            return events.result(content.get("data", {}), False)
        if kind == "error":
            return events.error(content.get("ename", "Error"), content.get("evalue", ""),
                                "\n".join(content.get("traceback", [])))
        return None

    def interrupt(self) -> None:
        if self.process is not None:
            import signal

            self.process.signal(signal.SIGINT)

    async def shutdown(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if self.process is not None:
            await self.process.terminate()

    def kill_now(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if self.process is not None:
            self.process.kill_now()


def python_kernel(spec: KernelSpec, python: str) -> JupyterKernel:
    argv = [python, "-m", "ipykernel_launcher", "--HistoryManager.hist_file=:memory:",
            "--IPKernelApp.quiet=True", "--InteractiveShell.colors=NoColor"]
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONUNBUFFERED": "1",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    assert spec.language == PYTHON
    return JupyterKernel(spec, argv, startup_code=PYTHON_STARTUP, extra_env=env)


def r_kernel(spec: KernelSpec, r_binary: str) -> JupyterKernel:
    argv = [r_binary, "--no-save", "--no-restore", "--slave", "-e", "IRkernel::main()"]
    return JupyterKernel(spec, argv)
