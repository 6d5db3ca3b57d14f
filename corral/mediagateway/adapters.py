"""Where SONA keeps each user's LoRA adapters: versioned, never overwritten.

`AdapterStore` is the interface (an object store can implement it later); `DirectoryAdapterStore`
keeps `<root>/<user>/v000001.pt` plus a JSON sidecar with the update's report. User ids are
checked before they become path components.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

from .errors import ConfigError

_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_user_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not _USER_RE.match(user_id) or ".." in user_id:
        raise ConfigError("user", f"{user_id!r} is not a valid user id (letters, digits, '_', '.', '-'; at most 64)")
    return user_id


class AdapterStore(Protocol):
    def latest(self, user_id: str) -> tuple[int, bytes] | None: ...

    def put(self, user_id: str, version: int, data: bytes, report: dict[str, Any]) -> str: ...

    def versions(self, user_id: str) -> list[int]: ...


class DirectoryAdapterStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, user_id: str) -> Path:
        return self.root / check_user_id(user_id)

    def versions(self, user_id: str) -> list[int]:
        d = self._dir(user_id)
        if not d.is_dir():
            return []
        return sorted(int(p.stem[1:]) for p in d.glob("v*.pt") if p.stem[1:].isdigit())

    def latest(self, user_id: str) -> tuple[int, bytes] | None:
        versions = self.versions(user_id)
        if not versions:
            return None
        return versions[-1], (self._dir(user_id) / f"v{versions[-1]:06d}.pt").read_bytes()

    def put(self, user_id: str, version: int, data: bytes, report: dict[str, Any]) -> str:
        """Store `data` as `version`; an existing version is never replaced (a concurrent update
        that lost the race gets an error instead of silently overwriting the other's adapter)."""
        d = self._dir(user_id)
        d.mkdir(parents=True, exist_ok=True)
        target = d / f"v{version:06d}.pt"
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                os.link(tmp, target)  # atomic, and fails if the version exists
            except FileExistsError:
                raise ConfigError("adapter", f"version {version} of {user_id}'s adapter already exists") from None
        finally:
            os.unlink(tmp)
        (d / f"v{version:06d}.json").write_text(json.dumps(report, indent=1, sort_keys=True))
        return str(target)
