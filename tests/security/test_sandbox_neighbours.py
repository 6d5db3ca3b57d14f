"""Two sandboxes of the same server must not see each other, and neither may hold a server
secret: the API key, or another sandbox's envd access token.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from e2b import Sandbox

from tests.security.conftest import run, run_py

pytestmark = [pytest.mark.e2e, pytest.mark.root]


@pytest.fixture(scope="module")
def pair(sdk) -> Iterator[tuple[Sandbox, Sandbox]]:  # type: ignore[no-untyped-def]
    a = Sandbox.create(timeout=900, metadata={"suite": "neighbours", "side": "a"})
    b = Sandbox.create(timeout=900, metadata={"suite": "neighbours", "side": "b"},
                       envs={"B_ONLY_SECRET": "b-secret-" + uuid.uuid4().hex})
    yield a, b
    a.kill()
    b.kill()


def _token(sbx: Sandbox) -> str:
    token = sbx._envd_access_token  # noqa: SLF001 - the SDK keeps it private; we need its value
    assert token, "the server must hand out an envd access token"
    return token


def test_files_written_in_a_are_absent_in_b(pair: tuple[Sandbox, Sandbox]) -> None:
    a, b = pair
    tag = uuid.uuid4().hex
    for path in (f"/home/user/a-{tag}", f"/tmp/a-{tag}", f"/dev/shm/a-{tag}"):
        assert run(a, f"echo {tag} > {path}").exit_code == 0
        assert a.files.read(path) == f"{tag}\n"
        assert b.files.exists(path) is False
        assert run(b, f"test -e {path}").exit_code != 0
    a.files.write(f"/root/a-{tag}", tag, user="root")
    assert b.files.exists(f"/root/a-{tag}", user="root") is False
    assert run(b, f"grep -rlsF --exclude-dir=proc --exclude-dir=sys {tag} /", user="root", timeout=300).stdout == ""


def test_processes_of_b_are_invisible_from_a(pair: tuple[Sandbox, Sandbox]) -> None:
    a, b = pair
    marker = f"corral-b-proc-{uuid.uuid4().hex[:8]}"
    handle = b.commands.run(f"exec -a {marker} sleep 600", background=True, timeout=0)
    try:
        assert marker in run(b, "ps -eo args").stdout
        assert marker not in run(a, "ps -eo args", user="root").stdout
        assert handle.pid not in {p.pid for p in a.commands.list()}
        # Same pid numbers may exist in both namespaces, but A's kill cannot reach B's process.
        run(a, f"kill -9 {handle.pid}", user="root")
        assert marker in run(b, "ps -eo args").stdout
    finally:
        handle.kill()


def test_hostnames_differ(pair: tuple[Sandbox, Sandbox]) -> None:
    a, b = pair
    ha, hb = run(a, "hostname").stdout.strip(), run(b, "hostname").stdout.strip()
    assert ha and hb and ha != hb


def test_b_envs_are_not_visible_in_a(pair: tuple[Sandbox, Sandbox]) -> None:
    a, b = pair
    secret = run(b, 'printf %s "$B_ONLY_SECRET"').stdout
    assert secret.startswith("b-secret-")
    assert secret not in run(a, "env", user="root").stdout


SCAN = r'''
import os, sys
# Hex on the command line, so this scan's own /proc/<pid>/cmdline never matches.
needles = [bytes.fromhex(n) for n in sys.argv[1:]]
hits = []
def check(label, data):
    for n in needles:
        if n in data:
            hits.append(f"{label}\t{needles.index(n)}")
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    for what in ("environ", "cmdline"):
        try:
            with open(f"/proc/{pid}/{what}", "rb") as f:
                check(f"/proc/{pid}/{what}", f.read())
        except OSError:
            pass
for root, dirs, files in os.walk("/", topdown=True):
    if root == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys")]
    for name in files:
        path = os.path.join(root, name)
        try:
            if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > 64 * 2**20:
                continue
            with open(path, "rb") as f:
                check(path, f.read())
        except OSError:
            pass
print("\n".join(hits))
'''


@pytest.mark.parametrize("user", ["root", "user"])
def test_no_server_secret_is_readable_inside(pair: tuple[Sandbox, Sandbox], server, user: str) -> None:  # type: ignore[no-untyped-def]
    """Scan every readable process environment and command line, and every file, for the API key
    and the other sandbox's access token. Canaries planted first prove the scan can find things."""
    a, b = pair
    canary = "canary-" + uuid.uuid4().hex
    a.files.write(f"/tmp/canary-{user}.txt", canary)
    handle = a.commands.run("sleep 600", envs={"CANARY_ENV": canary + "-env"}, user=user,  # type: ignore[arg-type]
                              background=True, timeout=0)
    try:
        out = run_py(a, SCAN, user=user, timeout=600, args=[n.encode().hex() for n in (canary, canary + "-env", server.api_key, _token(b))])
        assert out.exit_code == 0, out.stderr
        hits = [line.split("\t") for line in out.stdout.splitlines() if line]
        found = {int(i) for _, i in hits}
        assert 0 in found, "the scan cannot even find a planted file"
        assert any(label.endswith("/environ") and i == "1" for label, i in hits), f"the scan cannot read environments: {hits}"
        leaks = [label for label, i in hits if i in ("2", "3")]
        assert leaks == [], f"server secrets readable inside the sandbox: {leaks}"
    finally:
        handle.kill()


def test_own_access_token_is_not_in_user_processes(pair: tuple[Sandbox, Sandbox]) -> None:
    """The sandbox's own token lives in its daemon only; commands must not inherit it."""
    a, _ = pair
    token = _token(a)
    for user in ("user", "root"):
        env = run(a, "env; cat /proc/self/environ", user=user).stdout
        assert token not in env
    found = run(a, f"grep -rlsF --exclude-dir=proc --exclude-dir=sys -- {token} /", user="user", timeout=300)
    assert found.stdout.strip() == ""


def test_b_loopback_service_is_unreachable_from_a(pair: tuple[Sandbox, Sandbox]) -> None:
    a, b = pair
    port = 18123
    server = b.commands.run(f"python3 -m http.server {port} --bind 127.0.0.1", background=True, timeout=0)
    try:
        probe = (f"python3 -c \"import urllib.request as u; "
                 f"print(u.urlopen('http://127.0.0.1:{port}/', timeout=3).status)\"")
        # Control: inside B the service answers (retry while it starts up).
        for _ in range(50):
            if run(b, probe).stdout.strip() == "200":
                break
        assert run(b, probe).stdout.strip() == "200"
        out = run(a, probe, user="root")
        assert out.exit_code != 0
        assert "200" not in out.stdout
    finally:
        server.kill()
