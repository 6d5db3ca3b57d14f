"""A checked `BuildSpec` -> the Dockerfile corral's builder runs, with each line's SDK step name.

The translation keeps E2B's build semantics where they differ from Docker's: a template starts
as user `user` in `/home/user` (E2B's documented defaults), a `RUN` with its own user switches
only for that command, and a `COPY` without an owner belongs to the current user. Uploaded files
live under `<filesHash>/` in the build context, so each COPY reads exactly the archive its hash
names. `force`/`skip_cache()` is honoured by an `ARG` holding the build ID: every later RUN's
cache key includes it, so those steps run again (COPY layers are keyed by content anyway).

Everything is written in forms the parser reads without re-splitting: exec-form JSON for RUN
(bash -c, so a command may span lines) and COPY (paths with spaces), shell-quoted ENV values.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from dataclasses import dataclass

from corral.builder.remote.spec import BuildSpec, Step

DEFAULT_USER = "user"
DEFAULT_WORKDIR = "/home/user"
BASE_STEP = "base"
FINALIZE_STEP = "finalize"
CACHE_ARG = "CORRAL_SKIP_CACHE"


@dataclass(frozen=True)
class Translation:
    dockerfile: str
    origins: tuple[str, ...]      # per Dockerfile instruction (1-based index - 1): SDK step name

    def step_of(self, instruction_index: int) -> str:
        if 1 <= instruction_index <= len(self.origins):
            return self.origins[instruction_index - 1]
        return FINALIZE_STEP


def translate(spec: BuildSpec, *, build_id: str) -> Translation:
    lines: list[str] = []
    origins: list[str] = []

    def emit(line: str, origin: str) -> None:
        lines.append(line)
        origins.append(origin)

    emit(f"FROM {spec.from_image or spec.from_template}", BASE_STEP)
    emit(f"USER {DEFAULT_USER}", BASE_STEP)
    emit(f"WORKDIR {DEFAULT_WORKDIR}", BASE_STEP)
    user = DEFAULT_USER
    busted = False
    if spec.force:
        emit(f"ARG {CACHE_ARG}={build_id}", BASE_STEP)
        busted = True
    for step in spec.steps:
        origin = str(step.index)
        if step.force and not busted:
            emit(f"ARG {CACHE_ARG}={build_id}", origin)
            busted = True
        user = _emit_step(step, user, lambda line: emit(line, origin))
    return Translation("\n".join(lines) + "\n", tuple(origins))


def _emit_step(step: Step, user: str, emit) -> str:   # type: ignore[no-untyped-def]
    if step.type == "COPY":
        src, dest = step.args[0], step.args[1]
        owner = (step.args[2] if len(step.args) > 2 else "") or user
        mode = step.args[3] if len(step.args) > 3 else ""
        flags = ""
        if owner not in ("root", "0", "root:root", "0:0"):
            flags += f" --chown={owner}"
        if mode:
            flags += f" --chmod={mode}"
        source = f"{step.files_hash}/{posixpath.normpath(src)}"
        emit(f"COPY{flags} {json.dumps([source, dest])}")
        return user
    if step.type == "ENV":
        pairs = zip(step.args[0::2], step.args[1::2])
        emit("ENV " + " ".join(f"{name}={shlex.quote(value)}" for name, value in pairs))
        return user
    if step.type == "RUN":
        run_as = step.args[1] if len(step.args) > 1 and step.args[1] else None
        if run_as and run_as != user:
            emit(f"USER {run_as}")
        emit("RUN " + json.dumps(["/bin/bash", "-c", step.args[0]]))
        if run_as and run_as != user:
            emit(f"USER {user}")
        return user
    if step.type == "USER":
        emit(f"USER {step.args[0]}")
        return step.args[0]
    emit(f"WORKDIR {step.args[0]}")
    return user
