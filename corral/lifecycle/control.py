"""Changes to a sandbox a client can see: timeouts, refreshes, pause, resume.

Each is one store update around at most one tier call, under the sandbox's lock so that a
pause never races a kill or a connect.
"""

from __future__ import annotations

from datetime import timedelta

from corral.lifecycle import deadlines, timing
from corral.lifecycle.limits import resolve_timeout
from corral.lifecycle.parts import Parts, now
from corral.lifecycle.pausing import FULL, Pauser
from corral.store import SandboxRecord, SandboxState


class Control:
    def __init__(self, parts: Parts, pauser: Pauser) -> None:
        self.parts = parts
        self.pauser = pauser

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

    async def pause(self, sandbox_id: str, mode: str = FULL) -> bool:
        """False if it was paused already. A paused sandbox is kept for the retention period
        (its `end_at` moves there), then deleted with its files by the reaper."""
        async with self.parts.lock(sandbox_id):
            rec = self.parts.visible(sandbox_id)
            if rec.state == SandboxState.PAUSED.value:
                return False
            # A paused sandbox cannot keep its own deadline; the reaper keeps paused ones.
            await deadlines.push(self.parts, rec, clear=True)
            try:
                await self.pauser.pause(rec, mode)
            except BaseException:
                await deadlines.push(self.parts, rec)
                raise
            self.parts.store.update(sandbox_id, state=SandboxState.PAUSED.value,
                                    end_at=now() + self.pauser.retention())
            self.parts.metering.paused(sandbox_id)
        self.parts.wake.set()
        return True

    async def connect(self, sandbox_id: str, timeout: int | None) -> tuple[SandboxRecord, bool]:
        """Connect to a running sandbox or resume a paused one; returns (record, resumed)."""
        async with self.parts.lock(sandbox_id):
            rec = self.parts.visible(sandbox_id)
            resumed = False
            fields: dict[str, object] = {"state": SandboxState.RUNNING.value}
            if rec.state == SandboxState.PAUSED.value:
                with timing.phase("tier"):
                    state = await self.pauser.resume(rec)
                resumed = True
                timing.note("resume", f"{state.mode} ({state.how})")
                # The caller's timeout, else what was left when it paused: never a silent default.
                fields["end_at"] = now() + timedelta(seconds=self._timeout(timeout if timeout is not None
                                                                           else state.timeout_s))
            else:
                timing.note("connect", "running")
            if not resumed and timeout is not None:
                fields["end_at"] = max(rec.end_at, now() + timedelta(seconds=self._timeout(timeout)))
            if resumed:
                self.parts.metering.resumed(sandbox_id)
            rec = self.parts.store.update(sandbox_id, **fields)
            assert rec is not None
            if "end_at" in fields:
                with timing.phase("deadline"):
                    await deadlines.push(self.parts, rec)
        self.parts.wake.set()
        return rec, resumed
