"""Child reaping for a daemon that is pid 1 of its sandbox.

As pid 1 (or a child subreaper) the daemon inherits every orphan in the sandbox; unreaped they
stay zombies forever and exhaust the pid limit.  One SIGCHLD handler drains `waitpid(-1)` and
hands each status to whoever registered that pid.  asyncio's own child watchers are not used:
they would race this loop for the same statuses.

When the app runs inside a larger process (tests, development) reaping *every* child would steal
statuses from unrelated code, so there the handler only waits for the pids it was asked about.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Callable

ExitCallback = Callable[[int], None]

# serve() turns this on: the daemon owns every child of its process.
REAP_ALL = False


class Reaper:
    def __init__(self, loop: asyncio.AbstractEventLoop, reap_all: bool) -> None:
        self._loop = loop
        self._reap_all = reap_all
        self._callbacks: dict[int, ExitCallback] = {}
        self.reaped_orphans = 0
        loop.add_signal_handler(signal.SIGCHLD, self.reap)

    def watch(self, pid: int, callback: ExitCallback) -> None:
        """Register interest in `pid`; must be called before control returns to the loop."""
        self._callbacks[pid] = callback
        # The child may already have exited before the handler was registered.
        self._loop.call_soon(self.reap)

    def watched(self) -> set[int]:
        """The pids someone waits for: every running process the daemon started."""
        return set(self._callbacks)

    def reap(self) -> None:
        if self._reap_all:
            self._reap_any()
        else:
            self._reap_tracked()

    def _reap_any(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._dispatch(pid, status)

    def _reap_tracked(self) -> None:
        for pid in list(self._callbacks):
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                # Someone else reaped it; report an unknown status rather than hang forever.
                self._dispatch(pid, -1)
                continue
            if got == pid:
                self._dispatch(pid, status)

    def _dispatch(self, pid: int, status: int) -> None:
        callback = self._callbacks.pop(pid, None)
        if callback is None:
            self.reaped_orphans += 1
            return
        callback(status)

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.remove_signal_handler(signal.SIGCHLD)


_reapers: dict[asyncio.AbstractEventLoop, Reaper] = {}


def reaper_for(loop: asyncio.AbstractEventLoop) -> Reaper:
    """One reaper per running loop (tests run one loop per test)."""
    for old in [lp for lp in _reapers if lp.is_closed()]:
        del _reapers[old]
    reaper = _reapers.get(loop)
    if reaper is None:
        reaper = _reapers[loop] = Reaper(loop, REAP_ALL)
    return reaper
