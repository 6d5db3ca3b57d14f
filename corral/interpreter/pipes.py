"""Kernels of our own (JavaScript/TypeScript, Java, Bash) that speak a line protocol over pipes.

Each runtime (in `runtimes/`) reads one request a line on stdin and writes JSON events
(`ready`, `result`, `error`, `done`) to its fd 3; the user's output stays on the kernel's real
stdout/stderr pipes and is streamed as it arrives. Before acting on any control line we drain
stdout and stderr, so output printed before a result or the end of a cell is never reported
after it. Interrupt is SIGINT: node breaks the running script, JShell stops the snippet, bash's
trap abandons the cell; each runtime reports it as a KeyboardInterrupt error and carries on.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corral.interpreter import events
from corral.interpreter.kernel import Emit, Kernel, KernelDied, KernelSpec
from corral.interpreter.launch import KernelProcess, KernelStartError, Pipes, kernel_env
from corral.interpreter.languages import BASH, JAVA, JAVASCRIPT, TYPESCRIPT

_RUNTIMES = Path(__file__).with_name("runtimes")
NODE_RUNTIME = (_RUNTIMES / "node_kernel.js").read_text(encoding="utf-8")
BASH_RUNTIME = (_RUNTIMES / "bash_kernel.sh").read_text(encoding="utf-8")
JAVA_RUNTIME = (_RUNTIMES / "CorralJavaKernel.java").read_text(encoding="utf-8")

_MAX_CONTROL_LINE = 64 * 1024 * 1024
_NEWLINES = re.compile(r"(\n)")


def encode_request(code: str, env_vars: Mapping[str, str], as_json: bool) -> bytes:
    if as_json:
        return json.dumps({"code": code, "env": dict(env_vars)}).encode() + b"\n"
    env = b"".join(f"{k}={v}".encode() + b"\0" for k, v in env_vars.items())
    return base64.b64encode(code.encode()) + b" " + base64.b64encode(env) + b"\n"


class PipeKernel(Kernel):
    def __init__(self, spec: KernelSpec, argv: Sequence[str], *, json_requests: bool,
                 extra_env: Mapping[str, str] | None = None, files: Mapping[str, str] | None = None,
                 signal_group: bool = False, newline_apart: bool = False) -> None:
        super().__init__(spec)
        self.argv = list(argv)
        self.json_requests = json_requests
        self.extra_env = dict(extra_env or {})
        # Source files the runtime needs on disk while it starts ({name: text}); `{dir}` in argv
        # is replaced by their (fresh, root-owned) directory, removed once the kernel is ready.
        self.files = dict(files or {})
        self.signal_group = signal_group
        # Java output as E2B's Java kernel streams it: a line's text and its newline are separate
        # messages ("Hello\n" -> "Hello", "\n"), so a line's message has no trailing newline.
        self.newline_apart = newline_apart
        self.process: KernelProcess | None = None
        self._emit: Emit | None = None
        self._control = bytearray()
        self._decoders = {n: codecs.getincrementaldecoder("utf-8")("replace") for n in ("stdout", "stderr")}
        self._ready: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None
        self._count = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def _died(self, doing: str) -> KernelDied:
        proc = self.process
        how = proc.describe_exit() if proc else "not started"
        tail = proc.stderr_tail() if proc else ""
        detail = f": {tail[-2000:]}" if tail and doing == "starting" else ""
        return KernelDied(f"the {self.spec.language} kernel died while {doing} ({how}){detail}")

    # ----------------------------------------------------------------- pipes

    def _output(self, name: str, data: bytes) -> None:
        text = self._decoders[name].decode(data)
        if not text or self._emit is None:
            return
        if not self.newline_apart:
            self._emit(events.stream(name, text))
            return
        for part in _NEWLINES.split(text):
            if part:
                self._emit(events.stream(name, part))

    def _on_control(self, data: bytes) -> None:
        self._control += data
        while b"\n" in self._control:
            line, _, rest = bytes(self._control).partition(b"\n")
            self._control = bytearray(rest)
            if self.process is not None:
                self.process.drain("stdout_fd", "stderr_fd")
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            self._handle(msg)
        if len(self._control) > _MAX_CONTROL_LINE:
            self._control.clear()

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif kind == "done":
            if self._done is not None and not self._done.done():
                self._done.set_result(None)
        elif self._emit is None:
            return
        elif kind == "result":
            data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
            self._emit(events.result(data, bool(msg.get("main", True))))
        elif kind == "error":
            self._emit(events.error(str(msg.get("name") or "Error"), str(msg.get("value") or ""),
                                    str(msg.get("traceback") or "")))

    # ----------------------------------------------------------------- lifecycle

    async def start(self, timeout: float) -> None:
        workdir = None
        argv = self.argv
        try:
            if self.files:
                workdir = tempfile.mkdtemp(prefix=".corral-kernel-", dir="/tmp")
                os.chmod(workdir, 0o711)
                for name, text in self.files.items():
                    path = os.path.join(workdir, name)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                    with os.fdopen(fd, "w", encoding="utf-8") as fh:
                        fh.write(text)
                argv = [a.replace("{dir}", workdir) for a in argv]
            env = kernel_env(self.spec.user, self.spec.sandbox_env(), self.extra_env)
            self._ready = asyncio.get_running_loop().create_future()
            try:
                self.process = KernelProcess(
                    argv, self.spec.user, self.spec.cwd, env, Pipes(stdin=True, stdout=True, control=True),
                    on_stdout=lambda d: self._output("stdout", d),
                    on_stderr=lambda d: self._output("stderr", d),
                    on_control=self._on_control,
                )
            except KernelStartError as exc:
                raise KernelDied(f"the {self.spec.language} kernel could not start: {exc}") from None
            await self._until(self._ready, timeout, "starting")
        finally:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)

    async def _until(self, fut: asyncio.Future[None], timeout: float | None, doing: str) -> None:
        assert self.process is not None
        exited = self.process.exited
        done, _ = await asyncio.wait({fut, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if fut in done:
            return
        if exited in done:
            raise self._died(doing)
        raise TimeoutError(f"the {self.spec.language} kernel did not become ready in {timeout:.0f}s")

    async def _write(self, data: bytes) -> None:
        assert self.process is not None
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            fd = self.process.stdin_fd
            if fd is None or not self.alive:
                raise self._died("receiving a cell")
            try:
                view = view[os.write(fd, view):]
                continue
            except BlockingIOError:
                pass
            except BrokenPipeError:
                raise self._died("receiving a cell") from None
            ready = loop.create_future()
            loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await asyncio.wait({ready, self.process.exited}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                loop.remove_writer(fd)

    async def run(self, code: str, env_vars: Mapping[str, str], emit: Emit) -> None:
        if not self.alive:
            raise self._died("idle")
        self._count += 1
        emit(events.number_of_executions(self._count))
        self._done = asyncio.get_running_loop().create_future()
        self._emit = emit
        try:
            await self._write(encode_request(code, env_vars, self.json_requests))
            await self._until(self._done, None, "running a cell")
        finally:
            self._emit = None
            self._done = None

    def interrupt(self) -> None:
        if self.process is None:
            return
        if self.signal_group:
            self.process.signal_group(signal.SIGINT)
        else:
            self.process.signal(signal.SIGINT)

    async def shutdown(self) -> None:
        if self.process is not None:
            await self.process.terminate()

    def kill_now(self) -> None:
        if self.process is not None:
            self.process.kill_now()


def node_kernel(spec: KernelSpec, node: str, typescript_module: str) -> PipeKernel:
    assert spec.language in (JAVASCRIPT, TYPESCRIPT)
    # --experimental-vm-modules: node runs a cell's `import()` only with it (vm's callback).
    argv = [node, "--stack-trace-limit=20", "--experimental-vm-modules", "-e", NODE_RUNTIME, spec.language,
            typescript_module]
    return PipeKernel(spec, argv, json_requests=True, extra_env={"NODE_NO_WARNINGS": "1"})


def java_kernel(spec: KernelSpec, java: str) -> PipeKernel:
    assert spec.language == JAVA
    argv = [java, "-XX:+UseSerialGC", "-Xshare:auto",
            "--add-opens", "java.base/java.util=ALL-UNNAMED",
            "--add-opens", "java.base/java.lang=ALL-UNNAMED",
            "--add-opens", "java.base/java.io=ALL-UNNAMED",
            "{dir}/CorralJavaKernel.java"]
    # The sandbox's env vars become system properties too (as on E2B); only their names travel.
    names = ",".join(k for k in spec.sandbox_env() if k and "," not in k)
    return PipeKernel(spec, argv, json_requests=False, files={"CorralJavaKernel.java": JAVA_RUNTIME},
                      extra_env={"CORRAL_ENV_PROPERTIES": names}, newline_apart=True)


def bash_kernel(spec: KernelSpec, bash: str) -> PipeKernel:
    assert spec.language == BASH
    argv = [bash, "--noprofile", "--norc", "-c", BASH_RUNTIME]
    return PipeKernel(spec, argv, json_requests=False, signal_group=True)
