"""Many machines behind one API: node agents that register and heartbeat, API replicas that place
each create on a node and route every request to the node that owns its sandbox.

`corral serve --role api` runs `api_app`; `--role node` runs the ordinary server (`corral.api`)
behind `NodeGate`, with `NodeAgent` keeping its row in the registry. They meet only through the
database (docs/DEPLOY.md, "Several machines")."""

from corral.cluster.apps import api_app, node_app
from corral.cluster.guard import DatabaseGuard, GuardError

__all__ = ["DatabaseGuard", "GuardError", "api_app", "node_app"]
