"""Dockerfile + e2b.toml -> a published template, one cached layer per step.

Steps that change files (FROM, RUN, COPY/ADD, WORKDIR) each produce a layer (`layers.py`);
the others (ENV, ARG, USER, LABEL, CMD, ENTRYPOINT, SHELL) only change the state that later
keys and the image config (`image.py`) depend on. A cached layer is reused when its key
matches, so an unchanged build does no work and publishes nothing, and changing the last RUN
re-runs only that RUN. RUN steps run in build sandboxes (`sandbox.py`); COPY/ADD/WORKDIR are
host-side writes resolved inside the tree (`copying.py`). The result is published through the
template store's stage/commit, so it appears atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shlex
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from corral import ENVD_VERSION
from corral.builder import bases, copying, parser
from corral.builder.config import TemplateConfig
from corral.builder.context import BuildContext, BuildContextError
from corral.templates.image import IMAGE_FILE, ImageConfig
from corral.builder.instructions import Instruction
from corral.builder.layers import Layer, LayerCache, layer_key
from corral.builder.rootpath import RootPathError
from corral.builder.sandbox import BuildSandboxes, StepLimits
from corral.builder.variables import SubstitutionError, expand
from corral.templates.info import TemplateInfo, utc_now
from corral.templates.marker import MARKER_DIR, MARKER_FILE
from corral.templates.store import TemplateError, TemplateNotFound, TemplateStore
from corral.templates.trees import disk_usage

LOG_TAIL_LINES = 40
BUILDER_VERSION = 1


class StepFailed(TemplateError):
    """A step failed; `step` names it and `output` holds the end of what it printed."""

    def __init__(self, step: str, reason: str, output: list[str]) -> None:
        super().__init__(f"step {step} failed: {reason}")
        self.step = step
        self.output = output


@dataclass(frozen=True)
class StepEvent:
    index: int               # 1-based, over all instructions
    total: int
    description: str         # "RUN pip install x" as written (shortened)
    status: str              # "cached" | "running" | "done" | "config"
    seconds: float = 0.0


@dataclass(frozen=True)
class DockerfileBuildResult:
    info: TemplateInfo
    skipped: bool            # nothing changed: the published template was already this build
    seconds: float
    steps_run: int           # layers actually built (not taken from the cache)
    steps_cached: int


EventCallback = Callable[[StepEvent], None]
OutputCallback = Callable[[str], None]


@dataclass
class _State:
    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    shell: list[str] = field(default_factory=lambda: ["/bin/sh", "-c"])
    labels: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)

    def variables(self) -> dict[str, str]:
        return {**self.args, **self.env}


class DockerfileBuilder:
    def __init__(self, store: TemplateStore, config: TemplateConfig, *, network: bool = True,
                 build_args: dict[str, str] | None = None, force: bool = False,
                 on_event: EventCallback | None = None, on_output: OutputCallback | None = None,
                 step_limits: StepLimits | None = None, egress: object | None = None,
                 work_dir: Path | None = None) -> None:
        self.store = store
        self.config = config
        self.network = network
        self.build_args = dict(build_args or {})
        self.force = force
        self.on_event = on_event or (lambda _e: None)
        self.on_output = on_output or (lambda _l: None)
        self.step_limits = step_limits or StepLimits()
        self.egress = egress
        self.cache = LayerCache(store.root)
        self.work_dir = work_dir or (store.root / ".layers" / f".sandboxes-{os.getpid()}")
        self.ctx = BuildContext(config.context)
        self._log: list[str] = []
        self._tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._partial = ""
        self._sandboxes: BuildSandboxes | None = None

    # -- logging -----------------------------------------------------------------------------

    def _note(self, line: str) -> None:
        self._log.append(line)

    def _output(self, _stream: str, data: bytes) -> None:
        text = self._partial + data.decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial = lines.pop()
        for line in lines:
            line = line.rstrip("\r")
            self._log.append("  " + line)
            self._tail.append(line)
            self.on_output(line)

    # -- the build ---------------------------------------------------------------------------

    async def build(self) -> DockerfileBuildResult:
        started = time.monotonic()
        if os.geteuid() != 0:
            raise TemplateError("building a template needs root (namespaces, mounts, cgroups)")
        try:
            text = self.config.dockerfile.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TemplateError(f"{self.config.dockerfile} is not UTF-8 text") from None
        instructions = parser.parse(text)
        self._note(f"# template {self.config.name} from {self.config.dockerfile}")
        total = len(instructions)
        state = _State()
        pre_from = {}
        layer: Layer | None = None
        base_name = ""
        run, cached = 0, 0
        layers: list[str] = []
        try:
            for index, ins in enumerate(instructions, start=1):
                step = f"{index}/{total} ({ins.describe()})"
                try:
                    if ins.keyword == "ARG" and layer is None:
                        name, value = self._arg(ins, pre_from)
                        pre_from[name] = value
                        self.on_event(StepEvent(index, total, ins.text, "config"))
                        continue
                    if ins.keyword == "FROM":
                        image = expand(ins.args[0].split()[0], pre_from)
                        layer, hit, base_name = await self._from(image)
                    elif ins.keyword in ("RUN", "COPY", "ADD", "WORKDIR"):
                        assert layer is not None
                        layer, hit = await self._fs_step(ins, layer, state, index, total, step)
                    else:
                        self._config_step(ins, state)
                        self.on_event(StepEvent(index, total, ins.text, "config"))
                        continue
                except (SubstitutionError, BuildContextError, copying.CopyError, RootPathError,
                        bases.BaseImageError) as exc:
                    raise StepFailed(step, str(exc), []) from None
                layers.append(layer.key)
                if hit:
                    cached += 1
                else:
                    run += 1
            assert layer is not None
            image = self._image_config(state, base_name, layers)
            return await self._publish(layer, image, started, run, cached)
        finally:
            if self._sandboxes is not None:
                await self._sandboxes.__aexit__(None, None, None)
                self._sandboxes = None
            if self.egress is not None and getattr(self, "_egress_started", False):
                await self.egress.__aexit__(None, None, None)     # type: ignore[attr-defined]
            if self.work_dir.exists():
                import shutil

                shutil.rmtree(self.work_dir, ignore_errors=True)

    def _arg(self, ins: Instruction, variables: dict[str, str]) -> tuple[str, str]:
        name, sep, default = ins.args[0].partition("=")
        name = name.strip()
        if not name.isidentifier():
            raise StepFailed(ins.describe(), f"bad ARG name {name!r}", [])
        if name in self.build_args:
            return name, self.build_args[name]
        return name, expand(default.strip().strip('"'), variables) if sep else ""

    async def _from(self, image: str) -> tuple[Layer, bool, str]:
        known = set()
        for t in self.store.list():
            known.add(t.name)
            known.update(t.aliases)
        base = bases.resolve(image, known)
        try:
            info = self.store.get(base.template)
        except TemplateNotFound:
            raise bases.BaseImageError(
                f"FROM {image} needs the corral template {base.template!r}, which is not built "
                f"(make template, or corral template build-base)") from None
        key = layer_key(None, op="FROM", template=info.name, recipe=info.recipe_hash, created=info.created_at,
                        python_aliases=base.python_aliases, builder=BUILDER_VERSION)
        found = self.cache.get(key)
        if found is not None:
            self.on_event(StepEvent(1, 1, f"FROM {image}", "cached"))
            return found, True, info.name
        self.on_event(StepEvent(1, 1, f"FROM {image}", "running"))
        with self.cache.draft(key, info.rootfs) as draft:
            marker = draft.rootfs / MARKER_DIR / MARKER_FILE
            if marker.is_file() and not marker.is_symlink():
                marker.unlink()           # the published template gets a fresh one
            if base.python_aliases:
                bindir = draft.rootfs / "usr/local/bin"
                bindir.mkdir(parents=True, exist_ok=True)
                for alias, target in (("python", "/usr/bin/python3"), ("pip", "/usr/bin/pip3")):
                    if not os.path.lexists(bindir / alias):
                        os.symlink(target, bindir / alias)
            layer = self.cache.commit(draft, {"op": f"FROM {image}", "template": info.name})
        return layer, False, info.name

    def _config_step(self, ins: Instruction, state: _State) -> None:
        v = state.variables()
        k = ins.keyword
        if k == "ARG":
            name, value = self._arg(ins, v)
            state.args[name] = value
        elif k == "ENV":
            pairs = list(zip(ins.args[0::2], ins.args[1::2]))
            for name, value in pairs:
                state.env[name] = expand(value, state.variables())
        elif k == "LABEL":
            for name, value in zip(ins.args[0::2], ins.args[1::2]):
                state.labels[expand(name, v)] = expand(value, v)
        elif k == "USER":
            state.user = expand(ins.args[0], v).strip()
        elif k == "SHELL":
            state.shell = list(ins.args)
        elif k in ("CMD", "ENTRYPOINT"):
            argv = list(ins.args) if ins.exec_form else (state.shell + [ins.args[0]] if ins.args else [])
            if k == "CMD":
                state.cmd = argv
            else:
                state.entrypoint = argv
                state.cmd = []            # Docker resets CMD when ENTRYPOINT is set

    async def _fs_step(self, ins: Instruction, parent: Layer, state: _State, index: int, total: int,
                       step: str) -> tuple[Layer, bool]:
        v = state.variables()
        if ins.keyword == "WORKDIR":
            path = expand(ins.args[0], v).strip()
            path = posixpath.normpath(posixpath.join(state.workdir, path))
            state.workdir = path
            key = layer_key(parent.key, op="WORKDIR", path=path)
            action = lambda tree: copying.make_workdir(str(tree), path)     # noqa: E731
        elif ins.keyword in ("COPY", "ADD"):
            srcs = [expand(a, v) for a in ins.args[:-1]]
            if ins.keyword == "ADD":
                for s in srcs:
                    if "://" in s:
                        raise StepFailed(step, "ADD from a URL is not supported; use RUN curl -fsSLo ...", [])
                    if s.endswith((".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar.zst")):
                        raise StepFailed(step, "ADD does not unpack archives here; COPY it and RUN tar -xf", [])
            dest = expand(ins.args[-1], v)
            if not dest.startswith("/"):
                dest = posixpath.join(state.workdir, dest) + ("/" if dest.endswith("/") else "")
            sources = [s for pattern in srcs for s in self.ctx.resolve(pattern)]
            digest = self.ctx.digest(sources)
            chown = expand(ins.flag("chown") or "", v) or None
            chmod_text = ins.flag("chmod")
            mode = None
            if chmod_text is not None:
                try:
                    mode = int(chmod_text, 8)
                except ValueError:
                    raise StepFailed(step, f"--chmod={chmod_text} is not an octal mode", []) from None
                if not 0 <= mode <= 0o7777:
                    raise StepFailed(step, f"--chmod={chmod_text} is out of range", [])
            key = layer_key(parent.key, op="COPY", sources=[s.rel for s in sources], digest=digest, dest=dest,
                            chown=chown, chmod=mode)

            def action(tree: Path) -> None:
                owner = copying.lookup_owner(str(tree), chown) if chown else (0, 0)
                copying.copy_into(self.ctx, sources, str(tree), dest, owner=owner, mode=mode)
        else:
            argv = list(ins.args) if ins.exec_form else state.shell + [ins.args[0]]
            env = dict(v)
            user = self._run_user(parent, state.user)
            key = layer_key(parent.key, op="RUN", argv=argv, env=sorted(env.items()), user=user,
                            workdir=state.workdir)
            action = None

        found = self.cache.get(key)
        if found is not None:
            self._note(f"# step {step}: cached ({key[:12]})")
            self.on_event(StepEvent(index, total, ins.text, "cached"))
            return found, True
        self._note(f"# step {step}")
        self.on_event(StepEvent(index, total, ins.text, "running"))
        t0 = time.monotonic()
        with self.cache.draft(key, parent.rootfs) as draft:
            if action is not None:
                action(draft.rootfs)
            else:
                await self._run(parent, draft.rootfs, argv, env, state.workdir, user, step)
            layer = self.cache.commit(draft, {"op": ins.text[:500], "parent": parent.key})
        seconds = time.monotonic() - t0
        self._note(f"# step {index}/{total} done in {seconds:.1f}s")
        self.on_event(StepEvent(index, total, ins.text, "done", seconds))
        return layer, False

    def _run_user(self, parent: Layer, user: str) -> str:
        """envd selects users by name: turn `1000` or `user:group` into the image's user name."""
        name = user.partition(":")[0]
        if not name.isdigit():
            return name
        if name == "0":
            return "root"
        for row in copying._read_tree_file(str(parent.rootfs), "/etc/passwd"):
            if len(row) >= 3 and row[2] == name:
                return row[0]
        raise copying.CopyError(f"USER {user}: uid {name} has no entry in the image's /etc/passwd")

    async def _run(self, parent: Layer, tree: Path, argv: list[str], env: dict[str, str], cwd: str,
                   user: str, step: str) -> None:
        if self._sandboxes is None:
            if self.network and self.egress is None:
                from corral.builder.egress import RegistryEgress

                self.egress = RegistryEgress()
            if self.network and self.egress is not None and not getattr(self, "_egress_started", False):
                await self.egress.__aenter__()        # type: ignore[attr-defined]
                self._egress_started = True
                self._note(f"# registry egress: {', '.join(self.egress.hosts)}")  # type: ignore[attr-defined]
            self._sandboxes = BuildSandboxes(self.work_dir, egress=self.egress if self.network else None,
                                             limits=self.step_limits)
            await self._sandboxes.__aenter__()
        self._tail.clear()
        self._partial = ""
        result = await self._sandboxes.run_step(parent.rootfs, tree, argv, env=env, cwd=cwd, user=user,
                                                output=self._output, network=self.network)
        if self._partial:
            self._output("stdout", b"\n")
        if result.exit_code != 0:
            reason = f"exit code {result.exit_code}" if result.exit_code >= 0 else "did not finish"
            if result.error and result.exit_code < 0:
                reason += f" ({result.error})"
            self._note(f"# step failed: {reason}")
            raise StepFailed(step, reason, list(self._tail))

    def _image_config(self, state: _State, base: str, layers: list[str]) -> ImageConfig:
        start = self.config.start_cmd
        if start is None and (state.entrypoint or state.cmd):
            start = shlex.join(state.entrypoint + state.cmd)
        return ImageConfig(env=dict(state.env), workdir=state.workdir, user=state.user,
                           entrypoint=state.entrypoint, cmd=state.cmd, labels=state.labels,
                           start_cmd=start, ready_cmd=self.config.ready_cmd,
                           network=self.config.network.to_json(), base=base, layers=layers)

    async def _publish(self, layer: Layer, image: ImageConfig, started: float, run: int,
                       cached: int) -> DockerfileBuildResult:
        resources = self.config.resources
        blob = json.dumps({"layer": layer.key, "image": image.to_json(),
                           "resources": [resources.cpu_count, resources.memory_mb, resources.disk_mb]},
                          sort_keys=True).encode()
        recipe_hash = "sha256:" + hashlib.sha256(blob).hexdigest()
        name = self.config.name
        if not self.force and self.store.exists(name):
            present = self.store.get(name)
            if present.name == name and present.recipe_hash == recipe_hash:
                return DockerfileBuildResult(present, True, time.monotonic() - started, run, cached)
        with self.store.stage(name) as stage:
            proc = subprocess.run(["cp", "-a", "-l", "--", str(layer.rootfs), str(stage.rootfs)],
                                  capture_output=True)
            if proc.returncode != 0:
                raise TemplateError(f"publishing failed: {proc.stderr.decode(errors='replace')[-300:]}")
            (stage.path / IMAGE_FILE).write_text(image.to_json(), encoding="utf-8")
            os.chmod(stage.path / IMAGE_FILE, 0o644)
            seconds = time.monotonic() - started
            self._note(f"# built in {seconds:.1f}s: {run} step(s) run, {cached} from the cache")
            stage.log_path.write_text("\n".join(self._log) + "\n", encoding="utf-8")
            os.chmod(stage.log_path, 0o644)
            info = TemplateInfo(name=name, created_at=utc_now(), recipe_hash=recipe_hash,
                                size_bytes=disk_usage(stage.rootfs), envd_version=ENVD_VERSION,
                                resources=resources, build_log=stage.log_path.name, path=stage.path)
            published = stage.commit(info)
        return DockerfileBuildResult(published, False, time.monotonic() - started, run, cached)


async def build_dockerfile(store: TemplateStore, config: TemplateConfig, **kwargs: object) -> DockerfileBuildResult:
    return await DockerfileBuilder(store, config, **kwargs).build()   # type: ignore[arg-type]
