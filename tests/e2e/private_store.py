"""A throw-away template store holding the host's built-in `base` (hard links, no copy), for tests
that build templates through the API: their builds and layer cache never touch the shared store
that every worktree's server reads."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.templates import TemplateStore
from corral.templates.info import TemplateInfo

SHARED_STORE = Path("/var/lib/corral/templates")


def private_store(root: Path, names: tuple[str, ...] = ("base",)) -> TemplateStore:
    shared = TemplateStore(SHARED_STORE)
    store = TemplateStore(root)
    for name in names:
        try:
            real = shared.get(name)
        except Exception:   # noqa: BLE001 - any reason the template is unusable means "not built"
            pytest.skip(f"the {name} template is not built (make template)")
        with store.stage(name) as stage:
            subprocess.run(["cp", "-a", "-l", str(real.rootfs), str(stage.rootfs)], check=True)
            for extra in ("image.json",):
                if (real.path / extra).is_file():
                    subprocess.run(["cp", "-a", str(real.path / extra), str(stage.path / extra)], check=True)
            stage.commit(TemplateInfo(name=name, created_at=real.created_at, recipe_hash=real.recipe_hash,
                                      size_bytes=real.size_bytes, envd_version=real.envd_version,
                                      resources=real.resources, path=stage.path))
    return store
