"""What a volume may be called and where it may be mounted: checked before anything is made.

A volume's name is a label, never a path: it is looked up in the store and the volume's files
live under its id (a UUID the server makes), so `../etc` or `a/b` is refused here and could not
reach a path anyway. A mount path is an absolute, normalised path inside the sandbox that does
not cover the system's directories: mounting over `/etc`, `/proc` or `/usr` would let a volume
(written by another sandbox) replace what every program in this one trusts. What is on the way
to the path inside the sandbox (a symlink planted by a template or a snapshot) is the runtime's
to refuse, because only it sees the sandbox's root (runtime/namespace/volumes.py).
"""

from __future__ import annotations

import posixpath
import re
import uuid

from corral.errors import InvalidRequest

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_PATH = 1024
MAX_MOUNTS = 16

# Directories a volume may be mounted neither on nor under.
SYSTEM_TREES = ("/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                "/libx32", "/boot", "/run", "/var/run", "/var/lib", "/.corral")
# Directories a volume may be mounted under but not on (it would hide what the sandbox needs).
SYSTEM_DIRS = ("/", "/tmp", "/var", "/home", "/root", "/opt", "/srv", "/mnt", "/media")


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidRequest("invalid volume name: 1-64 letters, digits, '-' or '_', starting with a letter or digit")
    return name


def check_volume_id(volume_id: str) -> str:
    """Volume ids are UUIDs the server made; anything else names no volume (and no path)."""
    try:
        if str(uuid.UUID(volume_id)) == volume_id:
            return volume_id
    except (ValueError, AttributeError, TypeError):
        pass
    raise InvalidRequest(f"invalid volume id {volume_id!r}")


def new_volume_id() -> str:
    return str(uuid.uuid4())


def check_mount_path(path: object) -> str:
    if not isinstance(path, str) or not path:
        raise InvalidRequest("volume mount path must be a non-empty string")
    if len(path) > MAX_PATH or "\x00" in path or any(ord(c) < 32 for c in path):
        raise InvalidRequest("volume mount path is too long or has control characters")
    if not path.startswith("/"):
        raise InvalidRequest(f"volume mount path {path!r} must be absolute")
    parts = path.split("/")[1:]
    if any(p in ("", ".", "..") for p in parts) or posixpath.normpath(path) != path:
        raise InvalidRequest(f"volume mount path {path!r} must be normalised (no '.', '..' or '//')")
    if any(len(p.encode()) > 255 for p in parts):
        raise InvalidRequest(f"volume mount path {path!r} has a component longer than 255 bytes")
    for tree in SYSTEM_TREES:
        if path == tree or path.startswith(tree + "/"):
            raise InvalidRequest(f"a volume cannot be mounted at {path!r}: {tree} belongs to the system")
    if path in SYSTEM_DIRS:
        raise InvalidRequest(f"a volume cannot be mounted on {path!r} itself; mount it at a directory inside")
    return path


def check_mounts(mounts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(name, path) pairs of one create: valid names and paths, no path twice, none inside another."""
    if len(mounts) > MAX_MOUNTS:
        raise InvalidRequest(f"at most {MAX_MOUNTS} volume mounts per sandbox")
    out = [(check_name(n), check_mount_path(p)) for n, p in mounts]
    paths = sorted(p for _, p in out)
    for a, b in zip(paths, paths[1:]):
        if a == b or b.startswith(a + "/"):
            raise InvalidRequest(f"volume mount paths {a!r} and {b!r} overlap")
    return out
