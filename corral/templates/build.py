"""Building a Debian template with mmdebstrap: once, atomically, with visible progress.

The build runs in a stage directory next to the template's final place (see `store.stage`), so
a failure or a Ctrl-C removes the half-built tree, mounts included, and leaves the previous
template, if any, untouched. mmdebstrap runs in its own session so that a terminal's Ctrl-C
reaches us first and we stop it in order, rather than racing its cleanup against ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corral import ENVD_VERSION
from corral.templates.info import TemplateInfo, utc_now
from corral.templates.recipe import BASE_RECIPE, DebianRecipe
from corral.templates.sources import host_sources, render
from corral.templates.store import Stage, TemplateError, TemplateStore
from corral.templates.trees import disk_usage

MMDEBSTRAP = "mmdebstrap"
LOG_TAIL_LINES = 25
_STOP_GRACE_S = 10.0

# mmdebstrap's "I:" lines, mapped to the phases a user recognises.
_PHASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), label)
    for pattern, label in (
        (r"^I: running apt-get update", "Reading package lists"),
        (r"^I: downloading packages", "Downloading packages"),
        (r"^I: extracting archives", "Extracting essential packages"),
        (r"^I: installing essential packages", "Installing essential packages"),
        (r"^I: installing remaining packages", "Installing packages"),
        (r"^I: running --customize-hook", "Adding user, /data and /output"),
        (r"^I: cleaning package lists", "Cleaning up"),
    )
)

PhaseCallback = Callable[[str], None]


class BuildFailed(TemplateError):
    """The build did not produce a template; `log_tail` holds the end of its log."""

    def __init__(self, message: str, log_tail: list[str]) -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(frozen=True)
class BuildResult:
    info: TemplateInfo
    skipped: bool          # a template with the same recipe hash was already there
    seconds: float


def phase_of(line: str) -> str | None:
    for pattern, label in _PHASES:
        if pattern.search(line):
            return label
    return None


async def build_template(
    store: TemplateStore,
    recipe: DebianRecipe = BASE_RECIPE,
    *,
    force: bool = False,
    on_phase: PhaseCallback | None = None,
    mmdebstrap: str | None = None,
    apt_dir: Path | None = None,
) -> BuildResult:
    """Build `recipe` into `store` unless a build with the same recipe hash is present."""
    started = time.monotonic()
    report = on_phase or (lambda _label: None)
    exe = shutil.which(mmdebstrap or MMDEBSTRAP)
    if exe is None:
        raise TemplateError(f"{mmdebstrap or MMDEBSTRAP} not found; install it (make deps)")
    if os.geteuid() != 0:
        raise TemplateError("building a template needs root (mmdebstrap's root mode)")

    # Held for the whole build: a second builder waits, then finds the template current.
    lock = store.lock()
    await asyncio.to_thread(lock.__enter__)
    try:
        if not force and store.exists(recipe.name):
            present = store.get(recipe.name)
            if present.name == recipe.name and present.recipe_hash == recipe.hash:
                return BuildResult(present, True, time.monotonic() - started)
        with store.stage(recipe.name) as stage:
            info = await _build_in(stage, recipe, exe, report, apt_dir, started)
            report("Publishing")
            published = stage.commit(info)
        return BuildResult(published, False, time.monotonic() - started)
    finally:
        lock.__exit__(None, None, None)


async def _build_in(
    stage: Stage,
    recipe: DebianRecipe,
    exe: str,
    report: PhaseCallback,
    apt_dir: Path | None,
    started: float,
) -> TemplateInfo:
    report("Preparing")
    sources = host_sources(recipe.suite, apt_dir) if apt_dir else host_sources(recipe.suite)
    sources_file = None
    if sources:
        sources_file = stage.path / "sources.list"
        sources_file.write_text(render(sources), encoding="utf-8")
    argv = recipe.argv(exe, stage.rootfs, sources_file)
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)

    with open(stage.log_path, "w", encoding="utf-8", errors="replace") as log:
        log.write(f"# template {recipe.name}, recipe {recipe.hash}\n# {' '.join(argv[:5])} ...\n")
        if sources:
            log.write("# sources:\n" + "".join(f"#   {s.line()}\n" for s in sources))
        else:
            log.write("# sources: mmdebstrap's defaults (no host entry for the suite)\n")
        log.flush()
        env = dict(os.environ, LC_ALL="C.UTF-8", DEBIAN_FRONTEND="noninteractive")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(f"[{time.monotonic() - started:7.1f}s] {line}\n")
                tail.append(line)
                label = phase_of(line)
                if label:
                    log.flush()
                    report(label)
            rc = await proc.wait()
        except BaseException:
            await _stop(proc)
            raise
        if rc != 0:
            log.write(f"# mmdebstrap exited with {rc}\n")
            raise BuildFailed(
                f"building template {recipe.name!r} failed (mmdebstrap exit status {rc})",
                list(tail),
            )

        report("Verifying")
        missing = [p for p in recipe.required if not os.path.lexists(stage.rootfs / p)]
        if missing:
            log.write(f"# missing after build: {missing}\n")
            raise BuildFailed(
                f"building template {recipe.name!r} failed: the rootfs lacks {', '.join(missing)}",
                list(tail),
            )
        report("Measuring size")
        size = await asyncio.to_thread(disk_usage, stage.rootfs)
        log.write(f"# built in {time.monotonic() - started:.1f}s, {size} bytes\n")

    return TemplateInfo(
        name=recipe.name,
        created_at=utc_now(),
        recipe_hash=recipe.hash,
        size_bytes=size,
        envd_version=ENVD_VERSION,
        resources=recipe.resources,
        build_log=stage.log_path.name,
        path=stage.path,
    )


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Stop mmdebstrap and everything it started (its session), politely first."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), _STOP_GRACE_S)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(proc.wait())
    # The session may outlive its leader (apt's children); make sure nothing of it is left.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
