"""Isolation tiers. Every tier implements :class:`corral.runtime.base.Tier`.

The names below load :mod:`corral.runtime.base` (and asyncio) on first use, not on import of the
package: the gVisor launcher is a module under this package and starts once per create and
restore.
"""

from __future__ import annotations

TYPE_CHECKING = False   # (typing.TYPE_CHECKING: importing typing is 10 ms of the launcher's start)

if TYPE_CHECKING:
    from corral.runtime.base import ResourceUsage, SandboxHandle, SandboxSpec, Tier, TierError, VolumeBind

__all__ = ["ResourceUsage", "SandboxHandle", "SandboxSpec", "Tier", "TierError", "VolumeBind"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from corral.runtime import base

        return getattr(base, name)
    raise AttributeError(name)
