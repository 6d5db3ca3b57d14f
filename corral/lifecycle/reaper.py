"""Background work on sandboxes nobody is asking about: timeouts, sandboxes that died on their
own, and retired templates nothing mounts any more.

The reaper wakes at the next deadline (or when a deadline moves closer, through `Parts.wake`)
and at least every two seconds to notice sandboxes whose daemon exited. The trash purge runs
apart from it: purging takes the template store's lock, which a template build may hold for
minutes, and timeouts must never wait for that.
"""

from __future__ import annotations

import asyncio
import logging

from corral.lifecycle.control import Control
from corral.lifecycle.parts import Parts, now
from corral.lifecycle.teardown import Teardown
from corral.store import SandboxState

log = logging.getLogger("corral.lifecycle")

TRASH_PURGE_INTERVAL_S = 60.0
LIVENESS_INTERVAL_S = 2.0


class Reaper:
    def __init__(self, parts: Parts, teardown: Teardown, control: Control) -> None:
        self.parts = parts
        self.teardown = teardown
        self.control = control
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._closed = False
        self._task = asyncio.create_task(self._forever(), name="corral-reaper")

    async def close(self) -> None:
        # The flag, not only the cancel: Python 3.11's wait_for can swallow a cancellation that
        # arrives as its wait completes, and the loop must end anyway.
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            self.parts.wake.set()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _forever(self) -> None:
        while not self._closed:
            try:
                wait = await self.once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the reaper must survive anything
                log.exception("reaper iteration failed")
                wait = 1.0
            self.parts.wake.clear()
            try:
                await asyncio.wait_for(self.parts.wake.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    async def once(self) -> float:
        """One pass; returns how long to sleep before the next."""
        parts = self.parts
        current = now()
        next_wait = LIVENESS_INTERVAL_S
        for rec in parts.store.owned([SandboxState.RUNNING, SandboxState.PAUSED]):
            if rec.end_at <= current:
                if rec.on_timeout == "pause" and rec.state == SandboxState.RUNNING.value:
                    log.info("sandbox %s timed out: pausing", rec.sandbox_id)
                    # kept for the retention period, in the mode the create asked for
                    await self.control.pause(rec.sandbox_id, rec.auto_pause_mode or "full")
                elif rec.state == SandboxState.PAUSED.value:
                    log.info("paused sandbox %s reached its retention: deleting it", rec.sandbox_id)
                    await self.teardown.kill(rec.sandbox_id, reason="retention")
                else:
                    log.info("sandbox %s timed out: killing", rec.sandbox_id)
                    await self.teardown.kill(rec.sandbox_id, reason="timeout")
                continue
            if (rec.state == SandboxState.RUNNING.value and not parts.tier.is_alive(rec.sandbox_id)
                    and not parts.lock(rec.sandbox_id).locked()):
                # (Locked: a pause or resume is stopping or booting it right now.) Re-read under
                # the lock, so a pause that finished meanwhile is not mistaken for an exit.
                async with parts.lock(rec.sandbox_id):
                    again = parts.store.get_live(rec.sandbox_id)
                    exited = (again is not None and again.state == SandboxState.RUNNING.value
                              and not parts.tier.is_alive(rec.sandbox_id))
                if exited:
                    log.warning("sandbox %s exited on its own", rec.sandbox_id)
                    await self.teardown.kill(rec.sandbox_id, reason="exited")
                continue
            next_wait = min(next_wait, (rec.end_at - current).total_seconds())
        return max(0.01, next_wait)


class TrashPurger:
    """Retired templates wait in the store's trash until no sandbox mounts them."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="corral-template-purge")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def once(self) -> None:
        templates = self.parts.templates
        if templates.has_trash():
            await asyncio.to_thread(templates.purge_trash)

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(TRASH_PURGE_INTERVAL_S)
            try:
                await self.once()
            except Exception:  # noqa: BLE001
                log.exception("purging retired templates failed")
