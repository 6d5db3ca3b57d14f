"""What the in-sandbox daemon is told at start.

The runtime writes this as JSON to a 0600 file in the sandbox's host-side workdir; the daemon
reads it before it pivots into the sandbox root, and the file is removed. The long-lived spawner
never holds it, so one sandbox's token can never be found in another sandbox's memory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class EnvdConfig:
    sandbox_id: str
    access_token: str | None = None
    env_vars: dict[str, str] = field(default_factory=dict)
    default_user: str = "user"
    default_workdir: str | None = None
    envd_version: str = "0.6.4"
    # Largest accepted upload (decompressed bytes of all files in one POST /files); beyond -> 413.
    max_upload_bytes: int = 1 << 30
    # Code-interpreter languages whose kernels start with the daemon (the first cell does not
    # wait for a kernel start); empty: kernels start on first use.
    start_kernels: list[str] = field(default_factory=list)

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> "EnvdConfig":
        return cls(**json.loads(text))
