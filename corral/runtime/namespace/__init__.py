"""The default isolation tier: Linux namespaces, cgroups, capabilities and seccomp."""

from corral.runtime.namespace.tier import NamespaceTier

__all__ = ["NamespaceTier"]
