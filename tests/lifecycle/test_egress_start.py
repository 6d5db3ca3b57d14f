"""The warm-pool egress race: creates that ask for egress at once, on a server whose network
manager has not started yet, must each get a working uplink.

Before the fix each of them started the manager, and a later start's recovery removed an earlier
create's half-built attachment; that create then failed with `ip: Cannot find device crh...`.
Everything runs in namespaces the test makes (tests/network/fakenet.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from corral.config import Settings
from corral.lifecycle.egress import Egress
from corral.network import from_e2b
from corral.network.addressing import host_ifname
from corral.network.commands import link_names
from corral.uds import SandboxClients
from tests.network.conftest import internet, new_manager, tls_context  # noqa: F401 - fixtures
from tests.network.fakenet import FakeInternet

pytestmark = pytest.mark.root

CONCURRENT = 6


async def test_concurrent_first_attaches_start_the_network_once_and_all_succeed(
        internet: FakeInternet, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    egress = Egress(Settings(data_dir=tmp_path / "data"), SandboxClients())
    net = new_manager(internet, tmp_path / "data" / "network")
    egress._net = net   # the manager, built in the test's own namespaces instead of the host's
    starts = 0
    real_start = net.start

    async def counted_start() -> None:
        nonlocal starts
        starts += 1
        await real_start()

    net.start = counted_start  # type: ignore[method-assign]
    ids = [f"race{i}" for i in range(CONCURRENT)]
    paths = [internet.new_sandbox_netns() for _ in ids]

    async def attach(i: int) -> None:
        await asyncio.sleep(0.004 * i)   # staggered: each one lands in a different step of the first's start
        await egress.attach_at_boot(ids[i], from_e2b(True, None), paths[i])

    try:
        results = await asyncio.gather(*(attach(i) for i in range(CONCURRENT)), return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert starts == 1
        links = set(await link_names(netns=internet.world_path))
        assert {host_ifname(s) for s in ids} <= links
        assert net.attached() == set(ids)
    finally:
        for sid in ids:
            await net.detach(sid)
        await net.shutdown()
