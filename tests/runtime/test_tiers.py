"""TierSet routes each sandbox to its own tier, also after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.runtime.base import Limits, ResourceUsage, SandboxHandle, SandboxSpec, Tier, TierError
from corral.runtime.tiers import TierSet


class Recorder(Tier):
    """A tier that only records calls (the routing is what is under test)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.live: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        self.live.add(spec.sandbox_id)
        self.calls.append(("create", spec.sandbox_id))
        return SandboxHandle(spec.sandbox_id, self.name, Path("/x"), 1)

    async def destroy(self, sandbox_id: str, workdir: Path) -> None:
        self.live.discard(sandbox_id)
        self.calls.append(("destroy", sandbox_id))

    async def adopt(self, sandbox_id: str, workdir: Path) -> SandboxHandle | None:
        return SandboxHandle(sandbox_id, self.name, Path("/x"), 1) if sandbox_id in self.live else None

    async def leftovers(self) -> list[str]:
        return sorted(self.live)

    async def freeze(self, sandbox_id: str) -> None:
        self.calls.append(("freeze", sandbox_id))

    async def thaw(self, sandbox_id: str) -> None: ...

    async def usage(self, sandbox_id: str, workdir: Path) -> ResourceUsage:
        raise NotImplementedError


def _spec(sid: str) -> SandboxSpec:
    return SandboxSpec(sid, "t", Path("/r"), Path("/w") / sid, 1 << 30, Limits())


async def test_create_and_later_calls_follow_the_choice() -> None:
    ns, gv = Recorder("namespace"), Recorder("gvisor")
    ts = TierSet({"namespace": ns, "gvisor": gv}, "namespace")
    ts.use("b", "gvisor")
    assert (await ts.create(_spec("a"))).tier == "namespace"
    assert (await ts.create(_spec("b"))).tier == "gvisor"
    await ts.freeze("b")
    assert ("freeze", "b") in gv.calls and not any(c[0] == "freeze" for c in ns.calls)
    with pytest.raises(TierError):
        ts.use("c", "microvm")
    with pytest.raises(TierError, match="no memory checkpoints"):
        await ts.checkpoint("a", Path("/w/a"))


async def test_after_a_restart_ownership_is_found_again() -> None:
    ns, gv = Recorder("namespace"), Recorder("gvisor")
    gv.live.add("old")
    ts = TierSet({"namespace": ns, "gvisor": gv}, "namespace")
    assert (await ts.adopt("old", Path("/w/old"))).tier == "gvisor"  # type: ignore[union-attr]
    fresh = TierSet({"namespace": ns, "gvisor": gv}, "namespace")
    await fresh.destroy("old", Path("/w/old"))
    assert ("destroy", "old") in gv.calls and ("destroy", "old") not in ns.calls
    await fresh.destroy("gone", Path("/w/gone"))       # nobody has it: the default cleans up
    assert ("destroy", "gone") in ns.calls and ("destroy", "gone") not in gv.calls


async def test_create_options_reach_the_owning_tier() -> None:
    seen: dict[str, object] = {}

    class WithOptions(Recorder):
        async def create(self, spec: SandboxSpec, **options: object) -> SandboxHandle:  # type: ignore[override]
            seen.update(options)
            return await super().create(spec)

    ts = TierSet({"namespace": Recorder("namespace"), "gvisor": WithOptions("gvisor")}, "namespace")
    ts.use("x", "gvisor")
    marker = object()
    await ts.create(_spec("x"), before_boot=marker)
    assert seen == {"before_boot": marker}
