"""The gVisor janitor: sandboxes that end after their server is gone leave nothing on the host."""

from __future__ import annotations

import asyncio
import time

from corral.runtime.gvisor.janitor import POLL_S
from tests.runtime.gvisor.sandboxes import BoxFactory, leaks

CLEAN_LIMIT_S = 60.0   # bounds a hung clean-up; not a speed assertion


async def test_a_sandbox_that_ends_after_the_server_is_gone_is_cleaned(boxes: BoxFactory) -> None:
    ends = await boxes.create(end_at=time.time() + 4)     # ends itself at its own deadline
    runs = await boxes.create()                             # still running when the check is made
    assert boxes.tier._janitor is not None and boxes.tier._janitor.poll() is None
    janitor = boxes.tier._janitor
    # The server goes away (its end of the janitor's pipe closes, as on SIGKILL) without
    # destroying anything.
    await boxes.tier.close()
    deadline = time.monotonic() + CLEAN_LIMIT_S
    left = leaks(boxes.tier, ends.spec)
    while [x for x in left if not x.startswith("workdir")] and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        left = leaks(boxes.tier, ends.spec)
    # What the host held is gone; the workdir is the server's data to reconcile.
    assert [x for x in left if not x.startswith("workdir")] == [], left
    assert janitor.poll() is None                           # it still watches the other one
    assert boxes.tier.cgroups.exists(runs.id)
    await boxes.tier.destroy(runs.id, runs.spec.workdir)
    deadline = time.monotonic() + CLEAN_LIMIT_S
    while janitor.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
    assert janitor.poll() == 0                              # and exits when none is left
