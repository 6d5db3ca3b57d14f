"""Running API builds: one at a time, each in its own thread and event loop, with a log to poll.

A build runs corral's Dockerfile builder (its layer cache included) on the Dockerfile that
`dockerfile.py` made from the SDK's steps. The builder copies trees and runs `cp` synchronously,
so it gets a thread with its own loop rather than stalling the server's; the server's loop only
reads the job's log. Builds queue behind one another (`waiting`), as the machine has few cores
and every RUN step is a sandbox. Stopping the server cancels the running build, whose own
clean-up removes its build sandboxes and unfinished layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.builder.remote.dockerfile import BASE_STEP, FINALIZE_STEP, Translation
from corral.builder.remote.kept import keep_build, prune
from corral.builder.remote.records import Records, now_iso
from corral.builder import (DockerfileBuilder, DockerfileError, StepEvent, StepFailed,
                                         TemplateConfig)
from corral.builder.config import NetworkDefaults
from corral.templates.info import TemplateResources
from corral.templates.store import TemplateError, TemplateStore

log = logging.getLogger("corral.builder.remote")
MAX_LOG_ENTRIES = 20_000


@dataclass
class BuildJob:
    template_id: str
    build_id: str
    status: str = "waiting"
    entries: list[dict[str, Any]] = field(default_factory=list)
    reason: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    loop: asyncio.AbstractEventLoop | None = None
    task: asyncio.Task[Any] | None = None
    thread: threading.Thread | None = None
    cancelled: bool = False

    def add(self, message: str, *, level: str = "info", step: str | None = None) -> None:
        entry: dict[str, Any] = {"timestamp": now_iso(), "level": level, "message": message}
        if step is not None:
            entry["step"] = step
        with self.lock:
            if len(self.entries) < MAX_LOG_ENTRIES:
                self.entries.append(entry)
            elif len(self.entries) == MAX_LOG_ENTRIES:
                self.entries.append({**entry, "level": "warn", "message": "log truncated"})

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.entries[offset:offset + limit])


class BuildRunner:
    def __init__(self, store: TemplateStore, records: Records, work_root: Path, *, network: bool) -> None:
        self.store = store
        self.records = records
        self.work_root = Path(work_root)
        self.network = network
        self.jobs: dict[str, BuildJob] = {}
        self._gate = threading.Semaphore(1)
        self._closing = False

    def job(self, build_id: str) -> BuildJob | None:
        return self.jobs.get(build_id)

    def start(self, job: BuildJob, translation: Translation, config_for: Callable[[Path], TemplateConfig],
              force: bool) -> None:
        self.jobs[job.build_id] = job
        work = self.work_root / job.build_id
        work.mkdir(parents=True, exist_ok=True)
        dockerfile = work / "Dockerfile"
        dockerfile.write_text(translation.dockerfile, encoding="utf-8")
        config = config_for(dockerfile)
        job.add(f"Build {job.build_id} of template {job.template_id} queued", step=BASE_STEP)
        job.thread = threading.Thread(target=self._thread, args=(job, translation, config, force),
                                      name=f"build-{job.build_id[:8]}", daemon=True)
        job.thread.start()

    def _thread(self, job: BuildJob, translation: Translation, config: TemplateConfig, force: bool) -> None:
        with self._gate:
            if self._closing or job.cancelled:
                self._finish(job, "error", "the server stopped before the build started", FINALIZE_STEP)
                return
            loop = asyncio.new_event_loop()
            job.loop = loop
            try:
                job.task = loop.create_task(self._build(job, translation, config, force))
                loop.run_until_complete(job.task)
            except asyncio.CancelledError:
                self._finish(job, "error", "the build was cancelled (server stopping)", FINALIZE_STEP)
            except BaseException:          # noqa: BLE001 - a thread must report, never die silently
                log.exception("build %s crashed", job.build_id)
                self._finish(job, "error", "internal error in the builder (see the server log)", FINALIZE_STEP)
            finally:
                loop.close()

    def _finish(self, job: BuildJob, status: str, message: str | None, step: str | None) -> None:
        if status == "error":
            job.add(message or "build failed", level="error", step=step)
            job.reason = {"message": message or "build failed", "step": step,
                          "logEntries": job.page(max(len(job.entries) - 20, 0), 20)}
        job.status = status
        self.records.set_status(job.template_id, job.build_id, status, reason=message if status == "error" else None,
                                step=step)

    async def _build(self, job: BuildJob, translation: Translation, config: TemplateConfig, force: bool) -> None:
        job.status = "building"
        self.records.set_status(job.template_id, job.build_id, "building")
        started = time.monotonic()
        current = {"step": BASE_STEP}

        def on_event(event: StepEvent) -> None:
            step = translation.step_of(event.index) if event.total > 1 else BASE_STEP
            current["step"] = step
            text = event.description if len(event.description) <= 300 else event.description[:297] + "..."
            if event.status == "cached":
                job.add(f"CACHED [{step}] {text}", step=step)
            elif event.status == "running":
                job.add(f"[{step}] {text}", step=step)
            elif event.status == "done":
                job.add(f"[{step}] done in {event.seconds:.1f}s", step=step)

        def on_output(line: str) -> None:
            job.add(line, step=current["step"])

        job.add(f"Building template {job.template_id} with corral's builder", step=BASE_STEP)
        builder = DockerfileBuilder(self.store, config, network=self.network, force=force, on_event=on_event,
                                    on_output=on_output, work_dir=self.work_root / job.build_id / "sandboxes")
        try:
            result = await builder.build()
        except StepFailed as exc:
            index = exc.step.split("/", 1)[0]
            step = translation.step_of(int(index)) if index.isdigit() else FINALIZE_STEP
            self._finish(job, "error", str(exc), step)
            return
        except (DockerfileError, TemplateError, ValueError, OSError) as exc:
            self._finish(job, "error", str(exc), current["step"])
            return
        try:
            # Its tags must still start this build once a newer one replaces the template.
            await asyncio.to_thread(keep_build, self.store, job.template_id, job.build_id)
        except (TemplateError, OSError) as exc:
            self._finish(job, "error", f"the build succeeded but could not be kept under its tags: {exc}",
                         FINALIZE_STEP)
            return
        seconds = time.monotonic() - started
        job.add(f"Template {job.template_id} is ready: {result.steps_run} step(s) built, "
                f"{result.steps_cached} from the cache, {seconds:.1f}s", step=FINALIZE_STEP)
        self._finish(job, "ready", None, None)
        with contextlib.suppress(TemplateError, OSError):
            await asyncio.to_thread(prune, self.store, self.records.get(job.template_id))

    def close(self, timeout: float = 60.0) -> None:
        """Cancel queued and running builds and wait for their clean-up."""
        self._closing = True
        for job in list(self.jobs.values()):
            job.cancelled = True
            if job.loop is not None and job.task is not None and not job.task.done():
                try:
                    job.loop.call_soon_threadsafe(job.task.cancel)
                except RuntimeError:      # the loop already closed
                    pass
        deadline = time.monotonic() + timeout
        for job in list(self.jobs.values()):
            if job.thread is not None:
                job.thread.join(max(deadline - time.monotonic(), 0.1))


def make_config(name: str, dockerfile: Path, context: Path, cpu: int, mem: int,
                start_cmd: str | None, ready_cmd: str | None) -> TemplateConfig:
    return TemplateConfig(name=name, dockerfile=dockerfile, context=context,
                          resources=TemplateResources(cpu_count=cpu, memory_mb=mem),
                          network=NetworkDefaults(), start_cmd=start_cmd, ready_cmd=ready_cmd)
