"""Egress through the whole product: the official SDK asks for network rules, corral enforces them.

Everything runs inside network namespaces this test creates (tests/network/fakenet.py): the corral
server and the SDK client live in the "world" namespace, whose only route leads to a fake
internet namespace with no route anywhere. No packet can leave the machine, whatever a bug does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import E2E_KEY, REPO
from tests.tiers import tier_params
from tests.network.fakenet import DNS_IP, METADATA_IP, OTHER_IP, RAW_IP, build_internet, make_tls_context

pytestmark = [pytest.mark.e2e, pytest.mark.root]

CAN_NET = os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", "nft", "nsenter", "openssl"))
PORT = 3090

KILL_ALL = """
import sys, httpx
url, key = sys.argv[1], sys.argv[2]
for s in httpx.get(url + "/v2/sandboxes", headers={"X-API-Key": key}, timeout=10).json():
    httpx.delete(url + "/sandboxes/" + s["sandboxID"], headers={"X-API-Key": key}, timeout=30)
"""


@pytest.fixture(params=tier_params())
def results(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The egress client's findings, against a server whose default isolation is the tier in
    ``request.param`` (on gVisor the uplink is attached before the sandbox boots)."""
    if not CAN_NET:
        pytest.skip("needs root, ip, nft, nsenter and openssl")
    loop = asyncio.new_event_loop()
    net = loop.run_until_complete(build_internet(make_tls_context(tmp_path)))
    # The fake internet's servers are asyncio servers: keep the loop serving while the test runs.
    import threading

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    data = tmp_path / "data"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "CORRAL_"))},
           "CORRAL_API_KEY": E2E_KEY, "CORRAL_DNS_UPSTREAMS": DNS_IP, "CORRAL_NETWORK_POOL": "10.209.0.0/16",
           "CORRAL_POOL": "", "PYTHONPATH": str(REPO), "CORRAL_ISOLATION": request.param}
    log = (tmp_path / "server.log").open("wb")
    # nsenter switches only the network namespace (`ip netns exec` would also remount /sys,
    # hiding the cgroup hierarchy the runtime needs).
    enter = ["nsenter", f"--net={net.world_path}"]
    server = subprocess.Popen([*enter, sys.executable, "-m", "corral.cli.main", "serve",
                               "--port", str(PORT), "--data-dir", str(data)], stdout=log, stderr=subprocess.STDOUT,
                              env=env, cwd=REPO)
    try:
        cenv = {**env, "E2B_API_KEY": E2E_KEY, "E2B_API_URL": f"http://127.0.0.1:{PORT}",
                "E2B_SANDBOX_URL": f"http://127.0.0.1:{PORT}"}
        done = subprocess.run([*enter, sys.executable, "-m", "tests.e2e.egress_client"], env=cenv,
                              capture_output=True, text=True, timeout=600, cwd=REPO)
        assert done.returncode == 0, done.stderr[-3000:] + (tmp_path / "server.log").read_text()[-3000:]
        yield json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        # A stopped server leaves its sandboxes running (for re-adoption); if the client failed
        # half-way, kill what it made, from inside the namespace where the server listens.
        subprocess.run([*enter, sys.executable, "-c", KILL_ALL, f"http://127.0.0.1:{PORT}", E2E_KEY],
                       env=env, cwd=REPO, capture_output=True, timeout=120)
        server.terminate()
        server.wait(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(net.close())
        pending = asyncio.all_tasks(loop)  # connection handlers of the fake internet
        for task in pending:
            task.cancel()
        if pending:  # gather() of nothing would look for a current loop, and there is none here
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
    # Nothing of the sandboxes' networks is left in the world namespace (it is gone with the test).
    assert not any((data / "network" / "sandboxes").glob("*.json"))


def test_sdk_network_rules_are_enforced_end_to_end(results) -> None:  # type: ignore[no-untyped-def]
    r = results
    assert r["offline"] == {"api_http": "fail", "raw_ip": "fail", "host": "fail"}
    allowed = r["allowed"]
    assert allowed["api_http"] == "200" and allowed["api_https"] == "200"
    assert allowed["api_echo"] == "ping"                          # a domain rule works on any port
    assert allowed["api_by_ip"] == "200"                          # the pinned address itself
    for denied in ("other_http", "raw_ip", "metadata", "host", "rebind_loop", "rebind_meta"):
        assert allowed[denied] == "fail", (denied, allowed)
    assert r["info_internet"] is False
    assert r["updated"] == {"api_http": "fail", "other_http": "200"}   # runtime update took effect
    if r["tier"] == "namespace":   # a filesystem-mode pause and resume keep the (updated) rules
        assert r["after_resume"] == {"pause": 204, "api_http": "fail", "other_http": "200", "raw_ip": "fail",
                                     "metadata": "fail"}
    audit = r["audit"]
    assert audit["attached"] is True
    text = json.dumps(audit)
    assert OTHER_IP in text and "api.themoviedb.test" in text       # allowed traffic is recorded
    assert RAW_IP in text or METADATA_IP in text                     # and denied attempts too
    # The byte budget cuts egress once spent: the 200 kB download stops short, later requests fail.
    assert r["budget_first"] == "fail" or int(r["budget_first"]) < 200_000
    assert r["budget_after"] == "fail"
    assert r["budget_audit"]["exhausted"] is True and r["budget_audit"]["limit"] == 50_000
    if r["tier"] == "namespace":   # ... and stays spent after a filesystem-mode pause and resume
        resumed = r["budget_resumed_audit"]
        assert r["budget_resumed"] == "fail", resumed
        assert resumed["budget"]["exhausted"] is True and resumed["budget"]["used"] >= r["budget_audit"]["used"]
        assert resumed["bytes_in_after"] >= resumed["bytes_in_before"] > 0
    inet = r["internet"]
    assert inet["raw_ip"] == "200" and inet["api_http"] == "200"      # internet on: public addresses
    assert inet["metadata"] == "fail" and inet["host"] == "fail"      # never the metadata service or host
