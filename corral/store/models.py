"""Tables. A sandbox row outlives the sandbox (state `killed`) so usage can be metered later."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class SandboxState(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    POOLED = "pooled"      # pre-started, waiting in a warm pool for a create request
    KILLED = "killed"

    @classmethod
    def live(cls) -> tuple["SandboxState", ...]:
        """States that hold host resources (and a uid range)."""
        return (cls.STARTING, cls.RUNNING, cls.PAUSED, cls.POOLED)


class SandboxRecord(Base):
    __tablename__ = "sandboxes"

    sandbox_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(128))
    alias: Mapped[str | None] = mapped_column(String(128), nullable=True)
    client_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    tier: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    killed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    kill_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cpu_count: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_mb: Mapped[int] = mapped_column(Integer)
    pids_max: Mapped[int] = mapped_column(Integer)
    uid_slot: Mapped[int] = mapped_column(Integer)
    workdir: Mapped[str] = mapped_column(Text)
    envd_version: Mapped[str] = mapped_column(String(16))
    envd_access_token: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Sent by the SDK on code-interpreter calls (and, for sandboxes without public traffic, on
    # user ports); checked by the server's proxy.
    traffic_access_token: Mapped[str | None] = mapped_column(String(128), nullable=True)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    allow_internet_access: Mapped[bool] = mapped_column(default=False)
    # False: requests to the sandbox's own ports need the traffic token (E2B's allowPublicTraffic).
    public_traffic: Mapped[bool] = mapped_column(default=True)
    # The sandbox's egress rules as E2B expresses them ({"allowOut": [...], "denyOut": [...]}).
    network: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    on_timeout: Mapped[str] = mapped_column(String(8), default="kill")
    # The rest of E2B's lifecycle: the mode an auto-pause takes ("full" | "filesystem"; None:
    # full), and whether traffic resumes an auto-paused sandbox (None: no, E2B's default).
    auto_pause_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    auto_resume: Mapped[bool | None] = mapped_column(nullable=True)
    # The node agent that owns the sandbox; None on an all-in-one server (it owns every row).
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


class NodeState(str, enum.Enum):
    READY = "ready"          # heartbeating, takes new sandboxes
    DRAINING = "draining"    # heartbeating, keeps its sandboxes, takes no new ones
    LOST = "lost"            # missed heartbeats past the grace: its sandboxes answer an error


class NodeRecord(Base):
    """A machine that runs sandboxes (`corral serve --role node`), as it last reported itself.

    API replicas place creates by these rows and route sandbox traffic to `advertise_url`; a row
    whose heartbeat is older than the grace is marked lost by whichever replica notices first.
    """

    __tablename__ = "nodes"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    advertise_url: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[str] = mapped_column(String(32))
    tiers: Mapped[list] = mapped_column(JSON, default=list)
    # Template names the node has on disk (placement prefers nodes that need not fetch one).
    templates: Mapped[list] = mapped_column(JSON, default=list)
    cpu_count: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    memory_free_mb: Mapped[int] = mapped_column(Integer)
    sandboxes: Mapped[int] = mapped_column(Integer, default=0)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotentCreate(Base):
    """A create made under an `Idempotency-Key`: a retry with the same key (from the same API
    key) and the same body gets this sandbox again; a different body is refused. Kept until
    `expires_at` (24 h), in the store so that it survives a restart."""

    __tablename__ = "idempotent_creates"

    # Whose key it is (a hash of the caller's API key), so one tenant's keys never meet another's.
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    sandbox_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class VolumeRecord(Base):
    """A named persistent directory (E2B's team volume): an ext4 image of `size_mb` under the
    volumes directory, mounted into every sandbox that asks for it by name.

    `team` is who owns it. corral has one team per server (every API key of a server sees every
    sandbox), so it is "corral" today; the column is there so a multi-team server scopes by it."""

    __tablename__ = "volumes"
    __table_args__ = (UniqueConstraint("team", "name", name="uq_volumes_team_name"),)

    volume_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    team: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    # The bearer token E2B hands out for the volume content API (`VolumeAndToken.token`).
    token: Mapped[str] = mapped_column(String(128))
    size_mb: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VolumeMountRecord(Base):
    """Which volume a sandbox has mounted where. A row lives as long as its sandbox's row is live
    (running or paused: a filesystem-mode resume mounts it again), which is what "in use" means."""

    __tablename__ = "volume_mounts"

    sandbox_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(64), index=True)
