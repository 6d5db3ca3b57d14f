"""What each MCP tool does to a sandbox, through the official code-interpreter SDK.

Every operation connects to the sandbox by id through the SDK (which reads `E2B_API_KEY`,
`E2B_DOMAIN`, `E2B_API_URL`, `E2B_SANDBOX_URL` like any E2B program, or takes the layer's
configuration), so the MCP server keeps no sandbox state of its own beyond the session sandbox and
works the same against a corral server and against E2B's cloud. Failures the caller can act on (a
dead sandbox, a missing file, a bad argument) become `ToolError`s with a sentence saying what went
wrong; the MCP SDK turns those into tool results with `isError`, so the server itself never falls.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, Literal

import httpx
from e2b import (
    AuthenticationException,
    CommandExitException,
    FileType,
    InvalidArgumentException,
    NotFoundException,
    SandboxException,
    TimeoutException,
)
from e2b_code_interpreter import AsyncSandbox
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ImageContent, TextContent
from pydantic import BaseModel, Field

from corral.mediagateway.security import Language
from corral.mediagateway.mcp.limits import (
    MAX_CODE_BYTES,
    MAX_IMAGE_BYTES,
    MAX_IMAGES,
    MAX_LIST_ENTRIES,
    MAX_READ_BYTES,
    MAX_RESULT_TEXT,
    MAX_STREAM_BYTES,
    MAX_WRITE_BYTES,
    BoundedStream,
    bounded,
    human,
)

DEFAULT_TEMPLATE = "code-interpreter-v1"
"""The template `create_sandbox` and the session sandbox use: the one `run_code` needs."""

CODE_TIMEOUT_S = 120
"""How long one run_code or run_command call may run before it is stopped."""

# The names run_code accepts: the layer's `Language`s and their usual short forms.
LANGUAGES: dict[str, Language] = {
    **{lang.value: lang for lang in Language},
    "py": Language.PYTHON, "js": Language.JAVASCRIPT, "ts": Language.TYPESCRIPT,
}


class RunCodeResult(BaseModel):
    """One run_code call: the sandbox it ran in, its output streams, its display results, its error."""

    sandbox_id: str
    stdout: str
    stderr: str
    results: list[str] = Field(description="text form of each display result (the last expression's value, charts)")
    error: str | None = Field(description="the program's exception (name: value, then the traceback), if it raised")
    images: list[str] = Field(default_factory=list, exclude=True)  # base64 PNGs, sent as image content


def run_code_answer(result: RunCodeResult) -> RunCodeResult | CallToolResult:
    """The tool's answer: the result, plus each PNG result (a chart) as MCP image content, so a
    client shows the chart itself."""
    if not result.images:
        return result
    data = result.model_dump(mode="json")
    content: list[TextContent | ImageContent] = [TextContent(type="text", text=json.dumps(data, indent=2))]
    content += [ImageContent(type="image", data=png, mime_type="image/png") for png in result.images]
    return CallToolResult(content=content, structured_content=data)


class CommandOutput(BaseModel):
    stdout: str
    stderr: str
    exit_code: int


class FileEntry(BaseModel):
    name: str
    path: str
    type: Literal["file", "dir", "other"]
    size: int


class FileListing(BaseModel):
    path: str
    entries: list[FileEntry]
    note: str | None = Field(default=None, description="set when the listing was cut at its cap")


def language_name(language: str) -> str:
    """The code-interpreter's name for `language`, or a tool error listing the ones it runs."""
    lang = LANGUAGES.get(language.strip().lower())
    if lang is None:
        known = ", ".join(lang.value for lang in Language)
        raise ToolError(f"unsupported language {language!r}; use one of: {known}")
    return lang.value


def _check_size(what: str, text: str, limit: int) -> None:
    size = len(text.encode("utf-8", errors="replace"))
    if size > limit:
        raise ToolError(f"{what} is {size} bytes; the cap is {human(limit)}")


@contextlib.contextmanager
def sdk_errors(sandbox_id: str | None = None, path: str | None = None) -> Iterator[None]:
    """Turn the SDK's exceptions into tool errors a model can read and act on."""
    try:
        yield
    except ToolError:
        raise
    except CommandExitException:
        raise  # a result, not a failure: the caller reports the exit code
    except AuthenticationException as exc:
        raise ToolError(f"the sandbox service refused the credentials (check E2B_API_KEY): {exc}") from exc
    except NotFoundException as exc:
        message = str(exc).lower()
        if path is not None and "sandbox" not in message:
            raise ToolError(f"no such file or directory in sandbox {sandbox_id}: {path}") from exc
        if sandbox_id is not None:
            raise ToolError(f"sandbox {sandbox_id} was not found: it was killed, timed out, or never existed") from exc
        raise ToolError(f"not found: {exc}") from exc
    except InvalidArgumentException as exc:
        raise ToolError(f"invalid argument: {exc}") from exc
    except TimeoutException as exc:
        raise ToolError(f"timed out: {exc}") from exc
    except SandboxException as exc:
        raise ToolError(f"the sandbox service failed: {exc}") from exc
    except httpx.HTTPError as exc:
        raise ToolError(f"cannot reach the sandbox service: {exc.__class__.__name__}: {exc}") from exc


