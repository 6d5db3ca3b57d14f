"""Tables for metering: what each sandbox cost, what the warm pools did, what a sandbox logged,
and its resource samples over time. They live in the store (not in server memory) so that
`corral usage`, the dashboard and `get_metrics(start, end)` see the same history after a restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from corral.store.models import Base


class UsageRecord(Base):
    """One row per sandbox handed to a client. Seconds are accumulated at every state change;
    `state_since` is when the current state began, so a live row is read as `seconds + (now -
    state_since)` for its current state."""

    __tablename__ = "sandbox_usage"

    sandbox_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    template: Mapped[str] = mapped_column(String(128), index=True)  # the name the client asked for
    template_id: Mapped[str] = mapped_column(String(128))
    tier: Mapped[str] = mapped_column(String(16))
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    cpu_count: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    from_pool: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    state: Mapped[str] = mapped_column(String(16))  # running | paused | ended
    state_since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    running_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    egress_bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    egress_bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)


class PoolEvent(Base):
    """A warm-pool hit (a create served from the pool), miss (a create for a pooled template that
    found the pool empty) or refill (one sandbox started into the pool, with how long it took)."""

    __tablename__ = "pool_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    template: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class SandboxEvent(Base):
    """What `GET /sandboxes/{id}/logs` returns: the server's log of one sandbox's life."""

    __tablename__ = "sandbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sandbox_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    level: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(Text)
    fields: Mapped[dict] = mapped_column(JSON, default=dict)


class MetricSample(Base):
    """One resource sample in E2B's `SandboxMetric` terms, for `get_metrics(start, end)`."""

    __tablename__ = "sandbox_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sandbox_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cpu_count: Mapped[int] = mapped_column(Integer)
    cpu_used_pct: Mapped[float] = mapped_column(Float)
    mem_used: Mapped[int] = mapped_column(BigInteger)
    mem_total: Mapped[int] = mapped_column(BigInteger)
    mem_cache: Mapped[int] = mapped_column(BigInteger)
    disk_used: Mapped[int] = mapped_column(BigInteger)
    disk_total: Mapped[int] = mapped_column(BigInteger)
