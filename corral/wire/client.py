"""The one host-side client for a sandbox's envd, spoken over the sandbox's unix socket.

Everything the server itself asks of a sandbox goes through here: the Dockerfile builder's RUN
steps, the warm pool's warm-up and hand-over (`/.corral/init`), a template's start and ready
commands, and egress writing `/etc/resolv.conf`. It speaks exactly what the official SDK
speaks (Connect over HTTP/1.1, `/files`), plus the server-only routes, so envd has one protocol.

Failures to reach envd or a refusal by it raise `EnvdError`; a process that runs and fails is
not an error: `run` returns its exit status.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from corral.errors import Unavailable
from corral.wire.constants import DEADLINE_PATH, INIT_PATH
from corral.wire.framing import (
    STREAM_CONTENT_TYPE, ConnectError, StreamDecoder, message_envelope,
)
from corral.wire.transport import uds_client

# (stream name: "stdout" | "stderr" | "pty", bytes) as envd sends them.
OutputSink = Callable[[str, bytes], None]

START_PATH = "/process.Process/Start"
# Extra time the client waits beyond a deadline it gave envd, for envd to report the kill.
DEADLINE_GRACE_S = 10.0


class EnvdError(Unavailable):
    """envd could not be reached, refused the call, or broke the stream.

    `status_code` is envd's HTTP status when it answered, None when it could not be reached.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int        # -1 when envd reported no exit status
    error: str | None     # why it failed (envd's error or status text); None on success
    output: bytes = b""   # stdout and stderr as they arrived (empty when a sink took them)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


def login_shell(cmd: str) -> list[str]:
    """The argv envd runs a shell command line with (what the SDK's commands.run does)."""
    return ["/bin/bash", "-l", "-c", cmd]


def _start_request(argv: Sequence[str], envs: Mapping[str, str] | None, cwd: str | None,
                   tag: str | None) -> dict[str, Any]:
    if not argv:
        raise ValueError("argv must not be empty")
    process: dict[str, Any] = {"cmd": argv[0], "args": list(argv[1:])}
    if envs:
        process["envs"] = dict(envs)
    if cwd:
        process["cwd"] = cwd
    body: dict[str, Any] = {"process": process, "stdin": False}
    if tag:
        body["tag"] = tag
    return body


