"""Where volumes live on disk and how their size is capped.

A volume is one ext4 image, `<volumes dir>/<volume id>/volume.img`, of the volume's size: the
quota is the filesystem's size, so a full volume is ENOSPC for every sandbox that mounts it and
nothing outside it fills up. This is how the sandbox's own writable layer is capped
(runtime/namespace/disk.py); unlike that layer, a volume has a journal (it outlives sandboxes
and must survive a crash) and its root belongs to uid/gid 1000, the templates' `user`.

The image is sparse: a new 1 GiB volume takes a few MB on the host until it is written. Nothing
on the host mounts it: each sandbox mounts it in its own mount namespace (the runtime shares one
loop device and so one superblock between them), so no host path ever exposes a volume's files.
All volumes live under one directory (CORRAL_VOLUMES_DIR), so it can be a shared file system
when sandboxes of several machines mount the same volumes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from corral.errors import CorralError
from corral.volumes.names import check_volume_id

IMAGE_NAME = "volume.img"
LOCK_NAME = "lock"
MIN_SIZE_MB = 16
# The owner of a new volume's root directory, as the sandbox sees it (the templates' `user`).
ROOT_OWNER = 1000


class VolumeStorageError(CorralError):
    status = 500


class VolumeStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def dir(self, volume_id: str) -> Path:
        return self.root / check_volume_id(volume_id)

    def image(self, volume_id: str) -> Path:
        return self.dir(volume_id) / IMAGE_NAME

    def create(self, volume_id: str, size_mb: int) -> Path:
        """Make the volume's empty filesystem; atomically (a crash leaves no half-made volume)."""
        if size_mb < MIN_SIZE_MB:
            raise VolumeStorageError(f"volume size {size_mb} MB is too small (minimum {MIN_SIZE_MB} MB)")
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.dir(volume_id)
        staging = self.root / f".{volume_id}.new"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        try:
            image = staging / IMAGE_NAME
            with open(image, "wb") as f:
                f.truncate(size_mb * 1024 * 1024)
            os.chmod(image, 0o600)
            subprocess.run(
                ["mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-L", "corral-volume",
                 "-E", f"lazy_itable_init=0,discard,root_owner={ROOT_OWNER}:{ROOT_OWNER}", str(image)],
                check=True, capture_output=True, env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"},
            )
            (staging / LOCK_NAME).touch(mode=0o600)
            os.rename(staging, final)
        except subprocess.CalledProcessError as exc:
            raise VolumeStorageError(f"mkfs.ext4 failed: {exc.stderr.decode(errors='replace').strip()}") from None
        except FileNotFoundError:
            raise VolumeStorageError("mkfs.ext4 not found (apt-get install e2fsprogs)") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final / IMAGE_NAME

    def exists(self, volume_id: str) -> bool:
        return self.image(volume_id).is_file()

    def allocated_bytes(self, volume_id: str) -> int:
        try:
            return self.image(volume_id).stat().st_blocks * 512
        except FileNotFoundError:
            return 0

    def remove(self, volume_id: str) -> None:
        """Delete the volume's files (the caller made sure nothing mounts it)."""
        d = self.dir(volume_id)
        doomed = self.root / f".{volume_id}.deleted"
        try:
            os.rename(d, doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)
