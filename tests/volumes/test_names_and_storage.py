"""corral.volumes on its own: the names and mount paths a client may ask for, and the images."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from corral.errors import InvalidRequest
from corral.volumes import VolumeStorage, VolumeStorageError, check_mount_path, check_mounts, check_name, check_volume_id


def test_a_name_is_a_label_never_a_path() -> None:
    for ok in ("data", "my-vol_2", "A" * 64, "0"):
        assert check_name(ok) == ok
    for bad in ("", ".", "..", "../etc", "a/b", "/abs", "a\\b", "-x", "_x", "a b", "é", "x" * 65, None, 3):
        with pytest.raises(InvalidRequest):
            check_name(bad)


def test_ids_are_uuids_the_server_made() -> None:
    vid = str(uuid.uuid4())
    assert check_volume_id(vid) == vid
    for bad in ("..", vid.upper(), vid + "/..", "../" + vid, "", "x" * 36):
        with pytest.raises(InvalidRequest):
            check_volume_id(bad)


def test_mount_paths_stay_off_the_system_and_normalised() -> None:
    for ok in ("/data", "/home/user/data", "/mnt/a/b", "/tmp/work", "/opt/x", "/var/data", "/workspace"):
        assert check_mount_path(ok) == ok
    for bad in ("/", "/etc", "/etc/x", "/proc", "/proc/self", "/sys/fs", "/dev", "/dev/shm", "/usr", "/usr/local/x",
                "/bin", "/sbin/x", "/lib", "/lib64/x", "/boot", "/run", "/run/user", "/var/run/x", "/var/lib/dpkg",
                "/.corral", "/tmp", "/home", "/var", "data", "./data", "/a/../etc", "/a/./b", "//a", "/a/", "/a\x00b",
                "/a\nb", "/" + "x" * 256, "/" + "a/" * 600):
        with pytest.raises(InvalidRequest):
            check_mount_path(bad)
    with pytest.raises(InvalidRequest):
        check_mounts([("v", "/data"), ("w", "/data/sub")])
    with pytest.raises(InvalidRequest):
        check_mounts([("v", "/data"), ("v", "/data")])
    assert check_mounts([("v", "/data"), ("v", "/data2")]) == [("v", "/data"), ("v", "/data2")]


def test_an_image_is_a_sparse_ext4_of_the_size_owned_by_user_and_removed_whole(tmp_path: Path) -> None:
    storage = VolumeStorage(tmp_path / "volumes")
    vid = str(uuid.uuid4())
    image = storage.create(vid, 32)
    assert image == tmp_path / "volumes" / vid / "volume.img"
    assert image.stat().st_size == 32 << 20 and storage.allocated_bytes(vid) < 16 << 20   # sparse
    assert os.stat(image.parent).st_mode & 0o077 == 0 and image.stat().st_mode & 0o077 == 0
    dump = subprocess.run(["debugfs", "-R", "stat /", str(image)], capture_output=True, text=True).stdout
    assert "User:  1000" in dump and "Group:  1000" in dump
    assert not list((tmp_path / "volumes").glob(".*"))            # no staging left
    with pytest.raises(VolumeStorageError):
        storage.create(str(uuid.uuid4()), 8)
    storage.remove(vid)
    assert not image.parent.exists() and not list((tmp_path / "volumes").iterdir())
    storage.remove(vid)                                           # twice is fine
