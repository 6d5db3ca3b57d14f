"""What the build API remembers about the templates it made: builds, their status, tags.

Templates built through the SDK's `Template.build` (or the CLI) are recorded here, in one JSON
file in the server's data dir, written atomically. The rootfs itself lives in the template store
like every other template; this record is what lets the API answer for builds and tags, and what
marks a template as the API's to rebuild or delete (the built-in and operator-built ones are not).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_TAG = "default"


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class BuildRecord:
    build_id: str
    status: str                    # waiting | building | ready | error
    created_at: str
    updated_at: str
    cpu_count: int
    memory_mb: int
    finished_at: str | None = None
    reason: str | None = None
    step: str | None = None


@dataclass
class TemplateRecord:
    name: str
    created_at: str
    updated_at: str
    cpu_count: int
    memory_mb: int
    builds: list[BuildRecord] = field(default_factory=list)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)     # tag -> {build_id, created_at}

    def build(self, build_id: str) -> BuildRecord | None:
        return next((b for b in self.builds if b.build_id == build_id), None)

    def last_ready(self) -> BuildRecord | None:
        ready = [b for b in self.builds if b.status == "ready"]
        return ready[-1] if ready else None


class Records:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._templates: dict[str, TemplateRecord] = self._load()
        # Tags a build gets when it succeeds (a failed build must not move a tag).
        self._pending_tags: dict[tuple[str, str], list[str]] = {}

    def _load(self) -> dict[str, TemplateRecord]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        out = {}
        for name, raw in data.get("templates", {}).items():
            builds = [BuildRecord(**b) for b in raw.pop("builds", [])]
            out[name] = TemplateRecord(builds=builds, **raw)
        # A build that was running when the server stopped never finished.
        for rec in out.values():
            for b in rec.builds:
                if b.status in ("waiting", "building"):
                    b.status, b.reason = "error", "the server stopped during the build"
        return out

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"templates": {n: asdict(r) for n, r in sorted(self._templates.items())}}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".records-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    # -- reads ---------------------------------------------------------------------------------

    def get(self, name: str) -> TemplateRecord | None:
        with self._lock:
            return self._templates.get(name)

    def all(self) -> list[TemplateRecord]:
        with self._lock:
            return list(self._templates.values())

    # -- writes --------------------------------------------------------------------------------

    def new_build(self, name: str, build_id: str, cpu: int, mem: int, tags: list[str]) -> TemplateRecord:
        with self._lock:
            stamp = now_iso()
            rec = self._templates.get(name)
            if rec is None:
                rec = self._templates[name] = TemplateRecord(name, stamp, stamp, cpu, mem)
            rec.builds.append(BuildRecord(build_id, "waiting", stamp, stamp, cpu, mem))
            rec.builds = rec.builds[-50:]
            rec.updated_at = stamp
            self._pending_tags[(name, build_id)] = tags
            self._save()
            return rec

    def set_status(self, name: str, build_id: str, status: str, *, reason: str | None = None,
                   step: str | None = None) -> None:
        with self._lock:
            rec = self._templates.get(name)
            build = rec.build(build_id) if rec else None
            if rec is None or build is None:
                return
            stamp = now_iso()
            build.status, build.updated_at, build.reason, build.step = status, stamp, reason, step
            if status in ("ready", "error"):
                build.finished_at = stamp
            if status == "ready":
                rec.cpu_count, rec.memory_mb, rec.updated_at = build.cpu_count, build.memory_mb, stamp
                for tag in self._pending_tags.pop((name, build_id), [DEFAULT_TAG]):
                    rec.tags[tag] = {"build_id": build_id, "created_at": stamp}
            self._save()

    def assign_tags(self, name: str, build_id: str, tags: list[str]) -> None:
        with self._lock:
            rec = self._templates[name]
            stamp = now_iso()
            for tag in tags:
                rec.tags[tag] = {"build_id": build_id, "created_at": stamp}
            self._save()

    def remove_tags(self, name: str, tags: list[str]) -> list[str]:
        """Remove `tags`; return those that were not there."""
        with self._lock:
            rec = self._templates[name]
            missing = [t for t in tags if t not in rec.tags]
            if not missing:
                for tag in tags:
                    rec.tags.pop(tag, None)
                self._save()
            return missing

    def delete(self, name: str) -> None:
        with self._lock:
            self._templates.pop(name, None)
            self._save()

