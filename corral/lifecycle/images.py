"""What a template says about the sandboxes made from it, beyond its files.

Dockerfile-built templates carry an `image.json` (ENV, USER, WORKDIR, start and ready commands,
network defaults); templates that ship Jupyter's Python kernel get it warm-started.
"""

from __future__ import annotations

import logging
from pathlib import Path

from corral.templates import TemplateInfo
from corral.templates.image import ImageConfig, load_image_config

log = logging.getLogger("corral.lifecycle")


def image_config(template: TemplateInfo) -> ImageConfig | None:
    """What a Dockerfile-built template says beyond its files (ENV, USER, WORKDIR, start and ready
    commands, network defaults); None for templates built without a Dockerfile."""
    try:
        return load_image_config(template.path)
    except (OSError, ValueError, TypeError):
        log.warning("template %s has an unreadable image.json; ignoring it", template.name)
        return None


def sandbox_env(image: ImageConfig | None, env_vars: dict[str, str]) -> dict[str, str]:
    """The template's ENV, then the create request's envVars (which win)."""
    return {**(image.env if image else {}), **env_vars}


def default_user(image: ImageConfig | None) -> str:
    """Commands run as `user` unless the template's Dockerfile chose another non-root USER (a
    Dockerfile that never says USER would otherwise make every command run as root)."""
    return image.user if image and image.user not in ("", "root", "0") else "user"


def warm_kernels(rootfs: Path) -> tuple[str, ...]:
    """Templates that ship Jupyter's Python kernel get it started with the sandbox, so the first
    `run_code` does not wait about a second for it; others start kernels on first use."""
    places = ("usr/lib/python3/dist-packages/ipykernel", "usr/local/lib/python3.11/dist-packages/ipykernel")
    return ("python",) if any((rootfs / p).is_dir() for p in places) else ()
