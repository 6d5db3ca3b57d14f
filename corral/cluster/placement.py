"""Where a new sandbox goes: best-of-K over the ready nodes, as E2B's orchestrator does.

Sample K nodes at random among the ready ones that have the template on disk (all ready nodes
when none has it: the chosen one fetches it from the shared template store), and take the least
loaded: live sandboxes (counted from the rows, which every replica writes through its nodes) plus
the creates this replica has in flight there, per GB of the node's memory. Random sampling keeps
replicas that decide at the same moment from all piling onto the one emptiest node; taking the
best of the sample keeps the spread even. A node short of memory (below `min_free_mb` available)
takes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence

from corral.cluster.errors import no_node
from corral.store import NodeRecord

MIN_FREE_MB = 256


def load(node: NodeRecord, live: Mapping[str, int], inflight: Mapping[str, int]) -> float:
    count = live.get(node.node_id, 0) + inflight.get(node.node_id, 0)
    return count / max(1.0, node.memory_mb / 1024)


def choose(nodes: Sequence[NodeRecord], template: str | None, live: Mapping[str, int],
           inflight: Mapping[str, int], k: int, *, exclude: Collection[str] = (),
           rng: random.Random | None = None, min_free_mb: int = MIN_FREE_MB) -> NodeRecord:
    rng = rng or random.Random()
    fit = [n for n in nodes if n.node_id not in exclude and n.memory_free_mb >= min_free_mb]
    if not fit:
        raise no_node(template)
    cached = [n for n in fit if template is not None and template in (n.templates or [])]
    pool = cached or fit
    sample = rng.sample(pool, min(k, len(pool)))
    return min(sample, key=lambda n: (load(n, live, inflight), n.node_id))
