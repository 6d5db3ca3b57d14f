"""One real gVisor sandbox behind the manager: its uplink is attached before runsc boots (gVisor's
network stack takes the interfaces its namespace has at boot), then the same policy holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.network import NetworkManager, from_e2b

from .conftest import new_manager
from .fakenet import API_IP, FakeInternet
from .test_real_sandbox import PROBE

pytestmark = pytest.mark.root


async def test_gvisor_sandbox_behind_the_manager(manager: NetworkManager, internet: FakeInternet,
                                                 tmp_path: Path) -> None:
    from tests.runtime.gvisor.sandboxes import box_factory

    policy = from_e2b(False, {"allowOut": ["api.themoviedb.test"]})
    attached = {}

    async def attach(netns_path: str) -> None:
        attached["att"] = await manager.attach(sid, policy, netns_path=netns_path)

    async with box_factory(tmp_path) as factory:
        spec = factory.spec()
        sid = spec.sandbox_id
        from tests.runtime.gvisor.sandboxes import Box
        handle = await factory.tier.create(spec, before_boot=attach)
        box = Box(factory.tier, handle, spec)
        factory.made.append(box)
        att = attached["att"]
        r = await box.sh(f"echo 'nameserver {att.nameserver}' > /etc/resolv.conf")
        assert r.exit_code == 0, r.output
        probe = PROBE.replace("sys.argv[1:]", '["api.themoviedb.test", "other.test"]')
        r = await box.sh(f"python3 - <<'EOF'\n{probe}\nEOF", user="user")
        out = json.loads(r.output.strip().splitlines()[-1])
        assert out["api.themoviedb.test"] == [API_IP]
        assert out["other.test"] == "gaierror"
        assert out["api"] == "hi"
        assert out["raw"] != "hi" and out["other"] != "hi" and out["host"] != "hi"
        # A server restart: the manager stops (the sandbox's network stays in the kernel), a new
        # one re-adopts it from its state directory, and the same rules hold, DNS pins included.
        await manager.close()
        again = new_manager(internet, tmp_path / "net")   # the fixture's state directory
        await again.start()
        try:
            assert sid in again.attached()
            r = await box.sh(f"python3 - <<'EOF'\n{probe}\nEOF", user="user")
            out = json.loads(r.output.strip().splitlines()[-1])
            assert out["api.themoviedb.test"] == [API_IP] and out["api"] == "hi", out
            assert out["other.test"] == "gaierror" and out["other"] != "hi" and out["host"] != "hi", out
        finally:
            await again.detach(sid)
            await again.close()
