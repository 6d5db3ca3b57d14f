"""Assemble a sandbox's root filesystem in a private mount namespace, then exec runsc.

Run by the tier as ``python -I -m corral.runtime.gvisor.launcher '<json>'``. The process
unshares its mount namespace, attaches the sandbox's ext4 image (its disk quota) to an
auto-clearing loop device, mounts it, and mounts an overlay of the read-only template under a
writable upper directory on that image. It then execs ``runsc run`` (or ``restore``): runsc's
gofer, which serves the sandbox's files, inherits this mount namespace. Nothing is mounted in the
host's namespace, so when the sandbox's last process exits the kernel drops the mounts and the
loop device detaches itself: a crashed server or tier leaves no mount behind.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from corral.runtime.namespace import disk
from corral.runtime.namespace import syscalls as sc


def assemble(workdir: str, rootfs: str) -> str:
    """Mount the writable layer and the overlay; return the overlay's mount point."""
    layer, root = os.path.join(workdir, "layer"), os.path.join(workdir, "root")
    for d in (layer, root):
        os.makedirs(d, mode=0o700, exist_ok=True)
    lfd, dev = disk.attach_loop(Path(workdir) / disk.IMAGE_NAME)
    try:
        sc.mount(dev, layer, "ext4", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOATIME, "")
    finally:
        os.close(lfd)  # the mount alone holds the device from here on (AUTOCLEAR)
    upper, work = os.path.join(layer, "upper"), os.path.join(layer, "work")
    os.makedirs(upper, mode=0o755, exist_ok=True)
    os.makedirs(work, mode=0o700, exist_ok=True)
    os.chdir(workdir)  # relative option paths: long data dirs would overflow the option page
    sc.mount("overlay", root, "overlay", sc.MS_NOSUID | sc.MS_NODEV,
             f"lowerdir={rootfs},upperdir=layer/upper,workdir=layer/work")
    os.chdir("/")
    return root


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    try:
        assemble(spec["workdir"], spec["rootfs"])
    except OSError as exc:
        print(f"corral launcher: cannot assemble the root filesystem: {exc}", file=sys.stderr)
        return 3
    cmd = spec["argv"]
    os.execve(cmd[0], cmd, spec["env"])
    return 127  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
