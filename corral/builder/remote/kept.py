"""Tagged builds that are no longer a template's latest: kept so that their tags still start them.

On E2B a tag names one build (`Template.build(t, "app:v1")`, then `app:v2`: `app:v1` still starts
the first build). corral's store holds one tree per name, so every successful API build is also
published under a name of its own, `<name>.build-<12 hex of the build id>`: a hard-linked copy
of the published rootfs (the builder's trees are hard links into its layer cache, so a copy costs
inodes and seconds, not a second rootfs). `Sandbox.create("app:v1")` starts that copy once a
newer build has replaced `app`. A copy goes when no tag points to its build any more and it is
not the latest build (`prune`), and with its template (`remove_all`).

These names are the store's, not the user's: the build API refuses to make a template whose
name has this form, and the template listing leaves them out.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import subprocess
from dataclasses import replace

from corral.builder.remote.records import TemplateRecord
from corral.templates.info import INFO_FILE, ROOTFS_DIR
from corral.templates.store import TemplateError, TemplateNotFound, TemplateStore

log = logging.getLogger("corral.builder.remote")

_SUFFIX = ".build-"
_ID_CHARS = 12
_NAME_ROOM = 63 - len(_SUFFIX) - _ID_CHARS     # store names are at most 63 characters
KEPT_PATTERN = re.compile(r".*\.build-[0-9a-f]{12}")


def kept_name(name: str, build_id: str) -> str:
    """The store name of build `build_id` of template `name` (the build id is a random UUID)."""
    hex_id = build_id.replace("-", "").lower()[:_ID_CHARS]
    return f"{name[:_NAME_ROOM]}{_SUFFIX}{hex_id}"


def is_kept_name(name: str) -> bool:
    return KEPT_PATTERN.fullmatch(name) is not None


def keep_build(store: TemplateStore, name: str, build_id: str) -> str:
    """Publish the tree now under `name` as its build's own name too; return that name."""
    target = kept_name(name, build_id)
    source = store.get(name)
    if store.exists(target):
        return target
    with store.stage(target) as stage:
        proc = subprocess.run(["cp", "-a", "-l", "--", str(source.rootfs), str(stage.rootfs)], capture_output=True)
        if proc.returncode != 0:
            raise TemplateError(f"keeping build {build_id} failed: {proc.stderr.decode(errors='replace')[-300:]}")
        for entry in source.path.iterdir():            # image.json, build.log, ... (not the tree itself)
            if entry.name not in (ROOTFS_DIR, INFO_FILE) and entry.is_file() and not entry.is_symlink():
                shutil.copy2(entry, stage.path / entry.name)
        stage.commit(replace(source, name=target, aliases=(), path=stage.path))
    return target


def wanted_builds(rec: TemplateRecord) -> set[str]:
    """The builds of `rec` whose kept copy must stay: every tagged build, and the latest."""
    wanted = {target["build_id"] for target in rec.tags.values()}
    latest = rec.last_ready()
    if latest is not None:
        wanted.add(latest.build_id)
    return wanted


def prune(store: TemplateStore, rec: TemplateRecord | None) -> None:
    """Unpublish the kept copies of `rec`'s builds that nothing can start any more."""
    if rec is None:
        return
    wanted = wanted_builds(rec)
    for build in rec.builds:
        if build.build_id not in wanted:
            _remove(store, kept_name(rec.name, build.build_id))


def remove_all(store: TemplateStore, rec: TemplateRecord) -> None:
    for build in rec.builds:
        _remove(store, kept_name(rec.name, build.build_id))


def _remove(store: TemplateStore, name: str) -> None:
    # A sandbox still running from the copy keeps its files until it ends (the store's trash).
    with contextlib.suppress(TemplateNotFound):
        if store.exists(name):
            store.remove(name)
