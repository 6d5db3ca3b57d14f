"""A cluster's warm pools, spread over its ready nodes and rebalanced when nodes come and go.

`CORRAL_CLUSTER_POOL="base=6"` on the nodes means six warm `base` sandboxes in the whole cluster.
After every heartbeat each node reads the ready nodes from the registry (the same rows every node
reads, so every node computes the same split) and keeps its share: the total divided by the
ready nodes, the remainder going to the first nodes by id. When a node is lost, the others'
shares grow to keep the total; when it comes back, they shrink again (the extras are killed).
A node that is not ready itself keeps none. `CORRAL_POOL` stays a fixed per-node count for the
templates the cluster pool does not name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def shares(totals: Mapping[str, int], ready: Sequence[str], me: str) -> dict[str, int]:
    """This node's share of each template's cluster pool."""
    order = sorted(ready)
    if me not in order:
        return {t: 0 for t in totals}
    rank, n = order.index(me), len(order)
    return {t: total // n + (1 if rank < total % n else 0) for t, total in totals.items()}
