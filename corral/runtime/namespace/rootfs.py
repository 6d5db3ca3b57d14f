"""Build the sandbox's root filesystem inside its (private) mount namespace.

Run as host root in the new mount namespace, before the process enters the sandbox's user
namespace. Two phases:

* :func:`assemble` works with host paths: writable ext4 layer, idmapped template, overlay.
* :func:`populate` runs *after* pivot_root, so every path — including symlinks planted by a
  hostile template — resolves inside the sandbox and can never reach a host file. /etc files
  are written before /proc is mounted, so a symlink cannot point a write at a sysctl either.
"""

from __future__ import annotations

import os
import shutil
import stat

from corral.runtime.namespace import disk, policy, userns
from corral.runtime.namespace import syscalls as sc
from corral.runtime.namespace.request import LAYER_DIR, LOWER_DIR, MIN_UID_BASE, ROOT_DIR, UIDS_PER_SANDBOX


def _mkdir(path: str, mode: int = 0o755) -> None:
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass


def assemble(workdir: str, rootfs: str, uid_base: int, userns_fd: int) -> str:
    """Mount layer, idmapped lower and overlay; return the overlay mount point."""
    layer, lower, root = (os.path.join(workdir, d) for d in (LAYER_DIR, LOWER_DIR, ROOT_DIR))
    for d in (layer, lower, root):
        _mkdir(d, 0o700)
    lfd, dev = disk.attach_loop(os.path.join(workdir, disk.IMAGE_NAME))
    try:
        sc.mount(dev, layer, "ext4", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOATIME, "")
    finally:
        os.close(lfd)  # from here on the mount alone holds the device (AUTOCLEAR)
    upper, work = os.path.join(layer, "upper"), os.path.join(layer, "work")
    if os.path.isdir(upper):
        _shift_owners(upper, os.lstat(upper).st_uid, uid_base)
    _mkdir(upper, 0o755)
    _mkdir(work, 0o700)
    _clear_volatile_marker(work)
    os.chown(upper, uid_base, uid_base)  # the merged "/" belongs to the sandbox's root
    userns.idmapped_bind(rootfs, lower, userns_fd)
    # Relative option paths: the sandbox can read its mountinfo, and host paths are none of
    # its business.
    os.chdir(workdir)
    sc.mount("overlay", root, "overlay", 0,
             f"lowerdir={LOWER_DIR},upperdir={LAYER_DIR}/upper,workdir={LAYER_DIR}/work,volatile")
    return root


def _shift_owners(upper: str, old_base: int, new_base: int) -> None:
    """A layer copied from another sandbox (a snapshot's, a fork's) stores that sandbox's host
    uids; move every owner in its range onto ours. The upper directory's owner is its range's
    base (assemble sets it), so an unmoved layer costs one stat. Nothing runs in the sandbox yet,
    and the walk never follows a link, so a hostile tree cannot point it elsewhere."""
    if old_base == new_base or old_base < MIN_UID_BASE:
        return

    def moved(v: int) -> int:
        return v - old_base + new_base if old_base <= v < old_base + UIDS_PER_SANDBOX else v

    for top, dirs, files in os.walk(upper, followlinks=False):
        for name in (*dirs, *files):
            path = os.path.join(top, name)
            st = os.lstat(path)
            os.lchown(path, moved(st.st_uid), moved(st.st_gid))
            if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                os.chmod(path, stat.S_IMODE(st.st_mode))   # chown drops set-id bits; keep them
        st = os.lstat(top)
        os.lchown(top, moved(st.st_uid), moved(st.st_gid))


def _clear_volatile_marker(work: str) -> None:
    """A `volatile` overlay leaves work/work/incompat/volatile behind and refuses to mount over
    it again (EINVAL), because it cannot know whether its unsynced writes reached the upper
    layer. Ours did: a layer is only ever booted again after the sandbox's mount namespace died
    and the kernel unmounted (and so flushed) the ext4 under it. The overlay's work directory is
    never visible inside the sandbox, so nothing here was written by it."""
    marker = os.path.join(work, "work", "incompat", "volatile")
    if os.path.lexists(marker):
        shutil.rmtree(marker)


def pivot(new_root: str) -> None:
    os.chdir(new_root)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)  # drop the host's tree from this namespace entirely
    os.chdir("/")


def _real_dir(path: str, mode: int = 0o755, owner: int | None = None) -> None:
    """Make ``path`` a plain directory, replacing a symlink or file the template put there."""
    try:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            return
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mkdir(path, mode)
    if owner is not None:
        os.chown(path, owner, owner)


def _write_file(path: str, text: str, uid_base: int) -> None:
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
        os.fchown(fd, uid_base, uid_base)
    finally:
        os.close(fd)


def populate(sandbox_id: str, uid_base: int, memory_mb: int) -> None:
    """Give the pivoted root its /etc identity files, /dev, /proc and masks."""
    _real_dir("/etc", 0o755, uid_base)
    _write_file("/etc/hostname", sandbox_id + "\n", uid_base)
    _write_file("/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                f"127.0.1.1\t{sandbox_id}\n", uid_base)
    _write_file("/etc/resolv.conf", "", uid_base)
    _real_dir("/tmp", 0o1777, uid_base)

    _real_dir("/dev", 0o755, uid_base)
    owner = f"uid={uid_base},gid={uid_base}"
    sc.mount("tmpfs", "/dev", "tmpfs", sc.MS_NOSUID | sc.MS_NOEXEC, f"mode=755,size=64k,{owner}")
    for name, (major, minor) in policy.DEVICES.items():
        path = "/dev/" + name
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.chmod(path, 0o666)  # mknod honours the umask
        os.chown(path, uid_base, uid_base)
    for name, target in policy.DEV_SYMLINKS.items():
        os.symlink(target, "/dev/" + name)
        os.lchown("/dev/" + name, uid_base, uid_base)
    os.mkdir("/dev/pts", 0o755)
    sc.mount("devpts", "/dev/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             f"newinstance,ptmxmode=0666,mode=0620,gid={uid_base + policy.TTY_GID}")
    os.mkdir("/dev/shm", 0o1777)
    sc.mount("shm", "/dev/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV,
             f"mode=1777,size={max(memory_mb // 2, 16)}m,{owner}")

    _real_dir("/proc", 0o555)
    sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    for path in policy.MASKED_PATHS:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                     "size=0")
        else:
            sc.mount("/dev/null", path, None, sc.MS_BIND)
    for path in policy.READONLY_PATHS:
        if not os.path.exists(path):
            continue
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NOSUID
                 | sc.MS_NODEV | sc.MS_NOEXEC)
