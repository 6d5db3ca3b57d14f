"""What a sandbox needs to boot again from its own writable layer, kept beside that layer.

A filesystem-mode pause ends every process, so resuming boots a fresh envd, which must come back
with the same access token, environment variables and user. The server holds none of that in
memory across a restart, so the hand-off the sandbox last started with is written to a 0600 file
in its host-side workdir (root-only, never mounted into any sandbox: the same trust as the store,
which already holds the access token). Forks and snapshots start from it with a new id and token.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from corral.lifecycle.errors import TierFailed
from corral.network import CarriedUse, EgressPolicy
from corral.wire.handoff import EnvdConfig

BOOT_FILE = "boot-config.json"
PAUSE_FILE = "pause.json"


def _write_private(path: Path, data: bytes, durable: bool = True) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def save_config(workdir: Path, config: EnvdConfig, durable: bool = True) -> None:
    """`durable=False` on a create's path: a running sandbox does not outlive a host crash
    anyway, and the pauses that do (filesystem, memory checkpoint) make it durable first
    (`sync_config`), so a create does not wait for an fsync."""
    _write_private(Path(workdir) / BOOT_FILE, config.to_bytes(), durable)


def sync_config(workdir: Path) -> None:
    """Flush the boot configuration (and its directory entry) to disk: before a pause that must
    survive a host reboot relies on it."""
    for path, flags in ((Path(workdir) / BOOT_FILE, os.O_RDONLY), (Path(workdir), os.O_RDONLY | os.O_DIRECTORY)):
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_config(workdir: Path) -> EnvdConfig:
    try:
        return EnvdConfig.from_bytes((Path(workdir) / BOOT_FILE).read_bytes())
    except OSError:
        raise TierFailed("this sandbox's boot configuration is missing; it cannot boot again") from None


def renamed(config: EnvdConfig, sandbox_id: str, token: str) -> EnvdConfig:
    """The same sandbox configuration under another identity (a fork, a snapshot's child)."""
    return replace(config, sandbox_id=sandbox_id, access_token=token)


@dataclass(frozen=True)
class PauseState:
    """How a paused sandbox was paused, so resume (and a restarted server) knows what to do.

    mode: "full" | "filesystem"; how: "freezer" | "checkpoint" | "layer"; timeout_s: what was left
    of the sandbox's timeout when it paused (what a resume without a timeout restores).
    """

    mode: str
    how: str
    timeout_s: int

    @property
    def survives(self) -> str:
        return {"freezer": "server restart (memory stays resident; not a host reboot)",
                "checkpoint": "server restart and host reboot (memory on disk)",
                "layer": "server restart and host reboot (processes ended; files kept)"}[self.how]

    def doc(self) -> dict[str, object]:
        return {"mode": self.mode, "how": self.how, "survives": self.survives}


def save_pause(workdir: Path, state: PauseState) -> None:
    _write_private(Path(workdir) / PAUSE_FILE,
                   json.dumps({"mode": state.mode, "how": state.how, "timeout_s": state.timeout_s}).encode())


def load_pause(workdir: Path) -> PauseState | None:
    try:
        raw = json.loads((Path(workdir) / PAUSE_FILE).read_text())
        return PauseState(str(raw["mode"]), str(raw["how"]), int(raw["timeout_s"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear_pause(workdir: Path) -> None:
    (Path(workdir) / PAUSE_FILE).unlink(missing_ok=True)


EGRESS_FILE = "pause-egress.json"


def save_egress(workdir: Path, policy: EgressPolicy, carried: CarriedUse | None = None) -> None:
    """The egress rules a filesystem-mode pause took down with the sandbox's network namespace,
    and what that network had used (budget, byte counters); the resume attaches a new network
    with exactly these rules, its budget and counters going on from there (`load_egress`)."""
    doc = {"policy": policy.to_json(), "carried": (carried or CarriedUse()).to_json()}
    _write_private(Path(workdir) / EGRESS_FILE, json.dumps(doc).encode())


def load_egress(workdir: Path) -> tuple[EgressPolicy, CarriedUse] | None:
    path = Path(workdir) / EGRESS_FILE
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    if "policy" not in doc:   # written before the use was kept: the policy alone
        return EgressPolicy.from_json(doc), CarriedUse()
    return EgressPolicy.from_json(doc["policy"]), CarriedUse.from_json(doc.get("carried") or {})


def clear_egress(workdir: Path) -> None:
    (Path(workdir) / EGRESS_FILE).unlink(missing_ok=True)
