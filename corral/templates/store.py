"""The on-disk store of built templates, shared by every server data dir on the host.

Layout: `<root>/<name>/rootfs/` and `<root>/<name>/template.json`. Everything else in the root
starts with a dot and can therefore never be named by a template name: `.build-*` directories
hold builds in progress, `.trash/` holds retired templates until no sandbox mounts them, and the
root directory itself is the lock (flock) that orders commits and removals between processes.

A template is published by building it completely in a `.build-*` directory next to its final
place and swapping it in with one rename, so readers see either the old template or the new one,
never a half-built tree. A built rootfs is never modified in place; a rebuild or removal moves
the old directory to the trash, where it stays while running sandboxes still mount it.

With a depot (CORRAL_TEMPLATE_DEPOT, depot.py) every template published here is also pushed
there, so the other machines of a cluster can fetch it; a fetched one is not pushed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import secrets
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from corral.errors import CorralError, NotFound
from corral.templates.depot import TemplateDepot
from corral.templates.info import INFO_FILE, ROOTFS_DIR, TemplateCorrupt, TemplateInfo
from corral.templates.names import TemplateNameError, check_name
from corral.templates.marker import read_marker, write_marker
from corral.templates.trees import RetireStamp, TreeBusy, in_use, process_alive, remove_tree

log = logging.getLogger("corral.templates")

DEFAULT_ROOT = Path("/var/lib/corral/templates")
ROOT_ENV = "CORRAL_TEMPLATE_DIR"

_BUILD_PREFIX = ".build-"
_TRASH = ".trash"
_RETIRED = ".retired"       # a RetireStamp, inside a retired template directory


class TemplateError(CorralError):
    """A template operation failed; the message is one line, safe to show to a user."""


class TemplateNotFound(TemplateError, NotFound):
    """404 through the API (the status comes from `NotFound`)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"template {name!r} not found")
        self.name = name


def default_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


# flock() locks belong to an open file description, so a process that opened the root twice
# would block on itself; one descriptor per root, counted, makes the lock re-entrant.
_locks: dict[str, list[int]] = {}
_locks_guard = threading.Lock()


