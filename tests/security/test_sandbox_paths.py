"""Paths given to the files API resolve inside the sandbox, whatever they contain: `..`
sequences, symlinks planted by code in the sandbox that point at host paths, /proc magic links.
A host marker file is planted first, so "not found" really means "not reachable".
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import Sandbox
from e2b.exceptions import FileNotFoundException, SandboxException

from tests.security.conftest import run

pytestmark = [pytest.mark.e2e, pytest.mark.root]


@pytest.fixture(scope="module")
def host_file(server) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    p = Path("/tmp") / f"corral-host-only-{uuid.uuid4().hex[:8]}"
    p.write_text("host secret " + uuid.uuid4().hex)
    yield p
    p.unlink(missing_ok=True)


def _sandbox_shadow(sbx: Sandbox) -> str:
    out = run(sbx, "cat /etc/shadow", user="root")
    assert out.exit_code == 0
    return out.stdout


@pytest.mark.parametrize("path", [
    "../../etc/shadow",
    "../../../../../../../../etc/shadow",
    "/home/user/../../etc/shadow",
    "/../../../etc/shadow",
    "//etc//shadow",
    "/proc/1/root/etc/shadow",
    "/proc/self/root/etc/shadow",
])
def test_traversal_reads_the_sandboxes_shadow(sbx: Sandbox, path: str) -> None:
    expected = _sandbox_shadow(sbx)
    assert expected != Path("/etc/shadow").read_text()
    try:
        got = sbx.files.read(path, user="root")
    except (FileNotFoundException, SandboxException):
        return  # refusing the path is fine too; what matters is never reaching the host's file
    assert got == expected


def test_traversal_as_user_cannot_read_shadow_at_all(sbx: Sandbox) -> None:
    with pytest.raises(SandboxException):
        sbx.files.read("../../etc/shadow")


def test_traversal_write_lands_inside(sbx: Sandbox) -> None:
    name = f"corral-trav-{uuid.uuid4().hex[:8]}"
    sbx.files.write(f"/home/user/../../../../tmp/{name}", "inside", user="root")
    assert not (Path("/tmp") / name).exists()
    assert run(sbx, f"cat /tmp/{name}").stdout == "inside"
    sbx.files.write_files([{"path": f"../../../tmp/{name}-multi", "data": "inside too"}], user="root")
    assert not (Path("/tmp") / f"{name}-multi").exists()
    assert run(sbx, f"cat /tmp/{name}-multi").stdout == "inside too"


def test_symlink_to_host_file_resolves_inside(sbx: Sandbox, host_file: Path) -> None:
    link = f"/home/user/link-{uuid.uuid4().hex[:8]}"
    assert run(sbx, f"ln -s {host_file} {link}").exit_code == 0
    with pytest.raises(FileNotFoundException):
        sbx.files.read(link)
    with pytest.raises(FileNotFoundException):
        sbx.files.read(link, user="root")
    assert sbx.files.exists(link) is False or sbx.files.get_info(link).type.value == "symlink"


def test_write_through_symlink_never_touches_the_host(sbx: Sandbox) -> None:
    host_target = Path("/tmp") / f"corral-host-write-{uuid.uuid4().hex[:8]}"
    link = f"/home/user/wlink-{uuid.uuid4().hex[:8]}"
    run(sbx, f"ln -s {host_target} {link}")
    try:
        sbx.files.write(link, "through the link", user="root")
    except SandboxException:
        pass  # refusing to follow the link is fine
    assert not host_target.exists()
    # If the write followed the link, it created the file inside the sandbox.
    inside = run(sbx, f"cat {host_target}", user="root")
    assert inside.exit_code != 0 or inside.stdout == "through the link"


def test_symlinked_directory_to_host_path_resolves_inside(sbx: Sandbox, server) -> None:  # type: ignore[no-untyped-def]
    data_dir = Path(server.data_dir)
    assert (data_dir / "sandboxes").is_dir()
    link = f"/home/user/dlink-{uuid.uuid4().hex[:8]}"
    run(sbx, f"ln -s {data_dir} {link}")
    with pytest.raises(FileNotFoundException):
        sbx.files.list(f"{link}/sandboxes")
    with pytest.raises(FileNotFoundException):
        sbx.files.read(f"{link}/corral.db", user="root")
    # Writing "into" the host data dir through the link must not create anything on the host.
    name = f"planted-{uuid.uuid4().hex[:8]}"
    try:
        sbx.files.write(f"{link}/{name}", "x", user="root")
    except SandboxException:
        pass
    assert not (data_dir / name).exists()


def test_list_of_root_is_the_sandboxes_root(sbx: Sandbox) -> None:
    via_api = sorted(e.name for e in sbx.files.list("/.."))
    # (find, not ls: the Debian bookworm runsc rejects the statx flag coreutils passes)
    via_ls = sorted(run(sbx, "find / -mindepth 1 -maxdepth 1 -printf '%f\\n'", user="root").stdout.split())
    assert via_api == via_ls
    # Everything at the sandbox's top level comes from its template, nothing from the host's /.
    from corral.templates import TemplateStore

    template_top = set(os.listdir(TemplateStore().get(sbx.get_info().template_id).rootfs))
    assert set(via_api) <= template_top, set(via_api) - template_top


def test_symlink_swap_race_stays_inside(sbx: Sandbox, host_file: Path) -> None:
    """Code in the sandbox flips a path between a file and a symlink to a host path while the
    API reads it; every read returns sandbox content or fails, never the host's."""
    path = f"/home/user/flip-{uuid.uuid4().hex[:8]}"
    flipper = sbx.commands.run(
        f"while :; do echo sandbox-content > {path}.f; mv -f {path}.f {path}; ln -sfn {host_file} {path}; done",
        background=True, timeout=0)
    try:
        host_text = host_file.read_text()
        for _ in range(60):
            try:
                got = sbx.files.read(path)
            except SandboxException:
                continue
            assert got != host_text
            assert got in ("", "sandbox-content\n")
    finally:
        flipper.kill()


def test_nul_byte_in_path_is_rejected_cleanly(sbx: Sandbox) -> None:
    with pytest.raises(SandboxException):
        sbx.files.read("/etc/hostname\x00/../shadow")
    assert sbx.commands.run("echo alive").stdout == "alive\n"
