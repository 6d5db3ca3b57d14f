"""The build context: the only host files a template build may read.

COPY and ADD name files relative to the template directory. Every source is checked before it
is read: absolute paths and `..` that leave the directory are refused, and so is a source named
through a symlink whose target lies outside it (naming it means reading what it points to).
Symlinks met inside a copied directory are copied as symlinks, whatever they point to, as E2B
copies them: they are never followed on the host, so inside the template an absolute link points
into the template's own filesystem. `.dockerignore` is honoured.

The same walk yields the content hash that keys a COPY layer, so a changed file invalidates the
layer and a touched-but-equal file does not.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path

from corral.errors import InvalidRequest

IGNORE_FILE = ".dockerignore"
_GLOB_CHARS = set("*?[")


class BuildContextError(InvalidRequest):
    """A COPY/ADD source that is missing or would leave the build context."""


@dataclass(frozen=True)
class Source:
    rel: str          # path relative to the context, "/"-separated ("." for the context itself)
    path: Path        # host path (inside the context)
    is_dir: bool


class BuildContext:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._ignore = self._read_ignore()

    def _read_ignore(self) -> list[tuple[bool, str]]:
        rules: list[tuple[bool, str]] = []
        try:
            text = (self.root / IGNORE_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            return rules
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
            rules.append((negate, pattern))
        return rules

    def ignored(self, rel: str) -> bool:
        """Docker's rule order: the last matching pattern wins; a match on a parent counts."""
        verdict = False
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for negate, pattern in self._ignore:
            if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
                verdict = not negate
        return verdict

    def _inside(self, path: str) -> bool:
        return path == str(self.root) or path.startswith(str(self.root) + os.sep)

    def _check_link(self, path: Path, rel: str) -> None:
        target = os.path.realpath(path)
        if not self._inside(target):
            raise BuildContextError(f"{rel!r} is a symlink to {os.readlink(path)!r}, outside the build context")

    def resolve(self, pattern: str) -> list[Source]:
        """The sources one COPY argument names (a path or a glob), checked and sorted."""
        if not pattern or "\x00" in pattern:
            raise BuildContextError("empty COPY source")
        if pattern.startswith("/"):
            raise BuildContextError(f"COPY source {pattern!r} is absolute; sources are relative to the build context")
        norm = posixpath.normpath(pattern)
        if norm == ".." or norm.startswith("../"):
            raise BuildContextError(f"COPY source {pattern!r} is outside the build context")
        if _GLOB_CHARS & set(norm):
            depth = norm.count("/")          # like Docker, a "*" never matches across a "/"
            matches = [rel for rel in self._all_paths()
                       if rel.count("/") == depth and fnmatch.fnmatchcase(rel, norm)]
            if not matches:
                raise BuildContextError(f"COPY source {pattern!r} matches no file in the build context")
            return [self._source(rel) for rel in sorted(matches)]
        return [self._source(norm)]

    def _source(self, rel: str) -> Source:
        path = self.root if rel == "." else self.root / rel
        # Walk component by component so that a symlinked *directory* on the way is caught too.
        current = self.root
        for part in ([] if rel == "." else rel.split("/")):
            current = current / part
            if current.is_symlink():
                self._check_link(current, rel)
        if not os.path.lexists(path):
            raise BuildContextError(f"COPY source {rel!r} does not exist in the build context")
        if rel != "." and self.ignored(rel):
            raise BuildContextError(f"COPY source {rel!r} is excluded by .dockerignore")
        real = Path(os.path.realpath(path))
        if not self._inside(str(real)):
            raise BuildContextError(f"COPY source {rel!r} is outside the build context")
        return Source(rel, real, real.is_dir())

    def _all_paths(self) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            base = os.path.relpath(dirpath, self.root)
            for name in dirnames + filenames:
                out.append(name if base == "." else f"{base}/{name}")
        return out

    def walk(self, source: Source) -> list[tuple[str, Path, os.stat_result]]:
        """(path relative to the source, host path, lstat) of everything a source copies."""
        if not source.is_dir:
            return [("", source.path, os.lstat(source.path))]
        out = []
        for dirpath, dirnames, filenames in os.walk(source.path):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                host = Path(dirpath) / name
                rel_ctx = os.path.relpath(host, self.root).replace(os.sep, "/")
                if self.ignored(rel_ctx):
                    if name in dirnames:
                        dirnames.remove(name)
                    continue
                st = os.lstat(host)
                if not (stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                    raise BuildContextError(f"{rel_ctx!r} is not a regular file, directory or symlink")
                out.append((os.path.relpath(host, source.path).replace(os.sep, "/"), host, st))
        return out

    def digest(self, sources: list[Source]) -> str:
        """sha256 of names, types, modes and contents: what a COPY layer's cache key needs."""
        h = hashlib.sha256()
        for source in sources:
            h.update(f"source {source.rel}\n".encode())
            for rel, host, st in self.walk(source):
                h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
                if stat.S_ISLNK(st.st_mode):
                    h.update(os.readlink(host).encode())
                elif stat.S_ISREG(st.st_mode):
                    with open(host, "rb") as f:
                        for block in iter(lambda: f.read(1 << 20), b""):
                            h.update(block)
                h.update(b"\n")
        return h.hexdigest()
