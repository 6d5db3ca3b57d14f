"""Shared helpers for template tests: small real templates made through the store's own API."""

from __future__ import annotations

from pathlib import Path

from corral.templates import TemplateInfo, TemplateResources, TemplateStore
from corral.templates.info import utc_now
from corral.templates.trees import disk_usage


def make_template(store: TemplateStore, name: str, files: dict[str, str] | None = None,
                  recipe_hash: str = "sha256:test", resources: TemplateResources | None = None) -> TemplateInfo:
    with store.stage(name) as stage:
        stage.rootfs.mkdir()
        for rel, text in (files or {"etc/hostname": "sandbox\n"}).items():
            path = stage.rootfs / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        info = TemplateInfo(name=name, created_at=utc_now(), recipe_hash=recipe_hash,
                            size_bytes=disk_usage(stage.rootfs), envd_version="0.6.4", path=stage.path,
                            resources=resources or TemplateResources())
        return stage.commit(info)


def store_entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []
