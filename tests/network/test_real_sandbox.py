"""One real namespace-tier sandbox behind the manager: glibc's resolver, the sandbox's own
root trying to loosen its network, and detach while it runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.network import NetworkManager, from_e2b

from .fakenet import API_IP, OTHER_IP, RAW_IP, WORLD_IP, FakeInternet

pytestmark = pytest.mark.root

PROBE = r"""
import json, socket, sys
out = {}
def tcp(host, port):
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(b"hi"); return s.recv(10).decode()
    except OSError as e:
        return type(e).__name__
for name in sys.argv[1:]:
    try:
        out[name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 7000, socket.AF_INET, socket.SOCK_STREAM)})
    except socket.gaierror as e:
        out[name] = "gaierror"
out["api"] = tcp("api.themoviedb.test", 7000)
out["raw"] = tcp(%r, 7000)
out["other"] = tcp(%r, 7000)
out["host"] = tcp(%r, 8000)
print(json.dumps(out))
""" % (RAW_IP, OTHER_IP, WORLD_IP)


async def test_real_sandbox_behind_the_manager(manager: NetworkManager, internet: FakeInternet, tmp_path: Path) -> None:
    from tests.runtime.namespace.sandboxes import sandbox_factory

    async with sandbox_factory(tmp_path) as factory:
        box = await factory.create()
        att = await manager.attach(box.id, from_e2b(False, {"allowOut": ["api.themoviedb.test"]}),
                                   init_pid=box.handle.init_pid)
        r = await box.sh(f"echo 'nameserver {att.nameserver}' > /etc/resolv.conf")
        assert r["rc"] == 0, r
        r = await box.py(PROBE.replace("sys.argv[1:]", '["api.themoviedb.test", "other.test"]'), uid=1000)
        out = json.loads(r["stdout"])
        assert out["api.themoviedb.test"] == [API_IP]
        assert out["other.test"] == "gaierror"
        assert out["api"] == "hi"
        assert out["raw"] != "hi" and out["other"] != "hi" and out["host"] != "hi"
        # the sandbox's root owns no part of its network namespace: it cannot loosen anything
        for cmd in ("ip route del default", "ip addr add 10.9.9.9/32 dev eth0", "ip link set eth0 down",
                    "ip route add 198.18.0.0/15 dev eth0"):
            r = await box.sh(cmd)
            assert "Operation not permitted" in (r.get("stderr", "") + r.get("stdout", "")), (cmd, r)
        await manager.detach(box.id)
        r = await box.sh("cat /proc/net/dev")
        assert "eth0" not in r["stdout"]
