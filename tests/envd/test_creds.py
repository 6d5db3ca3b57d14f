"""Per-thread filesystem identity: the worker acts as the user, the rest of the daemon stays root."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.envd.creds import UserExecutor
from corral.guest.users import User
from tests.envd.helpers import scratch_root

pytestmark = pytest.mark.root

USER = User(name="user", uid=1000, gid=1000, home="/", shell="/bin/sh", groups=(1000, 2000))


@pytest.fixture
def scratch() -> Iterator[Path]:
    # pytest's tmp_path lives under a 0700 root directory that user 1000 cannot traverse.
    base = Path(tempfile.mkdtemp(prefix="envd-creds", dir=scratch_root()))
    os.chmod(base, 0o755)
    d = base / "pub"
    d.mkdir()
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(base)


async def test_files_created_in_the_worker_belong_to_the_user(scratch: Path) -> None:
    ex = UserExecutor(max_workers=1)
    try:
        fd = await ex.run(USER, os.open, str(scratch / "mine"), os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        st = (scratch / "mine").stat()
        assert (st.st_uid, st.st_gid) == (1000, 1000)
        # the identity is restored afterwards: the same worker creates root files again
        fd = await ex.run(None, os.open, str(scratch / "roots"), os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        assert (scratch / "roots").stat().st_uid == 0
        assert os.geteuid() == 0
    finally:
        ex.shutdown()


async def test_the_user_cannot_read_a_root_only_file_and_supplementary_groups_apply(scratch: Path) -> None:
    secret = scratch / "secret"
    secret.write_text("s")
    os.chmod(secret, 0o600)
    shared = scratch / "group2000"
    shared.write_text("g")
    os.chown(shared, 0, 2000)
    os.chmod(shared, 0o640)
    ex = UserExecutor(max_workers=2)
    try:
        with pytest.raises(PermissionError):
            await ex.run(USER, Path.read_text, secret)
        assert await ex.run(USER, Path.read_text, shared) == "g"
        # a failing job does not leave the worker in the user's identity
        assert await ex.run(None, Path.read_text, secret) == "s"
        with pytest.raises(PermissionError):
            await ex.run(User("x", 1001, 1001, "/", "/bin/sh", (1001,)), Path.read_text, shared)
        # the event loop thread was never affected
        assert secret.read_text() == "s"
    finally:
        ex.shutdown()


def test_prestart_creates_distinct_worker_threads_without_blocking():
    import time

    from corral.envd.creds import UserExecutor

    ex = UserExecutor(max_workers=4)
    try:
        ex.prestart(2)
        deadline = time.monotonic() + 10
        while len(ex._pool._threads) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(ex._pool._threads) == 2
    finally:
        ex.shutdown()
