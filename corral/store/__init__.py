"""Durable state: sandbox records and API keys, in SQLite (one machine) or PostgreSQL (many),
with the schema kept current by Alembic migrations that run whenever the store is opened."""

from corral.store.db import Store
from corral.store.engine import StoreError
from corral.store.idempotency import IdempotencyKeys, Remembered
from corral.store.models import ApiKey, IdempotentCreate, NodeRecord, NodeState, SandboxRecord, SandboxState
from corral.store.nodes import NodeInfo, NodeRegistry

__all__ = ["ApiKey", "IdempotencyKeys", "IdempotentCreate", "Remembered", "NodeInfo", "NodeRecord", "NodeRegistry", "NodeState", "SandboxRecord", "SandboxState",
           "Store", "StoreError"]
