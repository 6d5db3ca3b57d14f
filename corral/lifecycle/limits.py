"""How much a sandbox gets: its template's resources, narrowed by the request, capped by the server.

The rule: a request may narrow what its template grants and never exceed the server's ceiling.
A template's own resources above the ceiling are capped silently (the template is the operator's
choice, not the client's); a request above its template or the ceiling is refused with a message
that says which bound it crossed. Values the kernel cannot enforce sensibly (less than 1 CPU,
less than 64 MB) are refused, not rounded.
"""

from __future__ import annotations

from corral.config import Ceilings
from corral.errors import InvalidRequest
from corral.lifecycle.requests import ResourceRequest
from corral.runtime.base import Limits
from corral.templates import TemplateResources

MIN_MEMORY_MB = 64
MIN_DISK_MB = 64


def _narrowed(name: str, unit: str, requested: int | None, template: int, ceiling: int, floor: int) -> int:
    granted = max(floor, min(template, ceiling))
    if requested is None:
        return granted
    if requested > ceiling:
        raise InvalidRequest(f"{name} {requested} exceeds the server's ceiling of {ceiling} {unit}")
    if requested > template:
        raise InvalidRequest(f"{name} {requested} exceeds the template's {template} {unit}; a request may only narrow it")
    if requested < floor:
        raise InvalidRequest(f"{name} {requested} is below the minimum of {floor} {unit}")
    return requested


def resolve_limits(template: TemplateResources, request: ResourceRequest, ceilings: Ceilings,
                   pids_max: int) -> Limits:
    return Limits(
        cpu_count=_narrowed("corral.cpu_count", "CPUs", request.cpu_count, template.cpu_count, ceilings.cpu_count, 1),
        memory_mb=_narrowed("corral.memory_mb", "MB", request.memory_mb, template.memory_mb, ceilings.memory_mb,
                            MIN_MEMORY_MB),
        disk_mb=max(MIN_DISK_MB, min(template.disk_mb, ceilings.disk_mb)),
        pids_max=min(pids_max, ceilings.pids_max),
    )


def resolve_timeout(requested: int | None, default_s: int, ceilings: Ceilings) -> int:
    if requested is None:
        return default_s
    if requested < 0:
        raise InvalidRequest("timeout must be a non-negative number of seconds")
    if requested > ceilings.timeout_s:
        raise InvalidRequest(f"timeout {requested}s exceeds the maximum of {ceilings.timeout_s}s")
    return requested
