"""Memory checkpoints: what a tier that can save a running sandbox to disk offers.

A tier that mixes in :class:`Checkpointing` can write a sandbox's whole state (memory, processes,
open files, the in-sandbox daemon) to an image directory and bring it back, in the same sandbox
(full-mode pause: nothing held in memory while paused, survives a server restart and a reboot)
or as a new sandbox (snapshot / memory fork: the copy keeps a running kernel's variables).
Lifecycle code asks ``isinstance(tier, Checkpointing)``; the namespace tier does not offer it
(it pauses with the cgroup freezer, memory resident).

Contract:

* ``checkpoint(..., leave_running=False)`` stops the sandbox once its image is written (pause);
  its host resources except the workdir and image are released, so ``is_alive`` turns false and
  ``adopt`` returns None until ``restore``. With ``leave_running=True`` it keeps running (snapshot).
* ``with_disk=True`` also stores the writable layer in the image (needed to restore the image
  as *another* sandbox, whose layer must match the memory image); a pause of the same sandbox
  keeps using the sandbox's own layer.
* ``restore(sandbox_id, workdir, image_dir)`` resumes the sandbox that was checkpointed there;
  ``restore(..., spec=SandboxSpec)`` starts a new sandbox (a fork) from an image written with
  ``with_disk=True``. The fork starts with the source's memory: its envd holds the source's access
  token until the caller re-initialises it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from corral.runtime.base import SandboxHandle, SandboxSpec


@dataclass(frozen=True)
class CheckpointInfo:
    image_dir: Path
    image_bytes: int          # bytes on disk of the memory image (and layer, if stored)
    with_disk: bool
    seconds: float            # wall time of the checkpoint, quiesce included


class Checkpointing(abc.ABC):
    @abc.abstractmethod
    async def checkpoint(self, sandbox_id: str, workdir: Path, image_dir: Path | None = None, *,
                         leave_running: bool = False, with_disk: bool = False) -> CheckpointInfo:
        """Write the sandbox's state to ``image_dir`` (default: the workdir's checkpoint dir)."""

    @abc.abstractmethod
    async def restore(self, sandbox_id: str, workdir: Path, image_dir: Path | None = None, *,
                      spec: SandboxSpec | None = None) -> SandboxHandle:
        """Run a sandbox from an image; return once its envd accepts connections again."""

    @abc.abstractmethod
    def has_checkpoint(self, workdir: Path, image_dir: Path | None = None) -> bool:
        """Whether an image to restore from exists (for restart recovery of paused sandboxes)."""
