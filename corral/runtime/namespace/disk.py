"""The sandbox's writable layer: a size-capped ext4 image on an auto-clearing loop device.

Each sandbox gets its own filesystem, so a full disk is ENOSPC inside that sandbox and nowhere
else. The image is a sparse copy of a pre-formatted "golden" image of the same size (making a
filesystem per sandbox would cost a mkfs each time), so creating one writes about 1 MB.
The loop device is configured with LO_FLAGS_AUTOCLEAR and the filesystem is mounted only
inside the sandbox's private mount namespace: when the sandbox's last process exits the
kernel unmounts it and detaches the device, so a crash of the server leaves nothing attached.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import subprocess
import time
from pathlib import Path

LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A
LO_FLAGS_AUTOCLEAR = 4
LO_FLAGS_DIRECT_IO = 16
LO_NAME_SIZE = 64

IMAGE_NAME = "disk.img"


class DiskError(RuntimeError):
    pass


class _LoopInfo64(ctypes.Structure):
    _fields_ = [
        ("lo_device", ctypes.c_uint64), ("lo_inode", ctypes.c_uint64),
        ("lo_rdevice", ctypes.c_uint64), ("lo_offset", ctypes.c_uint64),
        ("lo_sizelimit", ctypes.c_uint64), ("lo_number", ctypes.c_uint32),
        ("lo_encrypt_type", ctypes.c_uint32), ("lo_encrypt_key_size", ctypes.c_uint32),
        ("lo_flags", ctypes.c_uint32), ("lo_file_name", ctypes.c_uint8 * LO_NAME_SIZE),
        ("lo_crypt_name", ctypes.c_uint8 * LO_NAME_SIZE),
        ("lo_encrypt_key", ctypes.c_uint8 * 32), ("lo_init", ctypes.c_uint64 * 2),
    ]


class _LoopConfig(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_uint32), ("block_size", ctypes.c_uint32),
                ("info", _LoopInfo64), ("reserved", ctypes.c_uint64 * 8)]


def golden_image(cache_dir: Path, size_mb: int) -> Path:
    """Path of a formatted, empty ext4 image of ``size_mb``; made once, atomically."""
    if size_mb < 16:
        raise DiskError(f"disk size {size_mb} MB is too small (minimum 16 MB)")
    path = cache_dir / f"ext4-{size_mb}m.img"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        # No journal: the layer dies with the sandbox. Discard punches holes, which also lets
        # mkfs skip zeroing inode tables, so the image stays ~1 MB and the kernel never runs
        # lazy init on it later.
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-O", "^has_journal",
             "-E", "lazy_itable_init=0,discard", "-L", "corral", str(tmp)],
            check=True, capture_output=True, env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"},
        )
        os.replace(tmp, path)
    except subprocess.CalledProcessError as exc:
        raise DiskError(f"mkfs.ext4 failed: {exc.stderr.decode(errors='replace').strip()}") from exc
    except FileNotFoundError as exc:
        raise DiskError("mkfs.ext4 not found (apt-get install e2fsprogs)") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def sparse_copy(src: Path, dst: Path) -> None:
    """Copy only the allocated extents of ``src`` (SEEK_DATA/SEEK_HOLE)."""
    sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(sfd).st_size
            os.ftruncate(dfd, size)
            pos = 0
            while pos < size:
                try:
                    data = os.lseek(sfd, pos, os.SEEK_DATA)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:  # only a hole remains
                        break
                    raise
                hole = os.lseek(sfd, data, os.SEEK_HOLE)
                off = data
                while off < hole:
                    n = os.copy_file_range(sfd, dfd, hole - off, off, off)
                    if n <= 0:
                        raise DiskError("short copy of the golden image")
                    off += n
                pos = hole
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def attach_loop(image: Path, read_only: bool = False) -> tuple[int, str]:
    """Attach ``image`` to a free loop device with AUTOCLEAR; return (open fd, device path).

    The fd must stay open until the filesystem is mounted (else AUTOCLEAR fires at once).
    LOOP_CTL_GET_FREE and LOOP_CONFIGURE race with other attachers: EBUSY means someone took
    the device between the two calls, so ask for another one.
    """
    backing = os.open(image, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
    try:
        ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for _attempt in range(64):
                num = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
                dev = f"/dev/loop{num}"
                try:
                    lfd = os.open(dev, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
                except FileNotFoundError:
                    time.sleep(0.001)  # udev-less hosts: the node appears shortly
                    continue
                cfg = _LoopConfig()
                cfg.fd = backing
                cfg.block_size = 4096
                cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO | (1 if read_only else 0)
                name = os.fsencode(image)[-(LO_NAME_SIZE - 1):]
                ctypes.memmove(cfg.info.lo_file_name, name, len(name))
                try:
                    fcntl.ioctl(lfd, LOOP_CONFIGURE, cfg)
                except OSError as exc:
                    os.close(lfd)
                    if exc.errno == errno.EBUSY:
                        continue
                    if exc.errno == errno.EINVAL and cfg.info.lo_flags & LO_FLAGS_DIRECT_IO:
                        raise DiskError(f"LOOP_CONFIGURE rejected: {exc}") from exc
                    raise
                return lfd, dev
            raise DiskError("no free loop device after 64 attempts")
        finally:
            os.close(ctl)
    finally:
        os.close(backing)


def loop_devices_backed_by(image: Path) -> list[str]:
    """Loop devices whose backing file is ``image`` (for leak checks and cleanup)."""
    target = os.fsencode(os.path.abspath(image))
    found = []
    for entry in Path("/sys/block").glob("loop*"):
        try:
            backing = (entry / "loop" / "backing_file").read_bytes().strip()
        except OSError:
            continue
        if backing == target or backing == target + b" (deleted)":
            found.append("/dev/" + entry.name)
    return found
