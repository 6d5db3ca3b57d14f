"""After a restart: re-adopt healthy sandboxes, destroy what a crash left half-made or orphaned.

Nothing is known only in server memory, so the store and the tier together say what exists:
a `running`/`paused` row whose sandbox the tier can adopt is live again; a row in `starting` or
`pooled` (a crash mid-create, or a warm pool that is not trusted across restarts) and a row the
tier cannot adopt are closed and their resources removed; tier resources, network attachments
and workdirs that no live row claims are destroyed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from corral.lifecycle import boot, deadlines
from corral.lifecycle.parts import Parts, now
from corral.lifecycle.teardown import Teardown
from corral.store import SandboxState

log = logging.getLogger("corral.lifecycle")


async def recover(parts: Parts, teardown: Teardown) -> set[str]:
    """Returns the ids of the sandboxes that were re-adopted."""
    live_ids: set[str] = set()
    for rec in parts.store.owned():
        handle = None
        if rec.state not in (SandboxState.STARTING.value, SandboxState.POOLED.value):
            try:
                handle = await parts.tier.adopt(rec.sandbox_id, Path(rec.workdir))
            except Exception:  # noqa: BLE001 - a sandbox we cannot adopt is cleaned up below
                log.exception("adopting %s failed", rec.sandbox_id)
        if handle is None and _paused_on_disk(rec.state, Path(rec.workdir)):
            live_ids.add(rec.sandbox_id)   # a filesystem-mode pause: nothing runs, its layer waits
            log.info("kept paused sandbox %s (its filesystem)", rec.sandbox_id)
            continue
        if handle is None:
            await teardown.destroy_quietly(rec.sandbox_id, Path(rec.workdir))
            parts.store.update(rec.sandbox_id, state=SandboxState.KILLED.value, killed_at=now(),
                               kill_reason="lost in restart")
            parts.metering.ended(rec.sandbox_id, "lost in restart")
            continue
        parts.handles[rec.sandbox_id] = handle
        if rec.state == SandboxState.RUNNING.value:   # its own deadline, as the store says
            await deadlines.push(parts, rec)
        live_ids.add(rec.sandbox_id)
        log.info("re-adopted sandbox %s", rec.sandbox_id)
    for sid in await parts.tier.leftovers():
        if sid not in live_ids:
            await teardown.destroy_quietly(sid, parts.settings.sandboxes_dir / sid)
    await parts.egress.recover(live_ids)
    # Mount rows of sandboxes that ended while no server ran (or whose kill a crash cut short).
    if dropped := parts.store.volumes.drop_dead_mounts():
        log.info("removed %d volume mount row(s) of sandboxes that are gone", dropped)
    if parts.settings.sandboxes_dir.exists():
        for d in parts.settings.sandboxes_dir.iterdir():
            if d.name not in live_ids:
                await teardown.destroy_quietly(d.name, d)
    return live_ids


def _paused_on_disk(state: str, workdir: Path) -> bool:
    """A sandbox paused with no process left: its layer and boot configuration are all it is
    (a filesystem-mode pause, or a memory checkpoint the tier restores on resume)."""
    paused = boot.load_pause(workdir)
    return (state == SandboxState.PAUSED.value and paused is not None and paused.how in ("layer", "checkpoint")
            and (workdir / boot.BOOT_FILE).exists())
