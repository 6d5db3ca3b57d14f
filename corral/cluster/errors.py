"""The cluster's failures, each a clear `{"code", "message"}` the SDKs show as it is."""

from __future__ import annotations

from corral.errors import CorralError


class ClusterUnavailable(CorralError):
    """The sandbox's node, or any node at all, cannot serve the request now (503)."""

    status = 503


def node_lost(sandbox_id: str, node_id: str) -> ClusterUnavailable:
    return ClusterUnavailable(f"sandbox {sandbox_id} is on node {node_id}, which is lost (it stopped "
                              "heartbeating); the sandbox cannot be reached until that node comes back")


def node_unreachable(node_id: str) -> str:
    return f"node {node_id} did not answer (it is marked lost if it stays silent past the grace period)"


def no_node(template: str | None = None) -> ClusterUnavailable:
    what = f" for template {template}" if template else ""
    return ClusterUnavailable(f"no ready node can take a sandbox{what}: every node is lost, draining or full")
