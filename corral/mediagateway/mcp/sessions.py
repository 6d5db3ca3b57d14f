"""The session sandbox: what `run_code` uses when it is given no `sandbox_id`.

A session's sandbox is created on its first use and killed when the session ends, so a client that
never manages sandboxes still gets state that persists between calls (a variable set in one
`run_code` is there in the next) and leaves nothing running behind it.

What "the session" is depends on the transport:
- stdio: the server process serves exactly one client, so the process is the session; its sandbox
  is killed when the client closes the pipe or the process is told to stop (SIGTERM, SIGINT).
- streamable HTTP: each MCP connection (an `Mcp-Session-Id` opened by the `initialize` handshake)
  has its own sandbox, killed when the client ends the session (DELETE), the session idles out,
  or the server stops. A client on the sessionless 2026-07-28 protocol has no session beyond one
  request, so its session sandbox lives for that one call.
As a last guard against a server killed with SIGKILL, the sandbox is created with a timeout that
each use extends (`SESSION_IDLE_S`): the sandbox service ends it on its own after that much idle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import anyio
from mcp.server.mcpserver.exceptions import ToolError

log = logging.getLogger(__name__)

SESSION_IDLE_S = 900
"""The session sandbox's timeout, renewed on each use: how long it outlives a server that died
without killing it."""

_STATE_KEY = "corral.session_sandbox"


class SessionSandbox:
    """One session's sandbox id: created on first use (once, even under concurrent calls), killed
    on `close`."""

    def __init__(self, create: Callable[[], Awaitable[str]], kill: Callable[[str], Awaitable[object]]) -> None:
        self._create = create
        self._kill = kill
        self._lock = asyncio.Lock()
        self._id: str | None = None
        self._closed = False

    @property
    def current(self) -> str | None:
        return self._id

    async def get(self) -> tuple[str, bool]:
        """The session's sandbox id, and whether this call created it."""
        async with self._lock:
            if self._closed:
                raise ToolError("this MCP session has ended")
            if self._id is not None:
                return self._id, False
            self._id = await self._create()
            return self._id, True

    def forget(self, sandbox_id: str) -> None:
        """The sandbox is gone (it timed out); the next use creates a new one."""
        if self._id == sandbox_id:
            self._id = None

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            sandbox_id, self._id = self._id, None
        if sandbox_id is None:
            return
        try:
            await self._kill(sandbox_id)
            log.info("killed session sandbox %s", sandbox_id)
        except Exception as exc:  # noqa: BLE001 - teardown goes on; its timeout ends the sandbox anyway
            log.warning("could not kill session sandbox %s: %s", sandbox_id, exc)


class SessionRegistry:
    """Finds the session sandbox for a request and kills every one that is still open at shutdown."""

    def __init__(self, create: Callable[[], Awaitable[str]], kill: Callable[[str], Awaitable[object]],
                 *, per_connection: bool) -> None:
        self._create = create
        self._kill = kill
        self.per_connection = per_connection
        self._open: set[SessionSandbox] = set()
        self._process: SessionSandbox | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def _new(self) -> SessionSandbox:
        session = SessionSandbox(self._create, self._kill)
        self._open.add(session)
        return session

    def for_connection(self, connection: object | None) -> SessionSandbox:
        """`connection` is the MCP SDK's per-client `Connection` (its `state` dict and
        `exit_stack` carry the session and its teardown)."""
        if not self.per_connection or connection is None:
            if self._process is None:
                self._process = self._new()
            return self._process
        state: dict = connection.state  # type: ignore[attr-defined]
        session = state.get(_STATE_KEY)
        if session is None:
            session = state[_STATE_KEY] = self._new()
            connection.exit_stack.push_async_callback(self._close_later, session)  # type: ignore[attr-defined]
        return session

    async def _close_later(self, session: SessionSandbox) -> None:
        """The SDK gives a connection's teardown a few seconds; a kill on a busy host may need
        more, so it runs as its own task, which `close_all` waits for at shutdown."""
        self._open.discard(session)
        task = asyncio.get_running_loop().create_task(session.close())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close_all(self) -> None:
        with anyio.CancelScope(shield=True):
            for session in list(self._open):
                self._open.discard(session)
                await session.close()
            if self._pending:
                await asyncio.gather(*self._pending, return_exceptions=True)
