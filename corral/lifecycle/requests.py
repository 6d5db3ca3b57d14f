"""What a client asks of the lifecycle, typed: the API parses E2B's bodies into these once.

Nothing below the API sees a raw request body: no camelCase/snake_case fallbacks, no untyped
`network` dict. Bounds that need the template or the server's ceiling (limits, egress capping)
are checked by the lifecycle; everything that can be checked from the request alone already was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.network import EgressPolicy


@dataclass(frozen=True)
class ResourceRequest:
    """corral's create extension (`corral.cpu_count` / `corral.memory_mb`): narrower limits than
    the template's. None means "what the template gives"."""

    cpu_count: int | None = None
    memory_mb: int | None = None


@dataclass(frozen=True)
class NetworkRequest:
    """E2B's `allow_internet_access` and `network` fields of a create."""

    # None: the request asked for nothing, so the template's own network defaults apply.
    egress: EgressPolicy | None = None
    # Whether the sandbox's own ports answer without its traffic access token.
    public_traffic: bool = True
    # What get_info reports back as `network` (E2B's shape), None when nothing was asked.
    echo: dict[str, Any] | None = None


@dataclass(frozen=True)
class NetworkUpdate:
    """E2B's `PUT /sandboxes/{id}/network`: the sandbox's new egress rules."""

    egress: EgressPolicy
    echo: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CreateRequest:
    template: str
    timeout: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    env_vars: dict[str, str] = field(default_factory=dict)
    auto_pause: bool = False
    # E2B's `autoPauseMemory` (False: an auto-pause is a filesystem-mode pause; None: full) and
    # `autoResume.enabled` (None: E2B's default, no resume on traffic).
    auto_pause_mode: str | None = None
    auto_resume: bool | None = None
    network: NetworkRequest = field(default_factory=NetworkRequest)
    resources: ResourceRequest = field(default_factory=ResourceRequest)
    # corral's `isolation` extension: a tier at least as strong as the template's and the
    # server's minimum (None: that minimum).
    isolation: str | None = None
    # E2B's `volumeMounts`: (volume name, absolute path inside the sandbox) pairs.
    volume_mounts: tuple[tuple[str, str], ...] = ()
