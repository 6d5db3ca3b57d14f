"""Take what a finished RUN step wrote out of its build sandbox's disk image.

The namespace tier keeps a sandbox's writable layer (overlay upper and work dirs) on an ext4
image that is mounted only inside the sandbox's private mount namespace; once the sandbox is
gone the image is a plain file again. This module runs as its own process (`python -m ...`):
it makes a private mount namespace, attaches the image read-only, mounts it there and applies
its `upper/` to the new layer tree. When the process exits, its namespace and with it the mount
and the (auto-clearing) loop device disappear, so a crash here leaves nothing mounted.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from corral.runtime.namespace import disk
from corral.runtime.namespace import syscalls as sc
from corral.builder import overlay_diff


def harvest(image: str, tree: str, uid_base: int) -> overlay_diff.DiffStats:
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    mnt = tempfile.mkdtemp(prefix="corral-harvest-")
    try:
        lfd, dev = disk.attach_loop(image, read_only=True)
        try:
            sc.mount(dev, mnt, "ext4", sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "noload")
        finally:
            os.close(lfd)
        upper = os.path.join(mnt, "upper")
        if not os.path.isdir(upper):
            raise overlay_diff.DiffError("the build sandbox's layer has no upper directory")
        return overlay_diff.apply(upper, tree, uid_base)
    finally:
        try:
            sc.umount2(mnt, sc.MNT_DETACH)
        except OSError:
            pass
        os.rmdir(mnt)


def main(argv: list[str]) -> int:
    image, tree, uid_base = argv[1], argv[2], int(argv[3])
    try:
        stats = harvest(image, tree, uid_base)
    except Exception as exc:  # noqa: BLE001 - reported to the builder as one line
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps({"ok": True, "written": stats.written, "deleted": stats.deleted,
                      "skipped": stats.skipped[:20]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
