"""The hardened tier: gVisor (runsc), a user-space kernel between sandbox code and the host.

The tier is imported lazily: the launcher and the in-sandbox guest are modules of this package
too, and each import they pay for is start-up time (inside gVisor, every file lookup is a call
into the Sentry and the gofer).
"""

from __future__ import annotations

TYPE_CHECKING = False   # (typing.TYPE_CHECKING: importing typing is 10 ms of the launcher's start)

if TYPE_CHECKING:
    from corral.runtime.gvisor.tier import GVisorTier

__all__ = ["GVisorTier"]


def __getattr__(name: str) -> object:
    if name == "GVisorTier":
        from corral.runtime.gvisor.tier import GVisorTier

        return GVisorTier
    raise AttributeError(name)
