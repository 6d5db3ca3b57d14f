"""Server settings: every knob in one typed place, with the embedded defaults `make run` uses.

Defaults come from the product spec's `SandboxSecurityConfig` (1024 MB, 2 CPUs, no internet, 5 minute
timeout) and E2B's documented limits (24 h maximum lifetime). Environment variables prefixed
`CORRAL_` override them; the CLI overrides both.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TEMPLATE_DIR = Path("/var/lib/corral/templates")
# One warm sandbox per common template (templates that are not built are skipped): the first
# create is then a hand-over, not a start. CORRAL_POOL="" turns pools off.
DEFAULT_POOL = "base=1,code-interpreter-v1=1"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def _env_path(name: str) -> Path | None:
    raw = os.environ.get(name)
    return Path(raw) if raw else None


def _csv(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


POOL_TIERS = ("namespace", "gvisor")


def parse_pool(spec: str) -> dict[str, int]:
    """`"code-interpreter-v1=2,base=1,base@gvisor=1"` -> {"code-interpreter-v1": 2, "base": 1,
    "base@gvisor": 1}. `TEMPLATE@TIER` is a pool of that tier's sandboxes (for requests that
    raise isolation above the template's); plain `TEMPLATE` pools run the template's own tier."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, count = part.partition("=")
        template, at, tier = name.strip().partition("@")
        if not sep or not template or not count.strip().isdigit() or (at and tier not in POOL_TIERS):
            raise ValueError(f"invalid pool entry {part!r}: expected TEMPLATE=COUNT or "
                             f"TEMPLATE@TIER=COUNT (TIER one of {', '.join(POOL_TIERS)})")
        out[name.strip()] = int(count)
    return out


@dataclass
class Ceilings:
    """The most any sandbox may get, whatever its template or request says."""

    cpu_count: int = 8
    memory_mb: int = 8192
    disk_mb: int = 20480
    pids_max: int = 4096
    timeout_s: int = 24 * 3600


# What one `corral serve` process is: everything on one machine ("all", the default), a stateless
# control plane ("api", any number of replicas), or the agent that runs one machine's sandboxes
# ("node"). API replicas and nodes meet only through the database (docs/DEPLOY.md, "Several machines").
ROLES: tuple[str, ...] = ("all", "api", "node")


