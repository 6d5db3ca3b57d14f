"""What the server did for one request, named for its `Server-Timing` response header.

The API opens a `Timing` per request (`begin`) and writes the header when the response starts,
with the server's own time from the request's arrival to that moment. The lifecycle only says
which path a request took (`note`): a create served from a warm pool or started afresh, a
connect that resumed a sandbox and how it had been paused. That is what tells a client (and
`corral bench`) the server-side cost of a pool hit or of a freezer resume apart from its own
network and SDK overhead. Outside a request (the pool filling, the reaper) `note` does nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

_current: ContextVar["Timing | None"] = ContextVar("corral_server_timing", default=None)
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class Timing:
    metric: str | None = None   # e.g. "create", "resume", "connect"
    desc: str | None = None     # e.g. "warm pool", "full (freezer)"
    phases: list[tuple[str, float]] = field(default_factory=list)   # (name, ms) of steps inside it

    def header(self, dur_ms: float) -> str | None:
        """The header's value (`name;desc="...";dur=ms`, then one entry per phase), None when
        nothing was noted."""
        if self.metric is None:
            return None
        desc = f';desc="{self.desc}"' if self.desc else ""
        return ", ".join([f"{self.metric}{desc};dur={dur_ms:.3f}",
                          *(f"{name};dur={ms:.3f}" for name, ms in self.phases)])


def begin() -> tuple[Timing, Token["Timing | None"]]:
    timing = Timing()
    return timing, _current.set(timing)


def end(token: Token["Timing | None"]) -> None:
    _current.reset(token)


def note(metric: str, desc: str | None = None) -> None:
    """Name what this request did; the last note wins (a create that resumes nothing is a create)."""
    timing = _current.get()
    if timing is None:
        return
    if not _TOKEN.fullmatch(metric) or (desc is not None and ('"' in desc or "\\" in desc or not desc.isprintable())):
        raise ValueError(f"not a Server-Timing metric/description: {metric!r} {desc!r}")
    timing.metric, timing.desc = metric, desc


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time a step of the request (a warm pool's hand-over, the thaw): one more header entry."""
    timing = _current.get()
    if timing is None:
        yield
        return
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"not a Server-Timing metric: {name!r}")
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timing.phases.append((name, (time.perf_counter() - t0) * 1000.0))