class TemplateStore:
    def __init__(self, root: Path | None = None, depot: TemplateDepot | None = None) -> None:
        self._root = Path(os.path.abspath(root if root is not None else default_root()))
        self.depot = depot if depot is not None else TemplateDepot.from_env()
        self._push_lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"TemplateStore({str(self._root)!r})"

    # -- lookups -------------------------------------------------------------------------------

    def path_for(self, name: str) -> Path:
        """The directory of template `name` (which need not exist). Never outside the root."""
        path = self._root / check_name(name)
        assert path.parent == self._root  # guaranteed by the name pattern; kept as a tripwire
        return path

    def _read(self, path: Path) -> TemplateInfo:
        text = (path / INFO_FILE).read_text(encoding="utf-8")
        info = TemplateInfo.from_json(text, path)
        if info.name != path.name:
            raise TemplateCorrupt(f"{path / INFO_FILE}: names template {info.name!r}")
        return info

    def _load(self, name: str) -> TemplateInfo | None:
        path = self.path_for(name)
        # A symlink in place of a template directory would lead outside the store: not a template.
        if path.is_symlink() or not path.is_dir() or (path / ROOTFS_DIR).is_symlink():
            return None
        if not (path / INFO_FILE).is_file() or not (path / ROOTFS_DIR).is_dir():
            return None
        return self._read(path)

    def list(self) -> list[TemplateInfo]:
        """Every readable template, sorted by name. Corrupt entries are skipped, not fatal."""
        try:
            names = sorted(os.listdir(self._root))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if name.startswith("."):
                continue
            try:
                info = self._load(name)
            except (ValueError, TemplateCorrupt, OSError):
                continue
            if info is not None:
                found.append(info)
        return found

    def get(self, name: str) -> TemplateInfo:
        """The template called `name`, or the one that has `name` as an alias."""
        try:
            info = self._load(name)
        except TemplateCorrupt as exc:
            raise TemplateError(str(exc)) from None
        if info is not None:
            return info
        for candidate in self.list():
            if name in candidate.aliases:
                return candidate
        raise TemplateNotFound(name)

    def exists(self, name: str) -> bool:
        """False for an unknown *or invalid* name: an API caller's typo is not a server error."""
        try:
            self.get(name)
        except (TemplateNotFound, TemplateNameError):
            return False
        return True

    # -- locking -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive, re-entrant (per process) lock over commits, removals and alias changes."""
        self._root.mkdir(parents=True, exist_ok=True, mode=0o755)
        key = str(self._root)
        with _locks_guard:
            entry = _locks.get(key)
            if entry is not None:
                entry[1] += 1
        if entry is None:
            fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            with _locks_guard:
                _locks[key] = [fd, 1]
        try:
            yield
        finally:
            with _locks_guard:
                entry = _locks[key]
                entry[1] -= 1
                if entry[1] == 0:
                    del _locks[key]
                    fcntl.flock(entry[0], fcntl.LOCK_UN)
                    os.close(entry[0])

    # -- building and publishing ---------------------------------------------------------------

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator["Stage"]:
        """A private directory next to the template's final place to build it in.

        Leaving the block without `commit()` (an exception, a cancelled build) deletes the
        directory, unmounting anything a build tool left mounted in it first.
        """
        check_name(name)
        self._root.mkdir(parents=True, exist_ok=True, mode=0o755)
        self._purge_stale_builds()
        path = self._root / f"{_BUILD_PREFIX}{name}-{os.getpid()}-{secrets.token_hex(4)}"
        path.mkdir(mode=0o700)
        stage = Stage(self, name, path)
        try:
            yield stage
        finally:
            if not stage.committed:
                remove_tree(path)

    def _publish(self, stage: "Stage", info: TemplateInfo) -> TemplateInfo:
        target = self.path_for(stage.name)
        # A fresh id per published tree, so that its users can be told apart from the users
        # of the previous build of the same name (see trees.in_use).
        write_marker(stage.rootfs, f"{stage.name} {secrets.token_hex(8)}")
        tmp = stage.path / (INFO_FILE + ".tmp")
        tmp.write_text(info.to_json(), encoding="utf-8")
        os.chmod(tmp, 0o644)
        os.rename(tmp, stage.path / INFO_FILE)
        os.chmod(stage.path, 0o755)
        with self.lock():
            if os.path.lexists(target):
                if target.is_symlink() or not target.is_dir():
                    raise TemplateError(f"{target} exists and is not a template directory")
                _exchange(stage.path, target)
                self._retire(stage.path, stage.name)   # stage.path now holds the old template
            else:
                os.rename(stage.path, target)
            stage.committed = True
        self.purge_trash()
        if self.depot is not None and not stage.fetched:
            self._push(stage.name)
        return self._read(target)

    def _push(self, name: str) -> None:
        """Push to the depot: at once from synchronous code (the CLI), and in a thread from a
        server's event loop (a build through the API), whose heartbeats must not wait for an
        archive of a large template. Pushes of one store take turns, so the last build wins."""
        def push() -> None:
            assert self.depot is not None
            with self._push_lock:
                try:
                    self.depot.push(self, name)
                except (OSError, CorralError) as exc:   # published here all the same; the depot keeps the old one
                    log.error("template %s was published but not pushed to %r: %s", name, self.depot, exc)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            push()
            return
        threading.Thread(target=push, name=f"corral-push-{name}").start()

    # -- removal -------------------------------------------------------------------------------

    def remove(self, name: str) -> None:
        """Unpublish a template now; its files go once no sandbox mounts them any more."""
        path = self.path_for(name)
        with self.lock():
            if path.is_symlink() or not path.is_dir():
                raise TemplateNotFound(name)
            self._retire(path, name)
        self.purge_trash()

    def _retire(self, path: Path, name: str) -> None:
        trash = self._root / _TRASH
        trash.mkdir(mode=0o700, exist_ok=True)
        stamp = RetireStamp.now()
        retired = trash / f"{name}-{secrets.token_hex(6)}"
        os.rename(path, retired)
        (retired / _RETIRED).write_text(stamp.dumps(), encoding="utf-8")

    def has_trash(self) -> bool:
        """Whether any retired template waits for its last user (cheap; takes no lock)."""
        return any((self._root / _TRASH).glob("*"))

    def purge_trash(self) -> list[Path]:
        """Delete retired templates nothing mounts any more; return those still in use."""
        trash = self._root / _TRASH
        busy = []
        with self.lock():
            try:
                entries = sorted(trash.iterdir())
            except FileNotFoundError:
                return []
            for entry in entries:
                try:
                    stamp = RetireStamp.loads((entry / _RETIRED).read_text(encoding="utf-8"))
                except OSError:
                    stamp = None
                marker = read_marker(entry / ROOTFS_DIR)
                if in_use(entry, stamp, stamped=True, marker=marker):
                    busy.append(entry)
                    continue
                with contextlib.suppress(TreeBusy):
                    remove_tree(entry)
            if not busy:
                with contextlib.suppress(OSError):
                    trash.rmdir()
        return busy

    def _purge_stale_builds(self) -> None:
        """Delete `.build-*` directories whose builder process is gone (killed mid-build)."""
        for entry in self._root.glob(_BUILD_PREFIX + "*"):
            pid_text = entry.name.rsplit("-", 2)[-2] if entry.name.count("-") >= 3 else ""
            if pid_text.isdigit() and process_alive(int(pid_text)):
                continue
            with contextlib.suppress(TreeBusy, OSError):
                remove_tree(entry)

    # -- aliases -------------------------------------------------------------------------------

    def set_alias(self, alias: str, name: str) -> TemplateInfo:
        """Make `alias` another name for template `name` (moving it if another template had it)."""
        check_name(alias)
        with self.lock():
            target = self.get(name)
            if alias == target.name:
                raise TemplateError(f"{alias!r} is already the template's own name")
            if self._load(alias) is not None:
                raise TemplateError(f"{alias!r} is a template name and cannot be an alias")
            for other in self.list():
                if alias in other.aliases and other.name != target.name:
                    self._rewrite(other, tuple(a for a in other.aliases if a != alias))
            if alias not in target.aliases:
                self._rewrite(target, target.aliases + (alias,))
            return self.get(target.name)

    def remove_alias(self, alias: str) -> None:
        check_name(alias)
        with self.lock():
            for other in self.list():
                if alias in other.aliases:
                    self._rewrite(other, tuple(a for a in other.aliases if a != alias))
                    return
        raise TemplateNotFound(alias)

    def _rewrite(self, info: TemplateInfo, aliases: tuple[str, ...]) -> None:
        """Replace template.json atomically; the rootfs is not touched."""
        from dataclasses import replace

        new = replace(info, aliases=aliases)
        tmp = info.path / (INFO_FILE + ".tmp")
        tmp.write_text(new.to_json(), encoding="utf-8")
        os.chmod(tmp, 0o644)
        os.rename(tmp, info.path / INFO_FILE)


