"""Sandbox lists through an API replica: a lost node's sandboxes are not listed as running.

A node answers lists from the shared rows, where a sandbox on a node that stopped heartbeating
still reads `running` (its row must survive: the node may come back and re-adopt it). The replica
knows which nodes are lost, so it corrects the list the node gave:

- E2B's states (`running`, `paused`, the default both) never include a lost node's sandboxes:
  nobody can reach them, and the SDKs parse only those two states, so a third value in their
  lists would break `Sandbox.list()` for every sandbox;
- `state=lost` (corral's own value, alone or beside the others) lists them, with state `lost`;
- `X-Corral-Lost-Sandboxes` on every list says how many were left out (or shown as lost), so a
  client that sees fewer sandboxes than it made learns why.

Getting one of them (`GET /sandboxes/{id}`) is the router's 503 naming the lost node.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl, urlencode

from corral.cluster.directory import NodeDirectory
from corral.errors import InvalidRequest
from corral.store import NodeState

LIST_PATHS = {"/sandboxes", "/v2/sandboxes"}
LOST = "lost"
E2B_STATES = ("running", "paused")
HEADER = b"x-corral-lost-sandboxes"


def node_query(query: str) -> tuple[str, set[str]]:
    """The query to send the node (states it knows) and the states the client asked for."""
    pairs = parse_qsl(query, keep_blank_values=True)
    asked: set[str] = set()
    for k, v in pairs:
        if k == "state":
            asked |= {s.strip() for s in v.split(",") if s.strip()}
    if not asked:
        return query, set(E2B_STATES)
    bad = asked - {*E2B_STATES, LOST}
    if bad:
        raise InvalidRequest(f"invalid state filter: {', '.join(sorted(bad))} (expected running, paused, lost)")
    # A lost node's sandbox may be running or paused in its row: ask for both to find them all.
    states = set(E2B_STATES) if LOST in asked else asked
    out = [(k, v) for k, v in pairs if k != "state"] + [("state", ",".join(sorted(states)))]
    return urlencode(out), asked


async def lost_sandboxes(directory: NodeDirectory) -> set[str]:
    await directory.refresh()
    lost = [n.node_id for n in await directory.nodes() if n.state == NodeState.LOST.value]
    out: set[str] = set()
    for node_id in lost:
        out |= {r.sandbox_id for r in await asyncio.to_thread(directory.store.nodes.sandboxes_on, node_id)}
    return out


def corrected(body: bytes, asked: set[str], lost: set[str]) -> tuple[bytes, int]:
    """The node's list with lost sandboxes left out or marked; and how many there were."""
    try:
        items = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return body, 0
    if not isinstance(items, list):
        return body, 0
    out = []
    count = 0
    for item in items:
        sid = item.get("sandboxID") if isinstance(item, dict) else None
        if sid in lost:
            count += 1
            if LOST in asked:
                out.append({**item, "state": LOST})
        elif not isinstance(item, dict) or item.get("state") in asked:
            out.append(item)
    return json.dumps(out).encode(), count
