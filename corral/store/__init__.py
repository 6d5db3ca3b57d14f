"""Durable state: sandbox records and API keys (SQLite by default, any SQLAlchemy URL at scale)."""

from corral.store.db import Store
from corral.store.models import ApiKey, SandboxRecord, SandboxState

__all__ = ["ApiKey", "SandboxRecord", "SandboxState", "Store"]
