"""The hardened tier: gVisor (runsc), a user-space kernel between sandbox code and the host."""

from corral.runtime.gvisor.tier import GVisorTier

__all__ = ["GVisorTier"]