class EnvdClient:
    """Calls to one sandbox's envd.

    Pass an existing `httpx.AsyncClient` bound to the sandbox's socket (the server shares one per
    sandbox, so the hand-over's connection is the one the client's first command reuses), or use
    `EnvdClient.connect(socket_path)` for a client that owns its connection (close it, or use
    `async with`).
    """

    def __init__(self, http: httpx.AsyncClient, access_token: str | None = None) -> None:
        self.http = http
        self.access_token = access_token
        self._owned = False

    @classmethod
    def connect(cls, socket: Path | str, access_token: str | None = None) -> "EnvdClient":
        client = cls(uds_client(socket, timeout=httpx.Timeout(None, connect=10.0)), access_token)
        client._owned = True
        return client

    async def aclose(self) -> None:
        if self._owned:
            await self.http.aclose()

    async def __aenter__(self) -> "EnvdClient":
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ plumbing

    def _headers(self, *, user: str | None = None, content_type: str | None = None,
                 timeout_s: float | None = None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.access_token is not None:
            headers["X-Access-Token"] = self.access_token
        if user:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:".encode()).decode()
        if content_type:
            headers["Content-Type"] = content_type
        if content_type == STREAM_CONTENT_TYPE:
            headers["Connect-Protocol-Version"] = "1"
        if timeout_s:
            headers["Connect-Timeout-Ms"] = str(max(1, int(timeout_s * 1000)))
        return headers

    @staticmethod
    async def _check(resp: httpx.Response, what: str) -> None:
        if resp.is_success:
            return
        text = (await resp.aread()).decode(errors="replace")
        raise EnvdError(f"envd refused {what}: {resp.status_code} {text[:300]}", status_code=resp.status_code)

    # ------------------------------------------------------------------ calls

    async def health(self, timeout: float = 5.0) -> bool:
        """Whether envd answers its health route (it needs no token)."""
        try:
            resp = await self.http.get("/health", timeout=timeout)
        except httpx.HTTPError:
            return False
        return resp.status_code == 204

    async def wait_healthy(self, timeout: float = 10.0, interval: float = 0.01) -> None:
        """Poll `/health` until envd answers; EnvdError when it has not within `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await self.health(timeout=max(0.1, deadline - loop.time())):
            if loop.time() >= deadline:
                raise EnvdError(f"envd did not answer within {timeout:.0f}s")
            await asyncio.sleep(interval)

    async def hand_over(self, access_token: str | None, env_vars: Mapping[str, str],
                        timeout: float = 10.0, *, end_at: float | None = None) -> None:
        """Give a pooled sandbox to its owner: envd swaps in `access_token` and `env_vars` (and
        its own deadline, `end_at` in Unix seconds, when given).

        Authenticated with the token envd has now; afterwards this client uses the new one.
        """
        body: dict[str, Any] = {"accessToken": access_token, "envVars": dict(env_vars)}
        if end_at is not None:
            body["endAt"] = end_at
        try:
            resp = await self.http.post(INIT_PATH, json=body, headers=self._headers(), timeout=timeout)
        except httpx.HTTPError as exc:
            raise EnvdError(f"could not reach envd for the hand-over: {exc}") from exc
        await self._check(resp, "the hand-over")
        self.access_token = access_token

    async def set_deadline(self, end_at: float | None, timeout: float = 5.0) -> None:
        """Move the sandbox's own end time (Unix seconds), or clear it (None: before a freeze)."""
        try:
            resp = await self.http.post(DEADLINE_PATH, json={"endAt": end_at}, headers=self._headers(),
                                        timeout=timeout)
        except httpx.HTTPError as exc:
            raise EnvdError(f"could not reach envd to set its deadline: {exc}") from exc
        await self._check(resp, "the deadline")

    async def write_file(self, path: str, data: bytes, *, user: str = "root", timeout: float = 10.0) -> None:
        """Write `data` to `path` inside the sandbox as `user` (envd's `/files` upload)."""
        try:
            resp = await self.http.post("/files", params={"path": path, "username": user}, content=data,
                                        headers=self._headers(content_type="application/octet-stream"),
                                        timeout=timeout)
        except httpx.HTTPError as exc:
            raise EnvdError(f"could not reach envd to write {path}: {exc}") from exc
        await self._check(resp, f"writing {path}")

    async def run(self, argv: Sequence[str], *, user: str | None = None, cwd: str | None = None,
                  envs: Mapping[str, str] | None = None, timeout: float | None = None,
                  on_output: OutputSink | None = None) -> ProcessResult:
        """Start `argv` and wait for it to end.

        `timeout` is handed to envd as the call's deadline (envd kills the process then); the
        client gives up `DEADLINE_GRACE_S` later with TimeoutError. Output goes to `on_output`
        as it arrives, or, without one, is collected into the result.
        """
        body = message_envelope(_start_request(argv, envs, cwd, None))
        headers = self._headers(user=user, content_type=STREAM_CONTENT_TYPE, timeout_s=timeout)
        collected: list[bytes] = []
        sink: OutputSink = on_output or (lambda _stream, data: collected.append(data))
        exit_code: int | None = None
        error: str | None = None
        decoder = StreamDecoder()
        try:
            async with asyncio.timeout(None if timeout is None else timeout + DEADLINE_GRACE_S):
                async with self.http.stream("POST", START_PATH, content=body, headers=headers,
                                            timeout=httpx.Timeout(None, connect=10.0)) as resp:
                    await self._check(resp, "the process start")
                    async for chunk in resp.aiter_bytes():
                        for msg in decoder.feed(chunk):
                            event = msg.get("event") or {}
                            data = event.get("data")
                            if isinstance(data, dict):
                                for stream, encoded in data.items():
                                    sink(stream, base64.b64decode(encoded))
                            end = event.get("end")
                            if isinstance(end, dict):
                                exit_code = int(end.get("exitCode", 0) or 0)
                                error = end.get("error") or (None if exit_code == 0 else end.get("status"))
        except httpx.HTTPError as exc:
            raise EnvdError(f"lost envd while the process ran: {exc}") from exc
        except ConnectError as exc:
            raise EnvdError(f"envd sent a broken stream: {exc.message}") from exc
        output = b"".join(collected)
        if decoder.error is not None:
            return ProcessResult(exit_code if exit_code is not None else -1, decoder.error.message, output)
        if exit_code is None:
            return ProcessResult(-1, "the process ended without an exit status", output)
        return ProcessResult(exit_code, error, output)

    async def start(self, argv: Sequence[str], *, user: str | None = None, cwd: str | None = None,
                    envs: Mapping[str, str] | None = None, tag: str | None = None,
                    timeout: float = 30.0) -> int:
        """Start `argv` in the background; return its pid once envd reports it started.

        Closing the stream does not stop a process in envd, so it keeps running.
        """
        body = message_envelope(_start_request(argv, envs, cwd, tag))
        decoder = StreamDecoder()
        try:
            async with asyncio.timeout(timeout):
                async with self.http.stream("POST", START_PATH, content=body, timeout=httpx.Timeout(None, connect=10.0),
                                            headers=self._headers(user=user, content_type=STREAM_CONTENT_TYPE)) as resp:
                    await self._check(resp, "the process start")
                    async for chunk in resp.aiter_bytes():
                        for msg in decoder.feed(chunk):
                            started = (msg.get("event") or {}).get("start")
                            if isinstance(started, dict):
                                return int(started.get("pid", 0) or 0)
        except httpx.HTTPError as exc:
            raise EnvdError(f"lost envd while starting a process: {exc}") from exc
        except ConnectError as exc:
            raise EnvdError(f"envd sent a broken stream: {exc.message}") from exc
        except TimeoutError:
            raise EnvdError(f"envd did not start the process within {timeout:.0f}s") from None
        if decoder.error is not None:
            raise EnvdError(f"envd could not start the process: {decoder.error.message}")
        raise EnvdError("envd ended the stream before the process started")
