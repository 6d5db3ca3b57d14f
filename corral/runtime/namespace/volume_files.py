"""One operation on a volume's files, run by the server as a short-lived root helper process.

``python -I -m corral.runtime.namespace.volume_files '<json op>'``: the helper unshares its mount
namespace, mounts the volume's image there through the loop device every sandbox that mounts it
shares (volumes.py), chroots into it and only then touches a path. So a path from the client, and
every symlink or `..` a sandbox planted in the volume, resolves inside the volume and nowhere
else; nothing is mounted in the host's namespace and the mount ends with the helper. Files that
are not regular (a FIFO, a socket) are never opened for reading, so a planted FIFO cannot hang it.

Reply on stdout: one JSON line (`{"ok": true, ...}` or `{"ok": false, "status": 404, "message": ...}`);
a `read` then streams the file's bytes after it; a `write` takes the bytes from stdin.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from datetime import datetime, timezone
from typing import Any

from corral.runtime.namespace import syscalls as sc
from corral.runtime.namespace.volumes import mount_shared

DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755
CHUNK = 1 << 16


class OpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "unknown"


def entry(path: str) -> dict[str, Any]:
    st = os.lstat(path)
    out: dict[str, Any] = {"name": os.path.basename(path) or "/", "type": _kind(st.st_mode), "path": path,
                           "size": st.st_size, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
                           "atime": _ts(st.st_atime), "mtime": _ts(st.st_mtime), "ctime": _ts(st.st_ctime)}
    if stat.S_ISLNK(st.st_mode):
        out["target"] = os.readlink(path)
    return out


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def _own(path: str, op: dict[str, Any], mode: int) -> None:
    os.chmod(path, mode)
    uid, gid = op.get("uid"), op.get("gid")
    if uid is not None or gid is not None:
        os.lchown(path, -1 if uid is None else uid, -1 if gid is None else gid)


def _mkdir(path: str, op: dict[str, Any]) -> dict[str, Any]:
    st = _lstat(path)
    force = bool(op.get("force"))
    if st is not None:
        if not force or not stat.S_ISDIR(st.st_mode):
            raise OpError(409, f"Path {path} already exists")
        return entry(path)
    parent = os.path.dirname(path)
    pst = _lstat(parent)
    if pst is None:
        if not force:
            raise OpError(404, f"Path {parent} not found")
        _mkdir(parent, op)
    elif not stat.S_ISDIR(pst.st_mode):
        raise OpError(409, f"Path {parent} is not a directory")
    os.mkdir(path, 0o700)
    _own(path, op, DEFAULT_DIR_MODE if op.get("mode") is None else op["mode"])
    return entry(path)


def _list(path: str, depth: int) -> list[dict[str, Any]]:
    st = _lstat(path)
    if st is None or not stat.S_ISDIR(st.st_mode):
        raise OpError(404, f"Path {path} not found")
    out = []
    for name in sorted(os.listdir(path)):
        child = os.path.join(path, name)
        out.append(entry(child))
        if depth > 1 and stat.S_ISDIR(os.lstat(child).st_mode):
            out.extend(_list(child, depth - 1))
    return out


def _remove(path: str) -> None:
    st = _lstat(path)
    if path == "/" or st is None:
        raise OpError(404, f"Path {path} not found")
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)      # never follows a symlink
    else:
        os.unlink(path)


def _open_regular(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise OpError(404, f"Path {path} not found") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OpError(404, f"Path {path} not found")
    return fd


def _write(path: str, op: dict[str, Any]) -> dict[str, Any]:
    st = _lstat(path)
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise OpError(409, f"Path {path} is not a file")
        if not op.get("force"):
            raise OpError(409, f"Path {path} already exists")
    pst = _lstat(os.path.dirname(path))
    if pst is None or not stat.S_ISDIR(pst.st_mode):
        raise OpError(404, f"Path {path} not found")
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.corral-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f, CHUNK)
        _own(tmp, op, DEFAULT_FILE_MODE if op.get("mode") is None else op["mode"])
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return entry(path)


def run(op: dict[str, Any], out: Any) -> None:
    path = op["path"]
    kind = op["op"]
    if kind == "stat":
        if _lstat(path) is None:
            raise OpError(404, f"Path {path} not found")
        result: Any = entry(path)
    elif kind == "list":
        result = _list(path, max(1, int(op.get("depth") or 1)))
    elif kind == "mkdir":
        result = _mkdir(path, op)
    elif kind == "chmeta":
        if _lstat(path) is None:
            raise OpError(404, f"Path {path} not found")
        st = os.lstat(path)
        _own(path, op, stat.S_IMODE(st.st_mode) if op.get("mode") is None else op["mode"])
        result = entry(path)
    elif kind == "remove":
        _remove(path)
        result = None
    elif kind == "write":
        result = _write(path, op)
    elif kind == "read":
        fd = _open_regular(path)
        out.write(json.dumps({"ok": True, "size": os.fstat(fd).st_size}).encode() + b"\n")
        with os.fdopen(fd, "rb") as f:
            shutil.copyfileobj(f, out, CHUNK)
        return
    else:
        raise OpError(400, f"unknown operation {kind!r}")
    out.write(json.dumps({"ok": True, "result": result}).encode() + b"\n")


def main(argv: list[str]) -> int:
    op = json.loads(argv[0])
    out = sys.stdout.buffer
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    # Mounted over the volume's own directory, in this process's mount namespace only (the image
    # and its lock are opened before the mount hides them): nothing appears on the host.
    mnt = os.path.dirname(op["image"])
    mount_shared(op["image"], mnt)
    os.chroot(mnt)
    os.chdir("/")
    os.umask(0o022)
    try:
        run(op, out)
    except OpError as exc:
        out.write(json.dumps({"ok": False, "status": exc.status, "message": str(exc)}).encode() + b"\n")
    except OSError as exc:
        status = 404 if isinstance(exc, (FileNotFoundError, NotADirectoryError)) else 400
        out.write(json.dumps({"ok": False, "status": status, "message": exc.strerror or str(exc)}).encode() + b"\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
