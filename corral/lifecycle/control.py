"""Changes to a sandbox a client can see: timeouts, refreshes, pause, resume.

Each is one store update around at most one tier call, under the sandbox's lock so that a
pause never races a kill or a connect.
"""

from __future__ import annotations

from datetime import timedelta

from corral.lifecycle import deadlines
from corral.lifecycle.errors import TierFailed
from corral.lifecycle.limits import resolve_timeout
from corral.lifecycle.parts import Parts, now
from corral.runtime.base import TierError
from corral.store import SandboxRecord, SandboxState


class Control:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    def _timeout(self, seconds: int | None, default: int | None = None) -> int:
        s = self.parts.settings
        return resolve_timeout(seconds, s.default_timeout_s if default is None else default, s.ceilings)

    async def set_timeout(self, sandbox_id: str, seconds: int) -> SandboxRecord:
        timeout = self._timeout(seconds)
        rec = self.parts.visible(sandbox_id)
        rec = self.parts.store.update(rec.sandbox_id, end_at=now() + timedelta(seconds=timeout))
        assert rec is not None
        await deadlines.push(self.parts, rec)
        self.parts.wake.set()
        return rec

    async def refresh(self, sandbox_id: str, seconds: int) -> SandboxRecord:
        """E2B's `refreshes`: extend the lifetime, never shorten it."""
        rec = self.parts.visible(sandbox_id)
        new_end = max(rec.end_at, now() + timedelta(seconds=self._timeout(seconds, default=0)))
        rec = self.parts.store.update(sandbox_id, end_at=new_end)
        assert rec is not None
        await deadlines.push(self.parts, rec)
        return rec

    async def pause(self, sandbox_id: str) -> bool:
        """False if it was paused already."""
        async with self.parts.lock(sandbox_id):
            rec = self.parts.visible(sandbox_id)
            if rec.state == SandboxState.PAUSED.value:
                return False
            # A frozen sandbox cannot keep its own deadline; the reaper keeps paused ones.
            await deadlines.push(self.parts, rec, clear=True)
            try:
                await self.parts.tier.freeze(sandbox_id)
            except TierError as exc:
                await deadlines.push(self.parts, rec)
                raise TierFailed(f"pause failed: {exc}") from None
            self.parts.store.update(sandbox_id, state=SandboxState.PAUSED.value)
            self.parts.metering.paused(sandbox_id)
            return True

    async def connect(self, sandbox_id: str, timeout: int | None) -> tuple[SandboxRecord, bool]:
        """Connect to a running sandbox or resume a paused one; returns (record, resumed)."""
        async with self.parts.lock(sandbox_id):
            rec = self.parts.visible(sandbox_id)
            resumed = False
            if rec.state == SandboxState.PAUSED.value:
                try:
                    await self.parts.tier.thaw(sandbox_id)
                except TierError as exc:
                    raise TierFailed(f"resume failed: {exc}") from None
                resumed = True
                self.parts.metering.resumed(sandbox_id)
            fields: dict[str, object] = {"state": SandboxState.RUNNING.value}
            if timeout is not None or resumed:
                new_end = now() + timedelta(seconds=self._timeout(timeout))
                fields["end_at"] = new_end if resumed else max(rec.end_at, new_end)
            rec = self.parts.store.update(sandbox_id, **fields)
            assert rec is not None
            if "end_at" in fields:
                await deadlines.push(self.parts, rec)
        self.parts.wake.set()
        return rec, resumed
