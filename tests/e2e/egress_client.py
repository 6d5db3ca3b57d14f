"""The SDK side of tests/e2e/test_egress.py, run inside the test's "world" network namespace.

Prints one JSON document: what each probe inside the sandboxes saw ("200", "ping" or "fail").
"""

from __future__ import annotations

import json
import os
import time

import httpx
from e2b import Sandbox

from tests.network.fakenet import API_IP, METADATA_IP, RAW_IP, WORLD_IP

URL = os.environ["E2B_API_URL"]

TARGETS = {
    "api_http": ("http", "api.themoviedb.test", 80),
    "api_https": ("https", "api.themoviedb.test", 443),
    "api_echo": ("tcp", "api.themoviedb.test", 7000),
    "other_http": ("http", "other.test", 80),
    "raw_ip": ("http", RAW_IP, 80),
    "api_by_ip": ("http", API_IP, 80),
    "metadata": ("http", METADATA_IP, 80),
    "host": ("tcp", WORLD_IP, 8000),
    "rebind_loop": ("http", "loop.rebind.test", 80),
    "rebind_meta": ("http", "meta.rebind.test", 80),
}

ECHO = "import socket, sys; s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4); s.sendall(b'ping'); print(s.recv(4).decode())"


def probe(sbx: Sandbox, name: str) -> str:
    kind, host, port = TARGETS[name]
    if kind == "http":
        cmd = f"curl -sS -m 4 -o /dev/null -w '%{{http_code}}' http://{host}:{port}/"
    elif kind == "https":
        cmd = f"curl -sSk -m 4 -o /dev/null -w '%{{http_code}}' https://{host}/"
    else:
        sbx.files.write("/tmp/echo.py", ECHO)
        cmd = f"python3 /tmp/echo.py {host} {port}"
    out = sbx.commands.run(f"{cmd} 2>/dev/null || echo fail", timeout=20).stdout.strip()
    return "fail" if not out or out.endswith("fail") else out  # curl prints 000 before failing


def main() -> None:
    for _ in range(300):
        try:
            if httpx.get(URL + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    out: dict[str, object] = {"tier": os.environ.get("CORRAL_ISOLATION", "namespace")}
    offline = Sandbox.create(timeout=300)
    out["offline"] = {k: probe(offline, k) for k in ("api_http", "raw_ip", "host")}
    allowed = Sandbox.create(timeout=300, network={"allow_out": ["api.themoviedb.test"]})
    out["info_internet"] = allowed.get_info().allow_internet_access
    out["allowed"] = {k: probe(allowed, k) for k in TARGETS}
    allowed.update_network({"allow_out": ["other.test"]})
    out["updated"] = {k: probe(allowed, k) for k in ("api_http", "other_http")}
    out["audit"] = httpx.get(f"{URL}/sandboxes/{allowed.sandbox_id}/network/audit",
                             headers={"X-API-Key": os.environ["E2B_API_KEY"]}).json()
    if out["tier"] == "namespace":
        # A filesystem-mode pause ends the sandbox's network namespace; the resume attaches a new
        # one with the rules it paused with (the updated ones).
        paused = httpx.post(f"{URL}/sandboxes/{allowed.sandbox_id}/pause", json={"memory": False},
                            headers={"X-API-Key": os.environ["E2B_API_KEY"]}, timeout=120).status_code
        allowed = Sandbox.connect(allowed.sandbox_id, timeout=300)
        out["after_resume"] = {"pause": paused, **{k: probe(allowed, k) for k in ("api_http", "other_http", "raw_ip",
                                                                                   "metadata")}}
    # corral's byte budget (an extension the SDK has no field for: created through the REST API).
    created = httpx.post(f"{URL}/v2/sandboxes", headers={"X-API-Key": os.environ["E2B_API_KEY"]}, json={
        "templateID": "base", "timeout": 300,
        "network": {"allowOut": ["api.themoviedb.test"], "egressBudgetBytes": 50_000}},
        timeout=120).json()   # (httpx's default 5 s is less than a gVisor create on a loaded machine)
    budgeted = Sandbox.connect(created["sandboxID"])
    bulk = "import socket; s = socket.create_connection(('api.themoviedb.test', 7001), timeout=4); s.sendall(b'x'); n = 0\nwhile True:\n    d = s.recv(65536)\n    if not d: break\n    n += len(d)\nprint(n)"
    budgeted.files.write("/tmp/bulk.py", bulk)
    out["budget_first"] = budgeted.commands.run("timeout 10 python3 /tmp/bulk.py 2>/dev/null || echo fail", timeout=30).stdout.strip()
    out["budget_after"] = probe(budgeted, "api_http")
    audit_url = f"{URL}/sandboxes/{budgeted.sandbox_id}/network/audit"
    before = httpx.get(audit_url, headers={"X-API-Key": os.environ["E2B_API_KEY"]}).json()
    out["budget_audit"] = before.get("budget")
    if out["tier"] == "namespace":
        # A spent budget stays spent across a filesystem-mode pause (a new network is made at the
        # resume: its quota and byte counters go on from the old one's, kept beside the layer).
        httpx.post(f"{URL}/sandboxes/{budgeted.sandbox_id}/pause", json={"memory": False},
                   headers={"X-API-Key": os.environ["E2B_API_KEY"]}, timeout=120).raise_for_status()
        budgeted = Sandbox.connect(budgeted.sandbox_id, timeout=300)
        out["budget_resumed"] = probe(budgeted, "api_http")
        after = httpx.get(audit_url, headers={"X-API-Key": os.environ["E2B_API_KEY"]}).json()
        out["budget_resumed_audit"] = {"budget": after.get("budget"),
                                       "bytes_in_before": before["bytes_in"], "bytes_in_after": after["bytes_in"]}
    budgeted.kill()
    neighbour = Sandbox.create(timeout=300, allow_internet_access=True)
    out["internet"] = {k: probe(neighbour, k) for k in ("raw_ip", "metadata", "host", "api_http")}
    for sbx in (offline, allowed, neighbour):
        sbx.kill()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
