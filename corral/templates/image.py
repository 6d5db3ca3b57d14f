"""What a Dockerfile says about sandboxes beyond their files: `image.json` beside the rootfs.

ENV, WORKDIR, USER, CMD/ENTRYPOINT, LABELs and the e2b.toml start/ready commands and network
defaults are not part of the filesystem, so they travel in a sidecar file inside the template
directory. It is written into the stage before the commit, so the atomic rename that publishes
the rootfs publishes its image config with it. The server reads it with `load_image_config`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

IMAGE_FILE = "image.json"
FORMAT = 1


@dataclass(frozen=True)
class ImageConfig:
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    start_cmd: str | None = None          # e2b.toml's, else ENTRYPOINT + CMD as one shell line
    ready_cmd: str | None = None
    network: dict[str, Any] = field(default_factory=lambda: {"internet_access": False, "allowed_hosts": []})
    base: str = ""                        # the corral template the build started from
    layers: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "ImageConfig":
        data = json.loads(text)
        if data.pop("format", None) != FORMAT:
            raise ValueError("unsupported image.json format")
        return cls(**data)


def load_image_config(template_dir: Path) -> ImageConfig | None:
    """The image config of a template built from a Dockerfile, or None (e.g. `base`)."""
    try:
        return ImageConfig.from_json((Path(template_dir) / IMAGE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
