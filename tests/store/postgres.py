"""A throwaway PostgreSQL cluster from Debian's package, for tests.

`initdb` into a fresh directory under /tmp, `pg_ctl start` listening on 127.0.0.1 at a free port
and on a unix socket in that directory, trust authentication (only this machine's loopback and the
socket can reach it), and `stop` removes everything. PostgreSQL refuses to run as root, so when
the tests run as root the cluster runs as the `postgres` user the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgError(RuntimeError):
    """A PostgreSQL tool failed; the message carries its own error text."""


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    user: str = "corral"
    _run_as: list[str] = field(default_factory=list)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, db: str = "postgres") -> str:
        """The plain URL an operator would write (no driver name in it)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def _pg(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self._run_as, str(self.bindir / tool), *args], capture_output=True, text=True,
                              timeout=timeout, cwd="/")
        if proc.returncode != 0:
            raise PgError(f"{tool} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def psql(self, sql: str, db: str = "postgres") -> str:
        return self._pg("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.root),
                        "-p", str(self.port), "-U", self.user, "-d", db, "-c", sql).stdout.strip()

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def start(self) -> "Cluster":
        self._pg("initdb", "-D", str(self.datadir), "-U", self.user, "--auth=trust", "-E", "UTF8",
                 "--no-locale", "--no-sync")
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200 "
                "-c shared_buffers=32MB")
        self._pg("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "log"), "-o", opts, "-w", "-t", "60",
                 "start", timeout=90)
        return self

    def stop(self) -> None:
        try:
            self._pg("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        except (PgError, subprocess.TimeoutExpired):
            pid_file = self.datadir / "postmaster.pid"
            if pid_file.exists():
                os.kill(int(pid_file.read_text().split()[0]), 9)
        shutil.rmtree(self.root, ignore_errors=True)


def _scratch_base() -> str:
    """A temp directory the postgres user can walk into (here /tmp itself may be 0700 root)."""
    for base in (tempfile.gettempdir(), "/var/tmp", "/dev/shm"):
        st = os.stat(base)
        if st.st_mode & 0o001:
            return base
    raise RuntimeError("no world-traversable temp directory for the PostgreSQL test cluster")


def start_cluster() -> Cluster:
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (make deps installs postgresql)")
    root = Path(tempfile.mkdtemp(prefix="corral-pg-", dir=_scratch_base() if os.geteuid() == 0 else None))
    run_as: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    os.chmod(root, 0o700)
    cluster = Cluster(bindir=bindir, root=root, port=_free_port(), _run_as=run_as)
    try:
        return cluster.start()
    except PgError as exc:
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        cluster.stop()
        raise RuntimeError(f"PostgreSQL did not start: {exc}\n{log}") from None
