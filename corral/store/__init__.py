"""Durable state: sandbox records and API keys, in SQLite (one machine) or PostgreSQL (many),
with the schema kept current by Alembic migrations that run whenever the store is opened."""

from corral.store.db import Store
from corral.store.engine import StoreError
from corral.store.models import ApiKey, SandboxRecord, SandboxState

__all__ = ["ApiKey", "SandboxRecord", "SandboxState", "Store", "StoreError"]
