"""`SandboxManager`: the spec's E2B client wrapper (§6.1) on the official `e2b` SDK.

One code path for a corral server and for E2B's cloud; which one is configuration only
(`Settings.from_env`). The security config is enforced here:

- timeout: the sandbox's lifetime on create (plus a grace for the transfers after execution)
  and a hard deadline on each execution (the process is killed when it passes);
- CPU and memory: sent as corral's create extension, metadata `corral.cpu_count` and
  `corral.memory_mb` (a corral server narrows the sandbox to them within its template's
  resources); then, on either service, the sandbox's reported resources are checked and a sandbox
  larger than the config is killed and refused (E2B's cloud cannot narrow a template on create);
- internet and hosts: the sandbox's network policy (`allow_internet_access`, `network.allow_out`
  with `deny_out: 0.0.0.0/0`, which is an allow-list on both services);
- transfer caps: an upload's size is checked before the SDK is called; a download's size is read
  with a filesystem stat first and the stream is never read past the cap.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from e2b import AsyncSandbox, SandboxQuery
from e2b.exceptions import NotFoundException, SandboxException
from e2b.sandbox.commands.command_handle import CommandExitException
from pydantic import BaseModel

from .errors import ResourceLimitError, SandboxError, TransferTooLargeError
from .security import Language, SandboxSecurityConfig
from .settings import Settings
from .template_limits import TemplateLimits, list_template_limits

log = logging.getLogger(__name__)

# Seconds a sandbox outlives its execution deadline, for the upload before and the download after.
TRANSFER_GRACE_SECONDS = 30
META_CPU = "corral.cpu_count"
META_MEMORY = "corral.memory_mb"
META_NONCE = "mediagateway.create"

# Language -> (file suffix, command). `exec` makes the interpreter the command's own process, so
# killing the command on a deadline kills the program, not only a shell around it.
RUNNERS: dict[Language, tuple[str, str]] = {
    Language.PYTHON: ("py", "exec python3 -u {path}"),
    Language.JAVASCRIPT: ("js", "exec node {path}"),
    Language.TYPESCRIPT: ("ts", "tsc --outDir {dir} --module commonjs --target es2020 {path} && exec node {dir}/{stem}.js"),
    Language.R: ("R", "exec Rscript {path}"),
    Language.JAVA: ("java", "exec java {path}"),
    Language.BASH: ("sh", "exec bash {path}"),
}


class SandboxStatus(str, Enum):
    RUNNING = "running"
    PAUSED = "paused"
    TERMINATED = "terminated"


class Sandbox(BaseModel):
    id: str
    template: str
    status: SandboxStatus
    cpu_count: int | None = None
    memory_mb: int | None = None


class ExecutionResult(BaseModel):
    stdout: str
    stderr: str
    exit_code: int
    error: str | None = None
    duration_s: float = 0.0
    timed_out: bool = False


@dataclass
class _Live:
    sandbox: AsyncSandbox
    template: str
    config: SandboxSecurityConfig
    started: float = field(default_factory=time.monotonic)


def create_options(config: SandboxSecurityConfig, nonce: str, template: TemplateLimits | None = None) -> dict[str, Any]:
    """The create request's fields for a config (pure, so tests can read what reaches the wire).
    CPU and memory are the config's maxima, lowered to the template's own when it is known (a
    request may only narrow a template)."""
    cpu, memory = config.cpu_cores, config.memory_mb
    if template is not None:
        cpu, memory = min(cpu, template.cpu_count), min(memory, template.memory_mb)
    opts: dict[str, Any] = {
        "timeout": config.timeout_seconds + TRANSFER_GRACE_SECONDS,
        "metadata": {META_CPU: str(cpu), META_MEMORY: str(memory), META_NONCE: nonce},
    }
    if not config.internet_access:
        opts["allow_internet_access"] = False
    elif config.allowed_hosts:
        opts["network"] = {"allow_out": list(config.allowed_hosts), "deny_out": ["0.0.0.0/0"]}
    else:
        opts["allow_internet_access"] = True
    return opts


def error_line(stderr: str, exit_code: int) -> str:
    """The last exception line of a traceback (`ValueError: boom`), else the exit status."""
    for line in reversed(stderr.strip().splitlines()):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", line.strip()):
            return line.strip()
    return f"exit code {exit_code}"


class SandboxManager:
    """Creates, uses and terminates sandboxes through the official SDK, enforcing the config."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._live: dict[str, _Live] = {}
        self._template_limits: dict[str, TemplateLimits] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SandboxManager":
        return cls(Settings.from_env(env))

    # -- lifecycle --------------------------------------------------------------------------------
    async def create_sandbox(self, template: str, config: SandboxSecurityConfig | None = None) -> Sandbox:
        config = config or self.settings.default_security
        nonce = uuid.uuid4().hex
        opts = self.settings.sdk_options()
        limits = await self.template_limits(template)
        try:
            sbx = await AsyncSandbox.create(template=template, **create_options(config, nonce, limits), **opts)
        except BaseException as exc:
            # The request may have reached the service before it failed or was cancelled: find any
            # sandbox it made by the nonce and kill it, so nothing outlives a failed create.
            await asyncio.shield(self._reap_nonce(nonce))
            if isinstance(exc, SandboxException):
                raise SandboxError(f"create from template {template!r} failed: {exc}") from exc
            raise
        try:
            info = await sbx.get_info()
            if info.cpu_count > config.cpu_cores or info.memory_mb > config.memory_mb:
                raise ResourceLimitError(
                    f"template {template!r} gives {info.cpu_count} CPU / {info.memory_mb} MB, more than the config's "
                    f"{config.cpu_cores} CPU / {config.memory_mb} MB")
        except BaseException:
            await asyncio.shield(self._kill(sbx))
            raise
        self._live[sbx.sandbox_id] = _Live(sbx, template, config)
        return Sandbox(id=sbx.sandbox_id, template=template, status=SandboxStatus.RUNNING,
                       cpu_count=info.cpu_count, memory_mb=info.memory_mb)

    async def template_limits(self, template: str) -> TemplateLimits | None:
        """The template's CPU and memory from the service's listing (read once per manager)."""
        if self._template_limits is None or template not in self._template_limits:
            self._template_limits = await list_template_limits(self.settings.sdk_options())
        return self._template_limits.get(template)

    async def terminate(self, sandbox_id: str) -> None:
        live = self._live.pop(sandbox_id, None)
        if live is not None:
            await self._kill(live.sandbox)
            return
        try:
            await AsyncSandbox.kill(sandbox_id, **self.settings.sdk_options())
        except NotFoundException:
            pass

    def sandbox_seconds(self, sandbox_id: str) -> float:
        live = self._live.get(sandbox_id)
        return time.monotonic() - live.started if live else 0.0

    def live_ids(self) -> list[str]:
        return list(self._live)

    async def aclose(self) -> None:
        """Terminate every sandbox this manager still holds."""
        for sandbox_id in list(self._live):
            await self.terminate(sandbox_id)

    async def _kill(self, sbx: AsyncSandbox) -> None:
        try:
            await sbx.kill()
        except NotFoundException:
            pass

    async def _reap_nonce(self, nonce: str) -> None:
        try:
            pages = AsyncSandbox.list(query=SandboxQuery(metadata={META_NONCE: nonce}), **self.settings.sdk_options())
            while pages.has_next:
                for info in await pages.next_items():
                    await AsyncSandbox.kill(info.sandbox_id, **self.settings.sdk_options())
        except Exception as exc:  # the service is unreachable: nothing more we can do here
            log.warning("could not look for sandboxes of a failed create: %s", exc)

    def _get(self, sandbox_id: str) -> _Live:
        live = self._live.get(sandbox_id)
        if live is None:
            raise SandboxError(f"sandbox {sandbox_id!r} is not held by this manager (terminated or never created)")
        return live

    # -- code -------------------------------------------------------------------------------------
    async def execute_code(self, sandbox_id: str, code: str, language: Language = Language.PYTHON, *,
                           timeout_seconds: int | None = None, envs: dict[str, str] | None = None) -> ExecutionResult:
        """Run `code` as a program in the sandbox; its exit status is the result's. The program
        is killed when it runs past the config's `timeout_seconds`."""
        live = self._get(sandbox_id)
        deadline = timeout_seconds or live.config.timeout_seconds
        suffix, template = RUNNERS[Language(language)]
        stem = f"mg_{uuid.uuid4().hex[:12]}"
        path = f"/tmp/{stem}.{suffix}"
        started = time.monotonic()
        try:
            await live.sandbox.files.write(path, code)
            command = template.format(path=path, dir="/tmp", stem=stem)
            handle = await live.sandbox.commands.run(command, background=True, envs=envs, timeout=deadline + 10)
        except SandboxException as exc:
            raise SandboxError(f"could not start the program: {exc}") from exc
        try:
            result = await asyncio.wait_for(handle.wait(), deadline)
            return ExecutionResult(stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code,
                                   duration_s=time.monotonic() - started)
        except CommandExitException as exc:
            return ExecutionResult(stdout=exc.stdout, stderr=exc.stderr, exit_code=exc.exit_code,
                                   error=error_line(exc.stderr, exc.exit_code), duration_s=time.monotonic() - started)
        except TimeoutError:
            try:
                await handle.kill()
            except SandboxException:
                pass
            return ExecutionResult(stdout=handle.stdout, stderr=handle.stderr, exit_code=-1, timed_out=True,
                                   error=f"TimeoutError: execution passed timeout_seconds={deadline} and was killed",
                                   duration_s=time.monotonic() - started)
        except SandboxException as exc:
            raise SandboxError(f"execution failed: {exc}") from exc

    async def run_command(self, sandbox_id: str, command: str, *, user: str | None = None,
                          timeout_seconds: int = 30) -> ExecutionResult:
        live = self._get(sandbox_id)
        started = time.monotonic()
        try:
            r = await live.sandbox.commands.run(command, user=user, timeout=timeout_seconds)
            return ExecutionResult(stdout=r.stdout, stderr=r.stderr, exit_code=r.exit_code, duration_s=time.monotonic() - started)
        except CommandExitException as exc:
            return ExecutionResult(stdout=exc.stdout, stderr=exc.stderr, exit_code=exc.exit_code,
                                   error=error_line(exc.stderr, exc.exit_code), duration_s=time.monotonic() - started)
        except SandboxException as exc:
            raise SandboxError(f"command failed: {exc}") from exc

    # -- files ------------------------------------------------------------------------------------
    async def upload_file(self, sandbox_id: str, path: str, content: bytes) -> None:
        live = self._get(sandbox_id)
        if len(content) > live.config.max_upload_bytes:
            raise TransferTooLargeError("upload", path, len(content), live.config.max_upload_bytes)
        try:
            await live.sandbox.files.write(path, content)
        except SandboxException as exc:
            raise SandboxError(f"upload of {path} failed: {exc}") from exc

    async def download_file(self, sandbox_id: str, path: str) -> bytes:
        live = self._get(sandbox_id)
        limit = live.config.max_download_bytes
        try:
            size = (await live.sandbox.files.get_info(path)).size
        except NotFoundException as exc:
            raise SandboxError(f"{path} does not exist in the sandbox") from exc
        except SandboxException as exc:
            raise SandboxError(f"stat of {path} failed: {exc}") from exc
        if size > limit:
            raise TransferTooLargeError("download", path, size, limit)
        chunks: list[bytes] = []
        received = 0
        try:
            async with await live.sandbox.files.read(path, format="stream") as stream:
                async for chunk in stream:
                    received += len(chunk)
                    if received > limit:  # the file grew after the stat: stop reading at the cap
                        raise TransferTooLargeError("download", path, received, limit)
                    chunks.append(chunk)
        except SandboxException as exc:
            raise SandboxError(f"download of {path} failed: {exc}") from exc
        return b"".join(chunks)

    async def exists(self, sandbox_id: str, path: str) -> bool:
        return await self._get(sandbox_id).sandbox.files.exists(path)
