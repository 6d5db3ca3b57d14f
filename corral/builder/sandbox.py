"""Build sandboxes: run one RUN step in a namespace-tier sandbox and keep what it wrote.

Each RUN step gets a fresh sandbox whose lower layer is the parent layer tree. The command runs
through the sandbox's own envd (`process.Process/Start` over its unix socket), so a build step
is confined exactly like user code: its own user namespace, cgroup limits, seccomp, and a
network namespace that has nothing but loopback unless the builder attaches registry egress.

After the command ends the sandbox is killed but its writable-layer image is kept: once the
sandbox's mount namespace is gone the image is a plain file, and `harvest.py` (in a process of
its own, with a private mount namespace) applies its overlay upper directory to the new layer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corral.errors import CorralError
from corral.runtime.base import Limits, SandboxSpec
from corral.runtime.namespace import NamespaceTier, disk
from corral.builder.overlay_diff import SCRATCH_DIR
from corral.wire.client import EnvdClient, EnvdError
from corral.wire.handoff import EnvdConfig

BUILD_CGROUP_GROUP = "corral-build"
# Build sandboxes take host uids below the server's range (corral.lifecycle.uids starts at 2**30)
# and above the test suites' (which stay under 300M).
BUILD_UID_FLOOR = 1 << 29
BUILD_UID_SLOTS = 4096
CA_PATH = f"/{SCRATCH_DIR}/ca.pem"
CA_ENV = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
DEFAULT_STEP_TIMEOUT_S = 3600.0

Output = Callable[[str, bytes], None]    # (stream name, bytes)

_counter = itertools.count()


class BuildSandboxError(CorralError, RuntimeError):
    """A build step's sandbox could not be prepared or its changes not taken out."""


@dataclass(frozen=True)
class StepResult:
    exit_code: int
    error: str | None
    seconds: float


@dataclass(frozen=True)
class StepLimits:
    cpu_count: int = max(os.cpu_count() or 1, 1)
    memory_mb: int = 4096
    disk_mb: int = 12288
    pids_max: int = 4096


class BuildSandboxes:
    """Owns the tier (and, for networked builds, the registry egress) for one build."""

    def __init__(self, work_dir: Path, *, egress: "object | None" = None,
                 limits: StepLimits = StepLimits(), tier: NamespaceTier | None = None) -> None:
        self.work_dir = work_dir
        self.egress = egress            # corral.builder.egress.RegistryEgress
        self.limits = limits
        self.tier = tier or NamespaceTier(cgroup_group=BUILD_CGROUP_GROUP)
        self._started = False

    async def __aenter__(self) -> "BuildSandboxes":
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await self.tier.start()
        self._started = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._started:
            await self.tier.close()

    def _uid_base(self) -> int:
        slot = (os.getpid() * 7 + next(_counter)) % BUILD_UID_SLOTS
        return BUILD_UID_FLOOR + slot * 65536

    async def run_step(self, lower: Path, tree: Path, argv: list[str], *, env: dict[str, str], cwd: str,
                       user: str, output: Output, network: bool,
                       timeout: float = DEFAULT_STEP_TIMEOUT_S) -> StepResult:
        """Run `argv` on top of `lower`; on success apply its changes to `tree` (a copy of lower)."""
        sid = "bld" + secrets.token_hex(8)
        workdir = self.work_dir / sid
        uid_base = self._uid_base()
        spec = SandboxSpec(sid, "build", lower, workdir, uid_base,
                           Limits(self.limits.cpu_count, self.limits.memory_mb, self.limits.disk_mb,
                                  self.limits.pids_max),
                           payload_config=EnvdConfig(sandbox_id=sid, default_user="root").to_bytes())
        started = time.monotonic()
        kept_image = self.work_dir / f"{sid}.img"
        handle = await self.tier.create(spec)
        attached = False
        try:
            env = dict(env)
            if network and self.egress is not None:
                nameserver = await self.egress.attach(sid, handle.init_pid)     # type: ignore[attr-defined]
                attached = True
                setup = await self._exec(handle.envd_socket, ["/bin/sh", "-c", _SETUP], user="root", cwd="/",
                                         env={"CORRAL_NS": nameserver, "CORRAL_CA": self.egress.ca_pem},  # type: ignore[attr-defined]
                                         output=output, timeout=60)
                if setup.exit_code != 0:
                    raise BuildSandboxError(f"could not prepare the build sandbox's network: {setup.error}")
                env.update({k: CA_PATH for k in CA_ENV})
            result = await self._exec(handle.envd_socket, argv, user=user, cwd=cwd, env=env, output=output,
                                      timeout=timeout)
            if attached:
                await self.egress.detach(sid)                                    # type: ignore[attr-defined]
                attached = False
            if result.exit_code == 0:
                await self._stop_keeping_layer(sid, workdir, kept_image)
        finally:
            if attached:
                await self.egress.detach(sid)                                    # type: ignore[attr-defined]
            await self.tier.destroy(sid, workdir)
        try:
            if result.exit_code == 0:
                await _harvest(kept_image, tree, uid_base)
        finally:
            kept_image.unlink(missing_ok=True)
        return StepResult(result.exit_code, result.error, time.monotonic() - started)

    async def _stop_keeping_layer(self, sid: str, workdir: Path, keep: Path) -> None:
        """Kill the sandbox, wait until its layer image is unmounted everywhere, move it aside."""
        image = workdir / disk.IMAGE_NAME
        await asyncio.to_thread(self.tier.cgroups.destroy, sid)
        deadline = time.monotonic() + 30
        while disk.loop_devices_backed_by(image):
            if time.monotonic() > deadline:
                raise BuildSandboxError(f"the layer of build sandbox {sid} stayed attached")
            await asyncio.sleep(0.02)
        os.rename(image, keep)

    async def _exec(self, socket_path: Path, argv: list[str], *, user: str, cwd: str, env: dict[str, str],
                    output: Output, timeout: float) -> StepResult:
        """Run one command through the build sandbox's envd, streaming its output to `output`."""
        started = time.monotonic()
        try:
            async with EnvdClient.connect(socket_path) as envd, asyncio.timeout(timeout):
                result = await envd.run(argv, user=user, cwd=cwd, envs=env, on_output=output)
        except TimeoutError:
            return StepResult(-1, f"the step ran longer than {timeout:.0f}s and was stopped", time.monotonic() - started)
        except EnvdError as exc:
            if exc.status_code is not None:
                return StepResult(-1, exc.message, 0.0)
            return StepResult(-1, f"lost the build sandbox's envd: {exc.__cause__ or exc}",
                              time.monotonic() - started)
        return StepResult(result.exit_code, result.error, time.monotonic() - started)


# Inside the sandbox, as root, before a networked step: the resolver the egress gave us, and the
# CA bundle (the image's own plus the host's local CAs) in the scratch dir no layer takes.
_SETUP = f"""set -e
echo "nameserver $CORRAL_NS" > /etc/resolv.conf
mkdir -p /{SCRATCH_DIR}
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cat /etc/ssl/certs/ca-certificates.crt > {CA_PATH}; else : > {CA_PATH}; fi
printf '%s\\n' "$CORRAL_CA" >> {CA_PATH}
"""


async def _harvest(image: Path, tree: Path, uid_base: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "corral.builder.harvest", str(image), str(tree), str(uid_base),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    try:
        report = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {"ok": False, "error": err.decode(errors="replace").strip()[-500:] or "no report"}
    if proc.returncode != 0 or not report.get("ok"):
        raise BuildSandboxError(f"could not take the step's changes out of its sandbox: {report.get('error')}")
