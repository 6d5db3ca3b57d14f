"""What the store knows about one built template, persisted as `<store>/<name>/template.json`.

The file travels with the rootfs inside the template directory, so the atomic rename that
publishes a template publishes its description with it: there is never a rootfs without a
matching `template.json`, nor the reverse.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from corral.errors import CorralError
from corral.templates.names import check_name

INFO_FILE = "template.json"
ROOTFS_DIR = "rootfs"
FORMAT_VERSION = 1


class TemplateCorrupt(CorralError):
    """A template directory whose `template.json` cannot be trusted."""


@dataclass(frozen=True)
class TemplateResources:
    """Defaults a sandbox gets from this template unless the request narrows them."""

    cpu_count: int = 2
    memory_mb: int = 1024
    disk_mb: int = 2048

    def __post_init__(self) -> None:
        for key in ("cpu_count", "memory_mb", "disk_mb"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    created_at: str                 # ISO 8601, UTC
    recipe_hash: str                # "sha256:<hex>"; equal hash means an equal build recipe
    size_bytes: int                 # apparent size of the rootfs, hard links counted once
    envd_version: str
    resources: TemplateResources = field(default_factory=TemplateResources)
    build_log: str = "build.log"    # relative to the template directory
    aliases: tuple[str, ...] = ()
    path: Path = Path()             # the template directory; not persisted

    # Flat views of the default resources, for callers that render E2B's template shape.
    @property
    def cpu_count(self) -> int:
        return self.resources.cpu_count

    @property
    def memory_mb(self) -> int:
        return self.resources.memory_mb

    @property
    def disk_mb(self) -> int:
        return self.resources.disk_mb

    @property
    def rootfs(self) -> Path:
        return self.path / ROOTFS_DIR

    @property
    def build_log_path(self) -> Path:
        return self.path / self.build_log

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data.pop("path")
        data["aliases"] = list(self.aliases)
        data["format"] = FORMAT_VERSION
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, path: Path) -> "TemplateInfo":
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            if data.pop("format", None) != FORMAT_VERSION:
                raise ValueError(f"unsupported format (this corral reads format {FORMAT_VERSION})")
            resources = TemplateResources(**data.pop("resources", {}))
            aliases = tuple(check_name(a) for a in data.pop("aliases", []))
            build_log = data.pop("build_log", "build.log")
            if not isinstance(build_log, str) or "/" in build_log or build_log.startswith("."):
                raise ValueError(f"bad build_log {build_log!r}")
            info = cls(resources=resources, aliases=aliases, build_log=build_log, path=path, **data)
            check_name(info.name)
            if not isinstance(info.size_bytes, int) or not isinstance(info.recipe_hash, str):
                raise TypeError("bad size_bytes or recipe_hash")
        except (ValueError, TypeError) as exc:
            raise TemplateCorrupt(f"{path / INFO_FILE}: {exc}") from None
        return info


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
