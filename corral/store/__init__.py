"""Durable state: sandbox records, API keys and metering (usage, pool events, sandbox logs, metric
history), in SQLite (one machine) or PostgreSQL (many), with the schema kept current by Alembic
migrations that run whenever the store is opened."""

from corral.store.db import Store
from corral.store.engine import StoreError
from corral.store.idempotency import IdempotencyKeys, Remembered
from corral.store.models import ApiKey, IdempotentCreate, NodeRecord, NodeState, SandboxRecord, SandboxState
from corral.store.nodes import NodeInfo, NodeRegistry
from corral.store.usage import UsageStart, UsageStore
from corral.store.volumes import NameTaken, VolumeElsewhere, VolumeRows
from corral.store.models import VolumeMountRecord, VolumeRecord
from corral.store.usage_models import MetricSample, PoolEvent, SandboxEvent, UsageRecord

__all__ = ["ApiKey", "IdempotencyKeys", "IdempotentCreate", "MetricSample", "NodeInfo", "NodeRecord", "NodeRegistry",
           "NodeState", "PoolEvent", "Remembered", "SandboxEvent", "SandboxRecord", "SandboxState", "Store", "StoreError",
           "UsageRecord", "UsageStart", "UsageStore", "NameTaken", "VolumeElsewhere", "VolumeMountRecord", "VolumeRecord", "VolumeRows"]
