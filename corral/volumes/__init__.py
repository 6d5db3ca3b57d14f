"""Volumes: named persistent directories with a size quota, shared by sandboxes (E2B's `/volumes`).

`names` checks what a client may ask for (names, mount paths), `storage` keeps each volume's
ext4 image under one directory. The lifecycle joins them with the store's rows
(lifecycle/volumes.py), and the runtime mounts an image into a sandbox (runtime/namespace/volumes.py).
"""

from corral.volumes.names import MAX_MOUNTS, check_mount_path, check_mounts, check_name, check_volume_id, new_volume_id
from corral.volumes.storage import IMAGE_NAME, LOCK_NAME, MIN_SIZE_MB, VolumeStorage, VolumeStorageError

__all__ = ["IMAGE_NAME", "LOCK_NAME", "MAX_MOUNTS", "MIN_SIZE_MB", "VolumeStorage", "VolumeStorageError",
           "check_mount_path", "check_mounts", "check_name", "check_volume_id", "new_volume_id"]
