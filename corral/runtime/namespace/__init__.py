"""The default isolation tier: Linux namespaces, cgroups, capabilities and seccomp.

The tier is imported lazily: the gVisor tier's launcher uses this package's disk and mount
helpers, and every module it imports is start-up time of each gVisor create and restore.
"""

from __future__ import annotations

TYPE_CHECKING = False   # (typing.TYPE_CHECKING: importing typing is 10 ms of the launcher's start)

if TYPE_CHECKING:
    from corral.runtime.namespace.tier import NamespaceTier

__all__ = ["NamespaceTier"]


def __getattr__(name: str) -> object:
    if name == "NamespaceTier":
        from corral.runtime.namespace.tier import NamespaceTier

        return NamespaceTier
    raise AttributeError(name)
