"""The spec's `SandboxSecurityConfig` (§5.2) and `Language` (§6.1), with the layer-3 ranges (§5.1).

A config is validated when it is made: a value outside the ranges the spec allows is a
`ConfigError` naming the field, so a bad config never reaches a sandbox.
"""

from __future__ import annotations

import re
from enum import Enum

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .errors import ConfigError

MIB = 1024 * 1024
MAX_TIMEOUT_SECONDS = 24 * 3600
CPU_RANGE = (1, 8)
MEMORY_RANGE_MB = (512, 8192)

# A host name (LDH labels) or a wildcard for the names below a domain (`*.example.com`).
# No scheme, port, path, address or bare `*`: the sandbox's network policy takes names.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_RE = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})+$")
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


class Language(str, Enum):
    PYTHON = "python"
    JAVASCRIPT = "javascript"
    TYPESCRIPT = "typescript"
    R = "r"
    JAVA = "java"
    BASH = "bash"

    def as_str(self) -> str:
        return self.value


def _range(field: str, value: int, low: int, high: int, unit: str = "") -> None:
    if not low <= value <= high:
        raise ConfigError(field, f"{value}{unit} is outside the allowed range {low}-{high}{unit}")


class SandboxSecurityConfig(BaseModel):
    """What one sandbox may do. Defaults are the spec's; every field is enforced by
    `SandboxManager` (timeout, CPU and memory reach the sandbox; hosts become its network policy;
    the transfer caps are checked before any byte moves)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    internet_access: bool = False
    allowed_hosts: list[str] = []
    timeout_seconds: int = 60
    memory_mb: int = 1024
    cpu_cores: int = 2
    max_upload_bytes: int = 10 * MIB
    max_download_bytes: int = 50 * MIB

    def __init__(self, **data: object) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # type errors: name the field, keep the ValueError contract
            err = exc.errors()[0]
            original = (err.get("ctx") or {}).get("error")
            if isinstance(original, ConfigError):  # raised by _check: keep its field
                raise ConfigError(original.field, str(original).split(": ", 1)[-1]) from None
            field = ".".join(str(p) for p in err["loc"]) or "config"
            raise ConfigError(field, err["msg"]) from None

    @model_validator(mode="after")
    def _check(self) -> "SandboxSecurityConfig":
        _range("timeout_seconds", self.timeout_seconds, 1, MAX_TIMEOUT_SECONDS, " s")
        _range("memory_mb", self.memory_mb, *MEMORY_RANGE_MB, " MB")
        _range("cpu_cores", self.cpu_cores, *CPU_RANGE)
        if self.max_upload_bytes < 0:
            raise ConfigError("max_upload_bytes", "must be >= 0")
        if self.max_download_bytes < 0:
            raise ConfigError("max_download_bytes", "must be >= 0")
        if self.allowed_hosts and not self.internet_access:
            raise ConfigError("allowed_hosts", "hosts are given but internet_access is False")
        for host in self.allowed_hosts:
            if not isinstance(host, str) or _IPV4_RE.match(host) or not _HOST_RE.match(host.lower()):
                raise ConfigError("allowed_hosts", f"{host!r} is not a host name (no scheme, port, path or address)")
        return self

    def with_(self, **changes: object) -> "SandboxSecurityConfig":
        """A validated copy with some fields changed (model_copy would skip validation)."""
        return SandboxSecurityConfig(**{**self.model_dump(), **changes})
