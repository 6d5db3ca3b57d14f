"""Mounting volumes into a sandbox's private mount namespace, shared with every other sandbox.

Two sandboxes may mount one volume at once, and an ext4 filesystem must only ever have one
superblock, so every mount of a volume's image goes through the *same* loop device: under the
volume's lock file, the sandbox's init looks for a loop device already backed by the image
(holding it open, it checks the device's backing inode, so a device that was released and given
to another file meanwhile is never taken) and mounts that; only when none exists it attaches a
new one (LO_FLAGS_AUTOCLEAR). The kernel then hands every mount the one superblock. Nothing is
mounted on the host: when the last sandbox that mounts a volume ends, its mount namespace goes,
the superblock is flushed and the loop device detaches itself.

Two phases, like the root filesystem (rootfs.py):

* :func:`prepare`, before the pivot (host paths): mount the filesystem at a staging directory
  in the workdir and clone it as a detached mount idmapped through the sandbox's user namespace
  (on-disk uid N is uid N inside, as with the template), read-write, nosuid, nodev.
* :func:`attach`, after the pivot, when every path resolves inside the sandbox: walk to the
  target one component at a time with O_NOFOLLOW from the sandbox's "/", creating what is
  missing as the sandbox's root, and move the detached mount onto the directory *fd*. A symlink
  or a file anywhere on the way (a template's or a snapshot's `/data -> /etc`) is refused, so a
  volume can only ever cover a directory inside the sandbox.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from corral.runtime.namespace import disk
from corral.runtime.namespace import syscalls as sc

LOOP_GET_STATUS64 = 0x4C05
STAGING_PREFIX = "volume-"


class VolumeMountError(RuntimeError):
    pass


def _same_backing(lfd: int, image_stat: os.stat_result) -> bool:
    info = disk._LoopInfo64()
    try:
        fcntl.ioctl(lfd, LOOP_GET_STATUS64, info)
    except OSError:   # ENXIO: not attached (any more)
        return False
    return info.lo_inode == image_stat.st_ino and info.lo_device == image_stat.st_dev


def _shared_loop(image: str) -> tuple[int, str] | None:
    """An open fd on the loop device already backed by ``image`` (and its path), or None."""
    st = os.stat(image)
    for entry in sorted(Path("/sys/block").glob("loop*")):
        if not (entry / "loop").is_dir():
            continue
        dev = "/dev/" + entry.name
        try:
            lfd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        if _same_backing(lfd, st):
            return lfd, dev
        os.close(lfd)
    return None


def mount_shared(image: str, staging: str) -> None:
    """Mount a volume's image at ``staging`` through the one loop device all its mounts share."""
    lock = os.open(os.path.join(os.path.dirname(image), "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _shared_loop(image)
        lfd, dev = found if found is not None else disk.attach_loop(Path(image))
        try:
            sc.mount(dev, staging, "ext4", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOATIME, "")
        finally:
            os.close(lfd)   # from here on the mounts hold the device (AUTOCLEAR)
    finally:
        os.close(lock)


def prepare(volumes: list[list[str]], workdir: str, userns_fd: int) -> list[tuple[int, str]]:
    """Mount each volume and return (detached idmapped mount fd, target) pairs for `attach`."""
    out: list[tuple[int, str]] = []
    try:
        for i, (image, target) in enumerate(volumes):
            staging = os.path.join(workdir, f"{STAGING_PREFIX}{i}")
            try:
                os.mkdir(staging, 0o700)
            except FileExistsError:
                pass
            mount_shared(image, staging)
            try:
                fd = sc.open_tree(staging, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
                sc.mount_setattr(fd, sc.MOUNT_ATTR_IDMAP | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV,
                                 userns_fd, recursive=False)
            finally:
                sc.umount2(staging, sc.MNT_DETACH)   # the clone keeps the filesystem
            out.append((fd, target))
    except BaseException:
        for fd, _ in out:
            os.close(fd)
        raise
    return out


def _walk(target: str, uid_base: int) -> int:
    """An O_PATH fd of ``target``'s directory, walked from "/" without following any symlink."""
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in target.split("/")[1:]:
            if part in ("", ".", ".."):
                raise VolumeMountError(f"volume mount path {target!r} is not normalised")
            for _attempt in range(2):
                try:
                    nxt = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                    break
                except FileNotFoundError:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                        os.chown(part, uid_base, uid_base, dir_fd=fd, follow_symlinks=False)
                    except FileExistsError:
                        pass
                except OSError as exc:
                    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                        raise VolumeMountError(f"volume mount path {target!r} crosses a symlink or a file "
                                               f"at {part!r}") from None
                    raise
            else:
                raise VolumeMountError(f"cannot create the volume mount path {target!r}")
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def attach(prepared: list[tuple[int, str]], uid_base: int) -> None:
    """Move each prepared mount onto its target (after the pivot). Closes every fd."""
    try:
        for fd, target in prepared:
            dirfd = _walk(target, uid_base)
            try:
                sc.move_mount_fd(fd, dirfd)
            finally:
                os.close(dirfd)
    finally:
        for fd, _ in prepared:
            try:
                os.close(fd)
            except OSError:
                pass
