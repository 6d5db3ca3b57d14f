"""What the manager must remember across a restart, one small JSON file per sandbox.

The file is written *before* anything is created in the kernel and removed only after
everything is gone, so a crash at any point leaves either nothing or a file that names what to
clean up. Writes go through a temporary file and rename, so a file is never half-written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .addressing import check_sandbox_id
from .egress_policy import EgressPolicy


@dataclass
class AttachedSandbox:
    """One sandbox's attachment as the manager remembers it (and saves, one JSON file each)."""

    sandbox_id: str
    slot: int
    netns: str
    policy: EgressPolicy
    status: str = "attaching"          # attaching -> attached
    dns: dict[str, Any] = field(default_factory=dict)   # audit of names asked, see audit.DnsLog
    checked: dict[str, Any] = field(default_factory=dict)   # SNI/Host decisions, see audit.ProxyLog

    def to_json(self) -> dict[str, Any]:
        return {"sandbox_id": self.sandbox_id, "slot": self.slot, "netns": self.netns,
                "policy": self.policy.to_json(), "status": self.status, "dns": self.dns,
                "checked": self.checked}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttachedSandbox:
        return cls(sandbox_id=check_sandbox_id(data["sandbox_id"]), slot=int(data["slot"]),
                   netns=str(data["netns"]), policy=EgressPolicy.from_json(data["policy"]),
                   status=str(data.get("status", "attaching")), dns=dict(data.get("dns") or {}),
                   checked=dict(data.get("checked") or {}))


class StateDir:
    """`<state_dir>/sandboxes/<id>.json`, one file per attached (or attaching) sandbox."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.dir = self.root / "sandboxes"

    def ensure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, sandbox_id: str) -> Path:
        return self.dir / f"{check_sandbox_id(sandbox_id)}.json"

    def save(self, record: AttachedSandbox) -> None:
        self.ensure()
        target = self.path(record.sandbox_id)
        tmp = target.with_suffix(".json.tmp")
        with open(tmp, "w") as f:
            json.dump(record.to_json(), f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def remove(self, sandbox_id: str) -> None:
        for p in (self.path(sandbox_id), self.path(sandbox_id).with_suffix(".json.tmp")):
            p.unlink(missing_ok=True)

    def load_all(self) -> tuple[list[AttachedSandbox], list[Path]]:
        """Every readable record, and the files that could not be read (to be reported)."""
        records, broken = [], []
        if not self.dir.is_dir():
            return records, broken
        for p in sorted(self.dir.glob("*.json")):
            try:
                records.append(AttachedSandbox.from_json(json.loads(p.read_text())))
            except (OSError, ValueError, KeyError, TypeError):
                broken.append(p)
        return records, broken

    def ids_on_disk(self) -> set[str]:
        if not self.dir.is_dir():
            return set()
        return {p.stem for p in self.dir.glob("*.json")}