# Isolation tiers by name, weakest first (the server default, a template's minimum and a request
# name one of these; corral.runtime.isolation orders and checks them).
ISOLATION_LEVELS: tuple[str, ...] = ("namespace", "gvisor", "microvm")


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 3000
    data_dir: Path = Path(".data")
    template_dir: Path | None = None
    # The default isolation tier (the weakest a sandbox may get): "namespace" or "gvisor". A
    # template may ask for more (e2b.toml `isolation`), a request too (metadata corral.isolation).
    tier: str = "namespace"
    default_timeout_s: int = 300
    # How long a paused sandbox is kept before it is deleted with its files (E2B: 30 days).
    paused_retention_s: int = 30 * 24 * 3600
    # Processes per sandbox (a template's cpu/memory/disk come with the template, see templates.info).
    pids_max: int = 512
    ceilings: Ceilings = field(default_factory=Ceilings)
    # Keys accepted in addition to those stored (hashed) in the data dir.
    env_api_keys: tuple[str, ...] = ()
    # Public base domain for `{port}-{id}.{domain}` hosts, and what create responses report.
    domain: str | None = None
    # Egress: whether sandboxes may be granted any (the ceiling), the private range their links
    # come from (one per server on a host), CIDRs no sandbox may reach, and DNS upstreams.
    egress: bool = True
    network_pool: str = "10.201.0.0/16"
    network_forbidden: tuple[str, ...] = ()
    dns_upstreams: tuple[str, ...] = ()
    # Warm pools: template name -> number of pre-started sandboxes kept ready.
    pool: dict[str, int] = field(default_factory=dict)
    # A cluster's warm pools (role node): template -> sandboxes kept ready over all ready nodes,
    # each node keeping its share (corral/cluster/pools.py); overrides `pool` for those templates.
    cluster_pool: dict[str, int] = field(default_factory=dict)
    # Metering: the price file `corral usage` prices with (None: E2B's rates, shipped), and how
    # often each running sandbox's resources are sampled into the metric history (0: never).
    prices: Path | None = None
    metrics_interval_s: float = 5.0
    # Where state lives: None is a SQLite file in the data dir (one machine); a URL such as
    # postgresql://user@host:5432/corral shares it between machines.
    database_url: str | None = None
    # "required": code-interpreter calls need the sandbox's access or traffic token (the current
    # SDKs send one). "optional": a sandbox with public traffic also takes calls without one, as
    # E2B's cloud does; for clients built on e2b-code-interpreter < 2 (e2b-mcp-server 0.1.x), which
    # never send a token. Then the sandbox ID alone lets anyone who reaches the server run code.
    interpreter_token: str = "required"
    # Volumes (E2B's /volumes): where their images live (None: <data dir>/volumes; a shared file
    # system when several machines mount them), a new volume's size and the largest one allowed.
    volumes_root: Path | None = None
    # Where snapshots live (default <data dir>/snapshots); in a cluster, a directory every node shares.
    snapshots_root: Path | None = None
    volume_size_mb: int = 1024
    volume_max_size_mb: int = 64 * 1024
    # --- a cluster (roles api and node; docs/CONFIGURATION.md, "Cluster") ----------------------
    role: str = "all"
    # The node's name in the registry (its rows' `node_id`); set for role node only.
    node_id: str | None = None
    # The URL at which API replicas reach this node (role node).
    advertise_url: str | None = None
    # The secret API replicas present on every call to a node; a node answers nothing without it.
    node_secret: str | None = None
    # A node silent this long is marked lost; nodes heartbeat this often.
    node_grace_s: float = 30.0
    node_heartbeat_s: float = 5.0
    # TLS between API replicas and nodes: the node's certificate and key (role node), and the CA
    # API replicas verify nodes with (role api; None: the system's trust store).
    node_tls_cert: Path | None = None
    node_tls_key: Path | None = None
    node_ca: Path | None = None
    # Placement samples this many healthy nodes per create and takes the least loaded (best-of-K).
    placement_k: int = 2
    # How long an API replica trusts a key it checked against the database (revocation takes this long).
    key_cache_s: float = 5.0

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        s = cls(
            host=os.environ.get("CORRAL_HOST", "127.0.0.1"),
            port=_env_int("CORRAL_PORT", 3000),
            data_dir=Path(os.environ.get("CORRAL_DATA_DIR", ".data")),
            template_dir=Path(os.environ["CORRAL_TEMPLATE_DIR"]) if os.environ.get("CORRAL_TEMPLATE_DIR") else None,
            tier=os.environ.get("CORRAL_ISOLATION") or os.environ.get("CORRAL_TIER") or "namespace",
            default_timeout_s=_env_int("CORRAL_DEFAULT_TIMEOUT", 300),
            paused_retention_s=_env_int("CORRAL_PAUSED_RETENTION", 30 * 24 * 3600),
            env_api_keys=tuple(k.strip() for k in os.environ.get("CORRAL_API_KEY", "").split(",") if k.strip()),
            domain=os.environ.get("CORRAL_DOMAIN") or None,
            pool=parse_pool(os.environ.get("CORRAL_POOL", DEFAULT_POOL)),
            cluster_pool=parse_pool(os.environ.get("CORRAL_CLUSTER_POOL", "")),
            egress=os.environ.get("CORRAL_EGRESS", "on").lower() not in ("off", "0", "false", "no"),
            network_pool=os.environ.get("CORRAL_NETWORK_POOL") or "10.201.0.0/16",
            network_forbidden=_csv(os.environ.get("CORRAL_NETWORK_FORBIDDEN", "")),
            dns_upstreams=_csv(os.environ.get("CORRAL_DNS_UPSTREAMS", "")),
            prices=Path(os.environ["CORRAL_PRICES"]) if os.environ.get("CORRAL_PRICES") else None,
            metrics_interval_s=_env_int("CORRAL_METRICS_INTERVAL", 5),
            database_url=os.environ.get("CORRAL_DATABASE_URL") or None,
            interpreter_token=os.environ.get("CORRAL_INTERPRETER_TOKEN", "required"),
            volumes_root=Path(os.environ["CORRAL_VOLUMES_DIR"]) if os.environ.get("CORRAL_VOLUMES_DIR") else None,
            snapshots_root=Path(os.environ["CORRAL_SNAPSHOTS_DIR"]) if os.environ.get("CORRAL_SNAPSHOTS_DIR") else None,
            volume_size_mb=_env_int("CORRAL_VOLUME_SIZE_MB", 1024),
            volume_max_size_mb=_env_int("CORRAL_VOLUME_MAX_SIZE_MB", 64 * 1024),
            role=os.environ.get("CORRAL_ROLE") or "all",
            node_id=os.environ.get("CORRAL_NODE_ID") or None,
            advertise_url=os.environ.get("CORRAL_ADVERTISE") or None,
            node_secret=os.environ.get("CORRAL_NODE_SECRET") or None,
            node_grace_s=_env_float("CORRAL_NODE_GRACE", 30.0),
            node_heartbeat_s=_env_float("CORRAL_NODE_HEARTBEAT", 5.0),
            node_tls_cert=_env_path("CORRAL_NODE_TLS_CERT"),
            node_tls_key=_env_path("CORRAL_NODE_TLS_KEY"),
            node_ca=_env_path("CORRAL_NODE_CA"),
            placement_k=_env_int("CORRAL_PLACEMENT_K", 2),
            key_cache_s=_env_float("CORRAL_KEY_CACHE", 5.0),
        )
        if s.interpreter_token not in ("required", "optional"):
            raise ValueError(f"CORRAL_INTERPRETER_TOKEN must be required or optional, got {s.interpreter_token!r}")
        for key, value in overrides.items():
            if value is not None:
                setattr(s, key, value)
        s.data_dir = Path(s.data_dir).resolve()
        if s.cluster_pool:
            # A node starts with none of those and keeps its share once it sees the registry; one
            # server alone is a cluster of one, whose share is the whole pool.
            s.pool = {**s.pool, **({t: 0 for t in s.cluster_pool} if s.role == "node" else s.cluster_pool)}
        s.check_cluster()
        return s

    def check_cluster(self) -> None:
        """The role's settings agree with each other (a clear error at start, never a half-up node)."""
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.node_grace_s <= 0 or self.node_heartbeat_s <= 0 or self.node_heartbeat_s >= self.node_grace_s:
            raise ValueError("CORRAL_NODE_HEARTBEAT must be positive and shorter than CORRAL_NODE_GRACE")
        if self.placement_k < 1:
            raise ValueError("CORRAL_PLACEMENT_K must be at least 1")
        if self.role == "all":
            self.node_id = None    # an all-in-one server owns the rows no node owns
            return
        if not self.node_secret or len(self.node_secret) < 16:
            raise ValueError(f"role {self.role} needs CORRAL_NODE_SECRET (at least 16 characters), "
                             "the same on every API replica and node")
        if self.role == "node":
            if not self.advertise_url or not self.advertise_url.startswith(("http://", "https://")):
                raise ValueError("role node needs --advertise URL (http:// or https://), where API replicas reach it")
            if bool(self.node_tls_cert) != bool(self.node_tls_key):
                raise ValueError("CORRAL_NODE_TLS_CERT and CORRAL_NODE_TLS_KEY go together")
            self.node_id = self.node_id or socket.gethostname()
        else:
            self.node_id = None

    @property
    def sandboxes_dir(self) -> Path:
        return self.data_dir / "sandboxes"

    @property
    def volumes_dir(self) -> Path:
        return Path(self.volumes_root).resolve() if self.volumes_root else self.data_dir / "volumes"

    @property
    def snapshots_dir(self) -> Path:
        return Path(self.snapshots_root).resolve() if self.snapshots_root else self.data_dir / "snapshots"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "corral.db"

    @property
    def database(self) -> str | Path:
        """What `Store` opens: the configured URL, else the data dir's SQLite file."""
        return self.database_url or self.db_path