class Stage:
    """A template being built; see `TemplateStore.stage`."""

    def __init__(self, store: TemplateStore, name: str, path: Path) -> None:
        self.store = store
        self.name = name
        self.path = path
        self.committed = False
        self.fetched = False     # unpacked from the depot (depot.py): not pushed back

    @property
    def rootfs(self) -> Path:
        return self.path / ROOTFS_DIR

    @property
    def log_path(self) -> Path:
        return self.path / "build.log"

    def commit(self, info: TemplateInfo) -> TemplateInfo:
        """Publish the staged rootfs under the stage's name, replacing any previous build."""
        if self.committed:
            raise TemplateError("stage already committed")
        if info.name != self.name:
            raise TemplateError(f"info names {info.name!r}, stage is for {self.name!r}")
        if not self.rootfs.is_dir() or self.rootfs.is_symlink():
            raise TemplateError(f"nothing to publish: {self.rootfs} is not a directory")
        return self.store._publish(self, info)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories atomically (renameat2 RENAME_EXCHANGE), so `b` never vanishes."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    rc = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(err, os.strerror(err), str(b))
        # A filesystem without RENAME_EXCHANGE: two renames, with a short window without `b`.
        parked = a.parent / f"{a.name}.old"
        os.rename(b, parked)
        os.rename(a, b)
        os.rename(parked, a)
