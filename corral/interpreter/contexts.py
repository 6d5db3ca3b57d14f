"""Contexts: named, isolated kernels with a language and a cwd, and the executions run in them.

A context is one kernel. Each language has a default context, created on first use (Python's
at interpreter start, so the first `run_code` finds it warm). Executions in one context are
serialised by its lock. An execution runs as its own task, separate from the HTTP response
that streams its events: when the client goes away the response stops, and the execution
interrupts the kernel and keeps the lock until the kernel has finished the cell, so the next
cell can never be hit by a late interrupt. A kernel that dies is restarted in place; the caller
of the cell that killed it gets a clear error, and the next cell runs in the fresh kernel.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.errors import CorralError, NotFound
from corral.wire.framing import ConnectError
from corral.guest.users import User, lookup_user
from corral.interpreter import events
from corral.interpreter.events import Event
from corral.interpreter.jupyter import python_kernel, r_kernel
from corral.interpreter.kernel import EnvGetter, Kernel, KernelDied, KernelSpec
from corral.interpreter.languages import BASH, JAVA, JAVASCRIPT, PYTHON, R, TYPESCRIPT, normalize
from corral.interpreter.pipes import bash_kernel, java_kernel, node_kernel

log = logging.getLogger("corral.interpreter")

# After an interrupt, how long a cell may take to stop before its kernel is restarted instead.
INTERRUPT_GRACE_SECONDS = 10.0


@dataclass
class InterpreterConfig:
    """What the interpreter needs from its host (the in-sandbox daemon or a test)."""

    env_vars: EnvGetter = dict
    default_user: str = "user"
    default_cwd: str | None = None           # None: the user's home
    start_timeout: float = 60.0
    python: str = "/usr/bin/python3"
    node: str = "/usr/bin/node"
    typescript_module: str = "/usr/share/nodejs/typescript"
    r: str = "/usr/bin/R"
    java: str = "/usr/bin/java"
    bash: str = "/bin/bash"
    default_languages: tuple[str, ...] = (PYTHON,)     # kernels started with the interpreter
    listed_languages: tuple[str, ...] = (PYTHON, JAVASCRIPT)  # default contexts that always exist
    resolve_user: Callable[[str], User] = field(default=lookup_user)


class ContextNotFound(NotFound):
    """No context with that id (404)."""


class ExecutionContextError(CorralError, RuntimeError):
    """A context could not be created or (re)started; the message is for the API caller."""


def _make_kernel(config: InterpreterConfig, spec: KernelSpec) -> Kernel:
    lang = spec.language
    if lang == PYTHON:
        return python_kernel(spec, config.python)
    if lang in (JAVASCRIPT, TYPESCRIPT):
        return node_kernel(spec, config.node, config.typescript_module)
    if lang == R:
        return r_kernel(spec, config.r)
    if lang == JAVA:
        return java_kernel(spec, config.java)
    if lang == BASH:
        return bash_kernel(spec, config.bash)
    raise ExecutionContextError(f"no kernel for language {lang!r}")


class Context:
    def __init__(self, manager: "ContextManager", language: str, cwd: str, user: User) -> None:
        self.manager = manager
        self.id = uuid.uuid4().hex
        self.language = language
        self.cwd = cwd
        self.user = user
        self.lock = asyncio.Lock()
        self.kernel: Kernel | None = None
        self.kernel_env: dict[str, str] = {}
        self._starting: asyncio.Task[None] | None = None
        self.removed = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "language": self.language, "cwd": self.cwd}

    def _spec(self) -> KernelSpec:
        return KernelSpec(self.language, self.user, self.cwd, self.manager.config.env_vars)

    async def ensure_started(self) -> Kernel:
        """Start the kernel once; concurrent callers share the same start."""
        if self.kernel is not None and self.kernel.alive:
            return self.kernel
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._start())
        try:
            await asyncio.shield(self._starting)
        except ExecutionContextError:
            self._starting = None
            raise
        assert self.kernel is not None
        return self.kernel

    async def _start(self) -> None:
        # What the kernel's environment holds; sandbox env vars set later (a warm-pool hand-over)
        # are added to each execution instead (see ContextManager.execute).
        self.kernel_env = dict(self.manager.config.env_vars())
        kernel = _make_kernel(self.manager.config, self._spec())
        try:
            await kernel.start(self.manager.config.start_timeout)
        except (KernelDied, TimeoutError) as exc:
            await kernel.shutdown()
            raise ExecutionContextError(f"failed to start the {self.language} kernel: {exc}") from None
        except BaseException:
            kernel.kill_now()
            raise
        if self.removed:
            await kernel.shutdown()
            raise ExecutionContextError("the context was removed")
        self.kernel = kernel

    async def restart(self) -> None:
        async with self.lock:
            await self._restart_locked()

    async def _restart_locked(self) -> None:
        old, self.kernel = self.kernel, None
        if old is not None:
            await old.shutdown()
        await self.ensure_started()

    async def shutdown(self) -> None:
        self.removed = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        kernel, self.kernel = self.kernel, None
        if kernel is not None:
            await kernel.shutdown()

    def kill_now(self) -> None:
        self.removed = True
        if self.kernel is not None:
            self.kernel.kill_now()
            self.kernel = None


class Execution:
    """One cell: runs as a task, publishes events to a queue the HTTP response reads."""

    def __init__(self, context: Context, code: str, env_vars: Mapping[str, str]) -> None:
        self.context = context
        self.code = code
        self.env_vars = dict(env_vars)
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.abandoned = False
        self.task = asyncio.ensure_future(self._run())
        context.manager._executions.add(self.task)
        self.task.add_done_callback(context.manager._executions.discard)

    def _emit(self, event: Event) -> None:
        if not self.abandoned:
            self.queue.put_nowait(event)

    async def _run(self) -> None:
        ctx = self.context
        try:
            async with ctx.lock:
                try:
                    kernel = await ctx.ensure_started()
                except ExecutionContextError as exc:
                    self._emit(events.error("ContextError", str(exc)))
                    return
                try:
                    await kernel.run(self.code, self.env_vars, self._emit)
                except KernelDied as exc:
                    self._emit(events.error(
                        "KernelDied", f"{exc}; the kernel was restarted and its state is lost"))
                    try:
                        await ctx._restart_locked()
                    except ExecutionContextError as restart_exc:
                        log.warning("restarting context %s failed: %s", ctx.id, restart_exc)
        except Exception as exc:  # noqa: BLE001 - the stream must always end cleanly
            log.exception("execution in context %s failed", ctx.id)
            self._emit(events.error("InternalError", str(exc)))
        finally:
            self.queue.put_nowait(None)

    def abandon(self) -> None:
        """The client went away: interrupt the cell; restart the kernel if it ignores that."""
        if self.task.done() or self.abandoned:
            return
        self.abandoned = True
        kernel = self.context.kernel
        if kernel is not None:
            kernel.interrupt()
        asyncio.get_running_loop().call_later(INTERRUPT_GRACE_SECONDS, self._force)

    def _force(self) -> None:
        if self.task.done():
            return
        ctx = self.context
        log.warning("context %s ignored an interrupt; killing its kernel", ctx.id)
        if ctx.kernel is not None:
            ctx.kernel.kill_now()  # run() then sees KernelDied and restarts the kernel


class ContextManager:
    def __init__(self, config: InterpreterConfig) -> None:
        self.config = config
        self.contexts: dict[str, Context] = {}
        self.defaults: dict[str, Context] = {}
        self._executions: set[asyncio.Task[None]] = set()
        self._defaults_registered = False

    def _user(self) -> User:
        try:
            return self.config.resolve_user(self.config.default_user)
        except ConnectError as exc:
            raise ExecutionContextError(f"cannot run kernels as {self.config.default_user!r}: {exc.message}") from None

    def ensure_defaults(self) -> None:
        """Register the default contexts E2B always lists (Python and JavaScript), once, before any
        context a client creates, so listings show them first. A default context's kernel starts
        on first use unless its language is in `default_languages` (warm start)."""
        if self._defaults_registered:
            return
        self._defaults_registered = True
        for lang in self.config.listed_languages:
            self.default(lang)

    def create(self, language: object = None, cwd: object = None) -> Context:
        """Register a context (its kernel starts on `start` or first use); raises ValueError on bad input."""
        self.ensure_defaults()
        return self._create(language, cwd)

    def _create(self, language: object = None, cwd: object = None) -> Context:
        lang = normalize(language)
        user = self._user()
        if cwd is None or cwd == "":
            path = self.config.default_cwd or user.home
        elif isinstance(cwd, str):
            if "\x00" in cwd:
                raise ValueError("cwd contains a NUL byte")
            path = cwd if cwd.startswith("/") else os.path.join(user.home, cwd)
            path = os.path.normpath(path)
        else:
            raise ValueError("cwd must be a string")
        if not os.path.isdir(path):
            raise ValueError(f"cwd {path!r} does not exist or is not a directory")
        ctx = Context(self, lang, path, user)
        self.contexts[ctx.id] = ctx
        return ctx

    async def start(self, ctx: Context) -> None:
        try:
            await ctx.ensure_started()
        except ExecutionContextError:
            self.contexts.pop(ctx.id, None)
            raise

    def default(self, language: object) -> Context:
        lang = normalize(language)
        self.ensure_defaults()
        ctx = self.defaults.get(lang)
        if ctx is None or ctx.removed:
            ctx = self._create(lang)
            self.defaults[lang] = ctx
        return ctx

    def get(self, context_id: str) -> Context:
        ctx = self.contexts.get(context_id)
        if ctx is None:
            raise ContextNotFound(f"Context {context_id} not found")
        return ctx

    async def remove(self, context_id: str) -> None:
        ctx = self.get(context_id)
        del self.contexts[context_id]
        for lang, default in list(self.defaults.items()):
            if default is ctx:
                del self.defaults[lang]
        await ctx.shutdown()

    def execute(self, ctx: Context, code: str, env_vars: Mapping[str, str]) -> Execution:
        """Sandbox env vars that changed after the kernel started apply to every execution; the
        request's own env_vars win over them."""
        late = {k: v for k, v in self.config.env_vars().items() if ctx.kernel_env.get(k) != v}
        return Execution(ctx, code, {**late, **env_vars})

    async def start_defaults(self) -> None:
        """Warm start: create and start each default language's context now."""
        self.ensure_defaults()
        for lang in self.config.default_languages:
            ctx = self.default(lang)
            try:
                await ctx.ensure_started()
            except ExecutionContextError as exc:
                log.warning("warm start of %s failed: %s", lang, exc)

    async def close(self) -> None:
        for task in list(self._executions):
            task.cancel()
        for ctx in list(self.contexts.values()):
            await ctx.shutdown()
        self.contexts.clear()
        self.defaults.clear()

    def kill_all(self) -> None:
        for ctx in list(self.contexts.values()):
            ctx.kill_now()
