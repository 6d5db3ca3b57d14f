"""The spawn request the tier sends to the spawner: plain data, validated, never a secret.

Secrets (the payload's configuration bytes: for envd, the access token and env vars) travel
through a 0600 file in the workdir instead, so the long-lived spawner — forked into every
sandbox — never has them in its memory.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from corral.wire.constants import ENVD_SOCKET, PORTS_SOCKET, is_sandbox_id
# The id is also the sandbox's hostname, which resolvers treat as one DNS label (at most 63).
MAX_HOSTNAME_ID = 63
UIDS_PER_SANDBOX = 65536
MIN_UID_BASE = 65536          # never overlap host uids 0..65535 (system users, real people)
MAX_UID = 2**32 - 2           # (uid_t)-1 is "no uid"

CONFIG_FILE = "envd-config.json"
SOCKET_FILE = ENVD_SOCKET
PORTS_SOCKET_FILE = PORTS_SOCKET
LAYER_DIR = "layer"           # mount point of the writable ext4 layer (private mount ns)
LOWER_DIR = "lower"           # mount point of the idmapped template
ROOT_DIR = "root"             # mount point of the overlay, pivoted into


class RequestError(ValueError):
    pass


@dataclass(frozen=True)
class SpawnRequest:
    sandbox_id: str
    rootfs: str
    workdir: str
    uid_base: int
    cpu_count: int
    memory_mb: int
    disk_mb: int
    pids_max: int
    golden_image: str
    init_argv: list[str] = field(default_factory=list)   # empty: run the payload in-process
    # [image, target] pairs: volumes to mount read-write (runtime/namespace/volumes.py).
    volumes: list[list[str]] = field(default_factory=list)
    req: int = 0

    def validate(self) -> None:
        if not is_sandbox_id(self.sandbox_id) or len(self.sandbox_id) > MAX_HOSTNAME_ID:
            raise RequestError(f"invalid sandbox id {self.sandbox_id!r}")
        if self.uid_base < MIN_UID_BASE or self.uid_base + UIDS_PER_SANDBOX - 1 > MAX_UID:
            raise RequestError(f"uid_base {self.uid_base} outside [{MIN_UID_BASE}, "
                               f"{MAX_UID - UIDS_PER_SANDBOX + 1}]")
        for name in ("rootfs", "workdir", "golden_image"):
            value = getattr(self, name)
            if not os.path.isabs(value) or "\x00" in value:
                raise RequestError(f"{name} must be an absolute path")
        if not (1 <= self.cpu_count <= 1024):
            raise RequestError("cpu_count must be 1..1024")
        if not (16 <= self.memory_mb <= 1 << 22):
            raise RequestError("memory_mb must be at least 16")
        if not (16 <= self.disk_mb <= 1 << 24):
            raise RequestError("disk_mb must be at least 16")
        if not (8 <= self.pids_max <= 1 << 22):
            raise RequestError("pids_max must be at least 8")
        for pair in self.volumes:
            if (not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(x, str) for x in pair)
                    or not all(os.path.isabs(x) and "\x00" not in x for x in pair)
                    or os.path.normpath(pair[1]) != pair[1] or pair[1] == "/"):
                raise RequestError("volumes must be [absolute image, normalised absolute target] pairs")
        if any(not isinstance(a, str) or "\x00" in a for a in self.init_argv):
            raise RequestError("init_argv must be strings without NUL")

    def to_json(self) -> dict[str, Any]:
        return {"op": "spawn", **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SpawnRequest":
        fields = {k: v for k, v in data.items() if k != "op"}
        try:
            req = cls(**fields)
        except TypeError as exc:
            raise RequestError(str(exc)) from exc
        req.validate()
        return req