class SandboxTools:
    """The tools' bodies. `params` are the SDK's connection options (api_key, api_url, ...);
    empty means the SDK reads its own environment variables."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = dict(params or {})

    async def create(self, template: str, timeout: int, internet: bool) -> str:
        with sdk_errors():
            try:
                sandbox = await AsyncSandbox.create(
                    template=template, timeout=timeout, allow_internet_access=internet, **self.params
                )
            except NotFoundException as exc:
                raise ToolError(f"template {template!r} was not found: {exc}") from exc
        return sandbox.sandbox_id

    async def connect(self, sandbox_id: str, *, keep_alive: int | None = None) -> AsyncSandbox:
        if not sandbox_id or len(sandbox_id) > 128:
            raise ToolError("sandbox_id must be the id create_sandbox returned")
        with sdk_errors(sandbox_id):
            return await AsyncSandbox.connect(sandbox_id, timeout=keep_alive, **self.params)

    async def kill(self, sandbox_id: str) -> bool:
        with sdk_errors(sandbox_id):
            return await AsyncSandbox.kill(sandbox_id, **self.params)

    async def run_code(self, sandbox: AsyncSandbox, code: str, language: str) -> RunCodeResult:
        lang = language_name(language)
        _check_size("code", code, MAX_CODE_BYTES)
        stdout, stderr = BoundedStream(), BoundedStream()
        with sdk_errors(sandbox.sandbox_id):
            execution = await sandbox.run_code(
                code, language=lang, timeout=CODE_TIMEOUT_S,
                on_stdout=lambda m: stdout.add(m.line), on_stderr=lambda m: stderr.add(m.line),
            )
        error = None
        if execution.error is not None:
            err = execution.error
            error = bounded(f"{err.name}: {err.value}\n{err.traceback}", MAX_STREAM_BYTES)
        results: list[str] = []
        images: list[str] = []
        for r in execution.results[:20]:
            png = getattr(r, "png", None)
            if png and len(images) < MAX_IMAGES and len(png) <= MAX_IMAGE_BYTES:
                images.append(png)
                results.append(f"[image {len(images)}: PNG, attached]")
            elif r.text:
                results.append(bounded(r.text, MAX_RESULT_TEXT))
            else:
                results.append(f"[{', '.join(r.formats())} result, not shown]")
        return RunCodeResult(sandbox_id=sandbox.sandbox_id, stdout=stdout.text(), stderr=stderr.text(),
                             results=results, error=error, images=images)

    async def run_command(self, sandbox_id: str, command: str) -> CommandOutput:
        _check_size("command", command, MAX_CODE_BYTES)
        sandbox = await self.connect(sandbox_id)
        stdout, stderr = BoundedStream(), BoundedStream()
        with sdk_errors(sandbox_id):
            try:
                # retain_output=False: the SDK keeps nothing; the bounded streams keep up to their cap.
                result = await sandbox.commands.run(
                    command, timeout=CODE_TIMEOUT_S, on_stdout=stdout.add, on_stderr=stderr.add, retain_output=False,
                )
                exit_code = result.exit_code
            except CommandExitException as exc:
                exit_code = exc.exit_code
        return CommandOutput(stdout=stdout.text(), stderr=stderr.text(), exit_code=exit_code)

    async def write_file(self, sandbox_id: str, path: str, content: str) -> str:
        data = content.encode("utf-8")
        if len(data) > MAX_WRITE_BYTES:
            raise ToolError(f"content is {len(data)} bytes; write_file accepts at most {human(MAX_WRITE_BYTES)}")
        sandbox = await self.connect(sandbox_id)
        with sdk_errors(sandbox_id, path):
            info = await sandbox.files.write(path, data)
        return f"wrote {len(data)} bytes to {info.path}"

    async def read_file(self, sandbox_id: str, path: str) -> str:
        sandbox = await self.connect(sandbox_id)
        with sdk_errors(sandbox_id, path):
            info = await sandbox.files.get_info(path)
            if info.type == FileType.DIR:
                raise ToolError(f"{path} is a directory; use list_files")
            if info.size > MAX_READ_BYTES:
                raise ToolError(
                    f"{path} is {info.size} bytes; read_file returns at most {human(MAX_READ_BYTES)} "
                    "(use run_command with head, tail or grep to read part of it)"
                )
            data = bytearray()
            # A stream, stopped at the cap: a file that grew since get_info is still not read past it.
            async with await sandbox.files.read(path, format="stream") as stream:
                async for chunk in stream:
                    data.extend(chunk)
                    if len(data) > MAX_READ_BYTES:
                        break
        note = ""
        if len(data) > MAX_READ_BYTES:
            del data[MAX_READ_BYTES:]
            note = f"\n[file truncated at {human(MAX_READ_BYTES)}: it grew while being read]"
        try:
            return data.decode("utf-8") + note
        except UnicodeDecodeError:
            return data.decode("utf-8", errors="replace") + note + "\n[not UTF-8 text: undecodable bytes shown as U+FFFD]"

    async def list_files(self, sandbox_id: str, path: str) -> FileListing:
        sandbox = await self.connect(sandbox_id)
        with sdk_errors(sandbox_id, path):
            found = await sandbox.files.list(path, depth=1)
        found.sort(key=lambda e: e.name)
        kinds = {FileType.FILE: "file", FileType.DIR: "dir"}
        entries = [FileEntry(name=e.name, path=e.path, type=kinds.get(e.type, "other"), size=e.size)
                   for e in found[:MAX_LIST_ENTRIES]]
        note = None
        if len(found) > MAX_LIST_ENTRIES:
            note = f"{len(found) - MAX_LIST_ENTRIES} more entries not shown; the cap is {MAX_LIST_ENTRIES} per listing"
        return FileListing(path=path, entries=entries, note=note)
