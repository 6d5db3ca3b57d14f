"""Isolation tiers. Every tier implements :class:`corral.runtime.base.Tier`."""

from corral.runtime.base import ResourceUsage, SandboxHandle, SandboxSpec, Tier, TierError, VolumeBind

__all__ = ["ResourceUsage", "SandboxHandle", "SandboxSpec", "Tier", "TierError", "VolumeBind"]
