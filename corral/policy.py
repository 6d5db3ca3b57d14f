"""One rule for resources: server defaults < template settings < request, all capped by the ceiling.

A request may narrow what its template grants, never widen it past the server's ceilings. Values
outside what the kernel can enforce sensibly (less than 1 CPU, 64 MB) are refused, not rounded.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.config import Ceilings
from corral.runtime.base import Limits


class PolicyError(ValueError):
    """The request asks for something the server will not grant; the message is shown to the client."""


MIN_MEMORY_MB = 64
MIN_DISK_MB = 64


@dataclass(frozen=True)
class TemplateResources:
    cpu_count: int | None = None
    memory_mb: int | None = None
    disk_mb: int | None = None


def resolve_limits(defaults: Limits, template: TemplateResources, ceilings: Ceilings) -> Limits:
    cpu = template.cpu_count or defaults.cpu_count
    mem = template.memory_mb or defaults.memory_mb
    disk = template.disk_mb or defaults.disk_mb
    return Limits(
        cpu_count=max(1, min(cpu, ceilings.cpu_count)),
        memory_mb=max(MIN_MEMORY_MB, min(mem, ceilings.memory_mb)),
        disk_mb=max(MIN_DISK_MB, min(disk, ceilings.disk_mb)),
        pids_max=min(defaults.pids_max, ceilings.pids_max),
    )


def resolve_timeout(requested: int | None, default_s: int, ceilings: Ceilings) -> int:
    if requested is None:
        return default_s
    if requested < 0:
        raise PolicyError("timeout must be a non-negative number of seconds")
    if requested > ceilings.timeout_s:
        raise PolicyError(f"timeout {requested}s exceeds the maximum of {ceilings.timeout_s}s")
    return requested
