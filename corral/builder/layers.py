"""The layer cache: one full root tree per build step, under `<store>/.layers/<key>/`.

A layer is the complete filesystem after its step, not a diff, so any layer can be the single
(idmapped) lower directory the runtime mounts. Unchanged files are hard links shared with the
parent (`cp -al`), so a layer costs its directories plus what the step changed. The key is a
sha256 over the parent's key and everything that decides the step's result (the instruction,
ARG/ENV values, the COPY sources' contents), so an unchanged step is found again and any change
re-runs that step and everything after it.

A layer is built in a `.tmp-*` directory and renamed into place with its `layer.json`, so a
crash never leaves a half-built layer under a valid key. Layers are never modified once made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.templates.trees import process_alive, remove_tree

LAYERS_DIR = ".layers"
META_FILE = "layer.json"
ROOTFS = "rootfs"
_TMP = ".tmp-"


def layer_key(parent: str | None, **parts: Any) -> str:
    blob = json.dumps({"parent": parent, **parts}, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class Layer:
    key: str
    path: Path

    @property
    def rootfs(self) -> Path:
        return self.path / ROOTFS

    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / META_FILE).read_text())


class Draft:
    """A layer being made; `rootfs` starts as a hard-linked copy of the parent."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key

    @property
    def rootfs(self) -> Path:
        return self.path / ROOTFS


class LayerCache:
    def __init__(self, store_root: Path) -> None:
        self.root = Path(store_root) / LAYERS_DIR

    def get(self, key: str) -> Layer | None:
        path = self.root / key
        if (path / META_FILE).is_file() and (path / ROOTFS).is_dir() and not path.is_symlink():
            return Layer(key, path)
        return None

    def keys(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root) if not n.startswith("."))
        except FileNotFoundError:
            return []

    @contextlib.contextmanager
    def draft(self, key: str, parent: Path | None) -> Iterator[Draft]:
        """Yield a draft whose rootfs copies `parent` (a tree), or is empty; removed unless committed."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._purge_stale()
        path = self.root / f"{_TMP}{key[:16]}-{os.getpid()}-{secrets.token_hex(4)}"
        path.mkdir(mode=0o700)
        draft = Draft(path, key)
        try:
            if parent is not None:
                subprocess.run(["cp", "-a", "-l", "--", str(parent), str(draft.rootfs)], check=True,
                               capture_output=True)
            else:
                draft.rootfs.mkdir(mode=0o755)
            yield draft
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"copying the parent layer failed: {exc.stderr.decode(errors='replace')[-300:]}") from None
        finally:
            if path.exists():
                remove_tree(path)

    def commit(self, draft: Draft, meta: dict[str, Any]) -> Layer:
        (draft.path / META_FILE).write_text(json.dumps({**meta, "key": draft.key, "created": time.time()},
                                                       indent=2, sort_keys=True) + "\n")
        os.chmod(draft.path, 0o755)
        final = self.root / draft.key
        try:
            os.rename(draft.path, final)
        except OSError:
            if self.get(draft.key) is None:       # not a concurrent builder's identical layer
                raise
        return Layer(draft.key, final)

    def remove(self, key: str) -> None:
        remove_tree(self.root / key)

    def _purge_stale(self) -> None:
        for entry in self.root.glob(_TMP + "*"):
            fields = entry.name.split("-")
            pid = fields[-2] if len(fields) >= 4 else ""
            if pid.isdigit() and process_alive(int(pid)):
                continue
            with contextlib.suppress(OSError, RuntimeError):
                remove_tree(entry)


