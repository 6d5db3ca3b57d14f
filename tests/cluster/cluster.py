"""The cluster under test: PostgreSQL from Debian's package (a throwaway cluster in a temp dir,
reached through its unix socket, which crosses network namespaces), API replicas on loopback and
node agents each in its own network namespace (`hosts.py`), all real `corral serve` processes.
`close` stops every process, kills what sandboxes are left, stops PostgreSQL and removes the
namespaces."""

from __future__ import annotations

import glob

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.cluster.hosts import Host, Hosts
from tests.conftest import E2E_KEY, REPO, _free_port
from tests.processes import stop
from tests.store.postgres import Cluster as Pg, start_cluster

NODE_PORT = 3000
GRACE_S = 6


@dataclass
class Proc:
    name: str
    url: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen | None = None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@dataclass
class CorralCluster:
    root: Path
    pg: Pg
    hosts: Hosts
    db: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    nodes: dict[str, Proc] = field(default_factory=dict)
    apis: list[Proc] = field(default_factory=list)
    leftover_cgroups: list[str] = field(default_factory=list)

    @property
    def db_url(self) -> str:
        return f"postgresql://{self.pg.user}@/{self.db}?host={self.pg.root}&port={self.pg.port}"

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "CORRAL_"))}
        return {**base, "CORRAL_DATABASE_URL": self.db_url, "CORRAL_NODE_SECRET": self.secret,
                "CORRAL_NODE_GRACE": str(GRACE_S), "CORRAL_NODE_HEARTBEAT": "1", "CORRAL_EGRESS": "off",
                "CORRAL_METRICS_INTERVAL": "0", "CORRAL_POOL": "", "CORRAL_CLUSTER_POOL": "base=3", "CORRAL_API_KEY": E2E_KEY,
                # The directories every node shares (docs/DEPLOY.md: a shared file system).
                "CORRAL_VOLUMES_DIR": str(self.root / "volumes"), "CORRAL_SNAPSHOTS_DIR": str(self.root / "snapshots"),
                # (Every create then passes the nodes' depot check: the nodes share one template
                # dir here, so nothing is fetched; tests/cluster/test_fetch.py fetches.)
                "CORRAL_TEMPLATE_DEPOT": str(self.root / "depot"),
                "PYTHONUNBUFFERED": "1", **extra}

    # --- processes ----------------------------------------------------------------------------

    def _spawn(self, proc: Proc, env: dict[str, str]) -> None:
        proc.popen = subprocess.Popen(proc.argv, stdout=proc.log.open("ab"), stderr=subprocess.STDOUT, env=env,
                                      cwd=REPO, start_new_session=True)

    def _healthy(self, proc: Proc, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.popen is not None
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited {proc.popen.returncode}:\n{proc.tail()}")
            try:
                if httpx.get(proc.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{proc.name} did not become healthy:\n{proc.tail()}")

    def start_node(self, index: int) -> Proc:
        host: Host = self.hosts.hosts[index]
        node_id = f"n{index}"
        url = f"http://{host.address}:{NODE_PORT}"
        argv = [*host.enter(), sys.executable, "-m", "corral.cli.main", "serve", "--role", "node", "--advertise", url,
                "--node-id", node_id, "--host", host.address, "--port", str(NODE_PORT),
                "--data-dir", str(self.root / node_id)]
        proc = Proc(node_id, url, argv, self.root / f"{node_id}.log")
        self._spawn(proc, self.env())
        self.nodes[node_id] = proc
        return proc

    def start_api(self, port: int | None = None) -> Proc:
        port = port or _free_port()
        name = f"api-{port}"
        argv = [sys.executable, "-m", "corral.cli.main", "serve", "--role", "api", "--host", "127.0.0.1",
                "--port", str(port), "--data-dir", str(self.root / name)]
        proc = Proc(name, f"http://127.0.0.1:{port}", argv, self.root / f"{name}.log")
        self._spawn(proc, self.env())
        self.apis.append(proc)
        return proc

    def wait(self, *procs: Proc) -> None:
        for p in procs:
            self._healthy(p)

    def kill(self, proc: Proc) -> None:
        """SIGKILL: a crash, with no goodbye to the registry."""
        if proc.popen is not None and proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGKILL)
            proc.popen.wait(timeout=30)

    def stop(self, proc: Proc) -> None:
        if proc.popen is not None:
            stop(proc.popen, timeout=60)

    def node_create(self, node_id: str, body: dict) -> httpx.Response:
        """A create sent straight to one node with the node credential, as a replica would send it."""
        return httpx.post(self.nodes[node_id].url + "/v2/sandboxes", json=body, timeout=120,
                          headers={"X-Corral-Node-Credential": self.secret})

    def psql(self, sql: str) -> str:
        return self.pg.psql(sql, db=self.db)

    def node_states(self) -> dict[str, str]:
        rows = self.psql("SELECT node_id, state FROM nodes")
        return dict(line.split("|") for line in rows.splitlines() if line)

    def wait_nodes(self, want: dict[str, str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.node_states()
            if all(states.get(k) == v for k, v in want.items()):
                return
            time.sleep(0.2)
        raise AssertionError(f"nodes never reached {want}: {self.node_states()}")

    def pooled(self) -> dict[str, int]:
        """Warm sandboxes per ready node (a lost node's rows stay until it comes back)."""
        rows = self.psql("SELECT s.node_id, count(*) FROM sandboxes s JOIN nodes n ON n.node_id = s.node_id "
                         "WHERE s.state = 'pooled' AND n.state = 'ready' GROUP BY s.node_id")
        return {n: int(k) for n, k in (line.split("|") for line in rows.splitlines() if line)}

    def wait_pooled(self, want: dict[str, int], timeout: float = 120) -> None:
        """Until the warm pools are spread as `want` (they fill in the background)."""
        deadline = time.monotonic() + timeout
        while self.pooled() != want:
            if time.monotonic() > deadline:
                raise AssertionError(f"warm pools never spread as {want}: {self.pooled()}")
            time.sleep(0.5)

    def owners(self) -> dict[str, str]:
        rows = self.psql("SELECT sandbox_id, node_id FROM sandboxes WHERE state IN ('running', 'paused')")
        return dict(line.split("|") for line in rows.splitlines() if line)

    # --- the end ------------------------------------------------------------------------------

    def kill_sandboxes_of(self, sandbox_ids: list[str]) -> None:
        """What a dying machine does to its sandboxes: every process in their cgroups gets SIGKILL."""
        for sid in sandbox_ids:
            for procs in map(Path, glob.glob(f"/sys/fs/cgroup/*/corral-*/{sid}/cgroup.procs")):
                try:
                    pids = procs.read_text().split()
                except OSError:
                    continue   # the janitor removed this cgroup between the glob and the read
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def close(self) -> None:
        """Stop every process, then end the sandboxes they leave running as a dying machine would
        (SIGKILL by cgroup: each spawner's janitor then removes their cgroups, their mounts and
        loop devices go with their mount namespaces), and check that nothing of theirs is left."""
        try:
            left = list(self.owners())
        except Exception:  # noqa: BLE001 - a cluster that failed to start may have no schema yet
            left = []
        try:
            for p in [*self.apis, *self.nodes.values()]:
                self.stop(p)
            self.kill_sandboxes_of(left)
        finally:
            try:
                self.pg.stop()
            finally:
                self.hosts.remove()
        self.leftover_cgroups = self._wait_cgroups_gone(left)

    @staticmethod
    def _wait_cgroups_gone(sandbox_ids: list[str], timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            left = [str(d) for sid in sandbox_ids for d in glob.glob(f"/sys/fs/cgroup/*/corral-*/{sid}")]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.5)


def start(root: Path, nodes: int, apis: int) -> CorralCluster:
    pg = start_cluster()
    try:
        hosts = Hosts.make(nodes)
    except BaseException:
        pg.stop()
        raise
    db = f"cluster_{uuid.uuid4().hex[:8]}"
    pg.create_database(db)
    c = CorralCluster(root=root, pg=pg, hosts=hosts, db=db)
    try:
        procs = [c.start_node(i) for i in range(nodes)]
        c.wait(*procs)      # nodes first: the first create must find them
        procs = [c.start_api() for _ in range(apis)]
        c.wait(*procs)
        c.wait_nodes({f"n{i}": "ready" for i in range(nodes)})
    except BaseException:
        c.close()
        raise
    return c
