"""The sandbox's own end time: envd, pid 1 of the sandbox, ends the sandbox when it passes.

The server kills (or pauses) a sandbox at its timeout; this deadline is the backstop for when no
server is left (killed with SIGKILL, its data dir removed): a sandbox must never outlive its
timeout by more than a moment. The server hands the first deadline over in the hand-off
(`EnvdConfig.end_at`) and moves it through the server-only `DEADLINE_PATH` on set_timeout,
refresh and resume; before a pause it clears it (a frozen daemon cannot act, and after the thaw
an overdue timer would fire before the server could move it), and the server's reaper keeps
watching paused sandboxes as before.

Ending the sandbox is ending pid 1: the kernel then kills every process of the pid namespace,
and the mount namespace (with the writable layer's loop device) goes with the last of them.
The host-side cgroup is removed by whoever outlives the sandbox on the host: the server, or the
spawner's janitor when the server is gone (`corral.runtime.namespace.janitor`).

Times are wall-clock Unix seconds because server and sandbox share the host's clock but not a
monotonic origin; each firing re-checks the wall clock, so a clock step re-arms instead of
ending a sandbox early.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from corral.envd.httpio import Request
from corral.wire.framing import MAX_MESSAGE_BYTES, ConnectError, loads_message
from corral.wire.handoff import valid_end_at

log = logging.getLogger("corral.envd")


class Deadline:
    def __init__(self, end_at: float | None, on_expire: Callable[[], None]) -> None:
        self.end_at = end_at
        self.on_expire = on_expire
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.expired = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._arm()

    def set(self, end_at: float | None) -> None:
        self.end_at = end_at
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is None or self.end_at is None or self.expired:
            return
        self._timer = self._loop.call_later(max(0.0, self.end_at - time.time()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self.end_at is None:
            return
        if time.time() < self.end_at:   # the wall clock was stepped back: wait on
            self._arm()
            return
        self.expired = True
        log.warning("sandbox deadline passed: ending the sandbox")
        self.on_expire()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def parse_end_at(body: dict[str, object]) -> float | None:
    value = body.get("endAt")
    if not valid_end_at(value):
        raise ConnectError("invalid_argument", "endAt must be Unix seconds or null")
    return None if value is None else float(value)  # type: ignore[arg-type]


async def set_deadline(req: Request, deadline: Deadline) -> None:
    """`POST /.corral/deadline {"endAt": seconds | null}`: server-only (the proxy refuses it)."""
    try:
        body = loads_message(await req.read_body(MAX_MESSAGE_BYTES))
        if "endAt" not in body:
            raise ConnectError("invalid_argument", "endAt is required (null clears the deadline)")
        end_at = parse_end_at(body)
    except ConnectError as exc:
        return await req.respond_http_error(400, exc.message)
    deadline.set(end_at)
    return await req.respond(204, b"", None)
