"""What the server hands to a sandbox's daemon at start: its identity, token and environment.

The server (lifecycle) builds an `EnvdConfig` and serialises it with `to_bytes`; the runtime
carries those bytes without looking inside (it writes them to a 0600 file in the sandbox's
host-side workdir); the daemon's first code reads and deletes that file before it pivots into the
sandbox root and calls `from_bytes`. The long-lived spawner never holds the bytes, so one
sandbox's token can never be found in another sandbox's memory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from corral.errors import InvalidRequest
from corral.wire.constants import ENVD_VERSION, HOSTED_APPS


class HandoffError(InvalidRequest):
    """The hand-off bytes are not a valid EnvdConfig."""


@dataclass
class EnvdConfig:
    sandbox_id: str
    access_token: str | None = None
    env_vars: dict[str, str] = field(default_factory=dict)
    default_user: str = "user"
    default_workdir: str | None = None
    envd_version: str = ENVD_VERSION
    # Largest accepted upload (decompressed bytes of all files in one POST /files); beyond -> 413.
    max_upload_bytes: int = 1 << 30
    # Code-interpreter languages whose kernels start with the daemon (the first cell does not
    # wait for a kernel start); empty: kernels start on first use.
    start_kernels: list[str] = field(default_factory=list)
    # Apps for other E2B ports (port -> "module:function" factory), see constants.HOSTED_APPS.
    hosted_apps: dict[str, str] = field(default_factory=lambda: dict(HOSTED_APPS))
    # Wall-clock time (Unix seconds) at which the daemon ends the sandbox by itself, so a sandbox
    # whose server is gone does not live forever; None: no own deadline. The server moves it
    # (DEADLINE_PATH) on set_timeout, refresh, pause (cleared) and resume.
    end_at: float | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "EnvdConfig":
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HandoffError(f"hand-off is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise HandoffError("hand-off must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise HandoffError(f"unknown hand-off fields: {', '.join(sorted(unknown))}")
        if not isinstance(raw.get("sandbox_id"), str):
            raise HandoffError("sandbox_id must be a string")
        config = cls(**raw)
        config._check()
        return config

    def _check(self) -> None:
        def fail(name: str, what: str) -> None:
            raise HandoffError(f"{name} must be {what}")

        for name in ("access_token", "default_workdir"):
            value: Any = getattr(self, name)
            if value is not None and not isinstance(value, str):
                fail(name, "a string or null")
        for name in ("default_user", "envd_version"):
            if not isinstance(getattr(self, name), str):
                fail(name, "a string")
        if not isinstance(self.env_vars, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.env_vars.items()):
            fail("env_vars", "a map of strings")
        if isinstance(self.max_upload_bytes, bool) or not isinstance(self.max_upload_bytes, int) \
                or self.max_upload_bytes < 0:
            fail("max_upload_bytes", "a non-negative integer")
        if not isinstance(self.hosted_apps, dict) or not all(
                isinstance(k, str) and k.isdigit() and isinstance(v, str) for k, v in self.hosted_apps.items()):
            fail("hosted_apps", "a map of port numbers to entry points")
        if not valid_end_at(self.end_at):
            fail("end_at", "a number of seconds or null")
        if not isinstance(self.start_kernels, list) or not all(isinstance(k, str) for k in self.start_kernels):
            fail("start_kernels", "a list of strings")


def valid_end_at(value: object) -> bool:
    """A deadline as the wire carries it: Unix seconds (finite, positive) or None."""
    if value is None:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e11
