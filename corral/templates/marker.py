"""A build id inside every published rootfs (`/etc/corral-template`), to find its users later.

The namespace tier's overlay hides which template a sandbox started from (the lower mount is
detached once the overlay holds it), but the sandbox's own root still shows the marker. The
host reads it through /proc/<pid>/root, a tree the sandbox controls, so every step refuses
symlinks and anything that is not a small regular file: a hostile sandbox can at most hide or
fake its marker, which only decides how long a retired template stays on disk.
"""

from __future__ import annotations

import os
import stat

MARKER_DIR = "etc"
MARKER_FILE = "corral-template"
_MAX = 256


def _open_dir(root: str) -> int:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return os.open(MARKER_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)


def read_marker(root: str | os.PathLike[str]) -> str | None:
    """The marker text under `root`, or None if absent or not trustworthy as a plain file."""
    try:
        etc = _open_dir(os.fspath(root))
    except OSError:
        return None
    try:
        fd = os.open(MARKER_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=etc)
    except OSError:
        return None
    finally:
        os.close(etc)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, _MAX + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > _MAX:
        return None
    return data.decode("ascii", "replace").strip() or None


def write_marker(rootfs: str | os.PathLike[str], text: str) -> bool:
    """Write the marker into a staged rootfs; False if its /etc is not a plain directory."""
    try:
        etc = _open_dir(os.fspath(rootfs))
    except FileNotFoundError:
        os.mkdir(os.path.join(rootfs, MARKER_DIR), 0o755)
        etc = _open_dir(os.fspath(rootfs))
    except OSError:
        return False
    try:
        try:
            os.unlink(MARKER_FILE, dir_fd=etc)
        except FileNotFoundError:
            pass
        fd = os.open(MARKER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644, dir_fd=etc)
        try:
            os.write(fd, (text + "\n").encode("ascii"))
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
    finally:
        os.close(etc)
    return True
