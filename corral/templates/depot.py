"""Templates across machines: a content-addressed depot that nodes publish to and fetch from.

Each node keeps its own template store (`<root>/<name>/`, store.py) on local disk, where its
sandboxes mount the rootfs. The depot is one directory every node shares (CORRAL_TEMPLATE_DEPOT,
on NFS, Filestore, CephFS; object storage would hold the same two kinds of file):

- `sha256/<hex>`: a template as one tar archive (its `rootfs/` and `template.json`, owners,
  modes, xattrs and ACLs kept, sparse files sparse), named by the SHA-256 of its bytes, written
  under a temporary name and renamed, so a name always stands for complete, known content;
- `refs/<name>.json`: `{"name", "digest", "size"}`, the archive that is template `name` now
  (replaced atomically by the next publish of that name).

A store with a depot pushes every template it publishes (a build, `corral template build`, a
Dockerfile build through the API). A node fetches on demand: a create for a template its store
lacks, or whose depot digest is newer than the one it fetched, is held while the node fetches it
(corral/cluster/fetch.py); the copy is cached in the node's store. A fetch checks the archive's
digest *before* unpacking it with GNU tar (which refuses members outside the directory), so a
truncated or damaged archive never becomes a template. Which digest a store's copy came from is
kept in `<store>/.depot/<name>` (dot names are never templates).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from corral.errors import CorralError
from corral.templates.info import INFO_FILE, ROOTFS_DIR, TemplateInfo
from corral.templates.names import check_name

log = logging.getLogger("corral.templates")

DEPOT_ENV = "CORRAL_TEMPLATE_DEPOT"
_CHUNK = 1 << 20
_TAR_FLAGS = ["--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls"]
_ENV = {"PATH": "/usr/sbin:/sbin:/usr/bin:/bin", "LC_ALL": "C"}


class DepotError(CorralError):
    """The depot cannot give or take a template (the message says which and why)."""

    status = 503


class _Stage(Protocol):
    path: Path
    fetched: bool

    def commit(self, info: TemplateInfo) -> TemplateInfo: ...


class _Store(Protocol):
    @property
    def root(self) -> Path: ...

    def path_for(self, name: str) -> Path: ...

    def stage(self, name: str) -> contextlib.AbstractContextManager[_Stage]: ...


@dataclass(frozen=True)
class DepotRef:
    name: str
    digest: str     # hex SHA-256 of the archive
    size: int


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class TemplateDepot:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "sha256"
        self.refs = self.root / "refs"

    @classmethod
    def from_env(cls) -> "TemplateDepot | None":
        value = os.environ.get(DEPOT_ENV)
        return cls(Path(value)) if value else None

    def __repr__(self) -> str:
        return f"TemplateDepot({str(self.root)!r})"

    # --- refs ------------------------------------------------------------------------------------

    def ref(self, name: str) -> DepotRef | None:
        path = self.refs / f"{check_name(name)}.json"     # TemplateNameError for a name no template has
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return DepotRef(name=str(doc["name"]), digest=str(doc["digest"]), size=int(doc["size"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise DepotError(f"template {name!r} in the depot has an unreadable ref: {exc}") from None

    def _write_ref(self, ref: DepotRef) -> None:
        self.refs.mkdir(parents=True, exist_ok=True, mode=0o755)
        tmp = self.refs / f".{ref.name}.{secrets.token_hex(4)}.tmp"
        tmp.write_text(json.dumps({"name": ref.name, "digest": ref.digest, "size": ref.size}), encoding="utf-8")
        os.rename(tmp, self.refs / f"{ref.name}.json")

    # --- which depot archive a store's copy is -----------------------------------------------------

    @staticmethod
    def _cached_file(store: _Store, name: str) -> Path:
        return store.root / ".depot" / check_name(name)

    def cached_digest(self, store: _Store, name: str) -> str | None:
        try:
            return self._cached_file(store, name).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def _remember(self, store: _Store, name: str, digest: str) -> None:
        path = self._cached_file(store, name)
        path.parent.mkdir(exist_ok=True, mode=0o755)
        tmp = path.with_name(f".{name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(digest, encoding="utf-8")
        os.rename(tmp, path)

    def wanted(self, store: _Store, name: str) -> DepotRef | None:
        """The depot's archive of `name` when the store should fetch it: the store has no copy,
        or its copy came from an older archive. A template the store built itself and never
        fetched stays as it is (this node published it, or it is one of its built-ins)."""
        ref = self.ref(name)
        if ref is None:
            return None
        local = store.path_for(name)
        if not (local / INFO_FILE).is_file():
            return ref
        cached = self.cached_digest(store, name)
        return ref if cached is not None and cached != ref.digest else None

    # --- push and fetch --------------------------------------------------------------------------

    def push(self, store: _Store, name: str) -> DepotRef:
        """Archive the store's template `name` into the depot and point its ref at it."""
        src = store.path_for(name)
        self.blobs.mkdir(parents=True, exist_ok=True, mode=0o755)
        tmp = self.blobs / f".{name}.{secrets.token_hex(6)}.tmp"
        h = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as out:
                proc = subprocess.Popen(["tar", "-C", str(src), *_TAR_FLAGS, "--sparse", "-cf", "-", ROOTFS_DIR, INFO_FILE],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_ENV)
                assert proc.stdout is not None
                while chunk := proc.stdout.read(_CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                if proc.wait() != 0:
                    raise DepotError(f"archiving template {name!r} failed: {err.strip().splitlines()[-1:]}")
            digest = h.hexdigest()
            final = self.blobs / digest
            if final.exists():
                tmp.unlink()      # the same bytes are there already
            else:
                os.rename(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        ref = DepotRef(name=name, digest=digest, size=size)
        self._write_ref(ref)
        self._remember(store, name, digest)
        log.info("template %s pushed to the depot as sha256:%s (%d bytes)", name, digest, size)
        return ref

    def fetch(self, store: _Store, name: str) -> TemplateInfo:
        """Unpack the depot's archive of `name` into the store (replacing an older copy)."""
        ref = self.ref(name)
        if ref is None:
            raise DepotError(f"template {name!r} is not in the depot")
        blob = self.blobs / ref.digest
        try:
            actual = _hash_file(blob)
        except FileNotFoundError:
            raise DepotError(f"template {name!r}: its archive sha256:{ref.digest} is missing from the depot") from None
        if actual != ref.digest:
            raise DepotError(f"template {name!r}: the depot's archive is damaged (sha256:{actual}, "
                             f"expected sha256:{ref.digest}); push the template again")
        with store.stage(name) as stage:
            done = subprocess.run(["tar", "-C", str(stage.path), *_TAR_FLAGS, "--same-permissions", "-xf", str(blob)],
                                  capture_output=True, env=_ENV)
            if done.returncode != 0:
                raise DepotError(f"unpacking template {name!r} failed: {done.stderr.decode(errors='replace').strip()}")
            info = TemplateInfo.from_json((stage.path / INFO_FILE).read_text(encoding="utf-8"), stage.path)
            if info.name != name:
                raise DepotError(f"the depot's archive of {name!r} holds template {info.name!r}")
            stage.fetched = True
            committed = stage.commit(info)
        self._remember(store, name, ref.digest)
        log.info("template %s fetched from the depot (sha256:%s)", name, ref.digest)
        return committed
