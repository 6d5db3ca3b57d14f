"""The two cluster roles as ASGI applications.

- `api_app`: an API replica, the `ClusterRouter` over the shared database (no sandbox, no tier,
  no root needed), with API keys cached for CORRAL_KEY_CACHE seconds (`keys.py`).
- `node_app`: the ordinary server (`corral.api.create_app`: the same routes, lifecycle and tiers
  an all-in-one server runs) acting only on this node's own rows, behind `NodeGate`, with the
  heartbeat agent in its lifespan; API keys are not checked there, the node credential is. With a
  template depot (CORRAL_TEMPLATE_DEPOT), `TemplateFetch` fetches a create's template first.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from corral.api import create_app
from corral.api.auth import KeyRing
from corral.cluster.agent import heartbeat_hook
from corral.cluster.credential import NodeGate
from corral.cluster.directory import NodeDirectory
from corral.cluster.fetch import TemplateFetch
from corral.cluster.keys import CachedKeys
from corral.cluster.links import NodeLinks
from corral.cluster.router import ClusterRouter
from corral.config import Settings
from corral.store import Store
from corral.templates import TemplateStore


def api_app(settings: Settings) -> ClusterRouter:
    assert settings.role == "api" and settings.node_secret
    store = Store(settings.database)
    return ClusterRouter(settings, CachedKeys(KeyRing(store, settings.env_api_keys), settings.key_cache_s),
                         NodeDirectory(store, settings.node_grace_s),
                         NodeLinks(settings.node_secret, settings.node_ca))


def node_app(settings: Settings) -> ASGIApp:
    assert settings.role == "node" and settings.node_secret and settings.node_id
    app = create_app(settings, check_keys=False, hooks=[heartbeat_hook])
    return NodeGate(TemplateFetch(app, TemplateStore(settings.template_dir)), settings.node_secret)
