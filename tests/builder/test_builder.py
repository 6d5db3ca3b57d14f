"""End to end, as root: a Dockerfile using every instruction becomes a template through real
build sandboxes; the layer cache makes rebuilds no-ops; COPY cannot leave the context; a failing
step names itself; a sandbox runs from the result. RUN steps here need no network."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from corral.runtime.base import SandboxSpec
from corral.runtime.namespace import NamespaceTier
from corral.templates import TemplateStore
from corral.builder import StepFailed, build_dockerfile, load, load_image_config
from corral.builder.sandbox import BuildSandboxes, StepLimits
from corral.templates.info import TemplateInfo

pytestmark = [pytest.mark.root, pytest.mark.e2e]

REAL_STORE = Path("/var/lib/corral/templates")

DOCKERFILE = """ARG BASE=debian:bookworm
FROM ${BASE}
ARG GREETING=hello
ENV APP_HOME=/opt/app MODE=test
LABEL purpose="corral test"
WORKDIR $APP_HOME
COPY app/ ./
COPY --chown=user:user --chmod=0640 secret.txt /home/user/secret.txt
ADD notes.txt /opt/notes/
RUN echo "$GREETING from $MODE in $(pwd)" > greeting.txt && rm /etc/issue && mkdir -p /root/x && ln -s /etc /opt/app/etc-link
USER user
RUN id -un > /home/user/whoami.txt
CMD ["python3", "main.py"]
"""


@pytest.fixture
def store(tmp_path: Path) -> TemplateStore:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        real = TemplateStore(REAL_STORE).get("base")
    except Exception:
        pytest.skip("the base template is not built (make template)")
    store = TemplateStore(tmp_path / "store")
    with store.stage("base") as stage:
        subprocess.run(["cp", "-a", "-l", str(real.rootfs), str(stage.rootfs)], check=True)
        stage.commit(TemplateInfo(name="base", created_at=real.created_at, recipe_hash=real.recipe_hash,
                                  size_bytes=real.size_bytes, envd_version=real.envd_version, path=stage.path))
    return store


def _context(tmp_path: Path, dockerfile: str = DOCKERFILE) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True, exist_ok=True)
    (ctx / "e2b.toml").write_text('[template]\nname = "tiny"\nstart_cmd = "echo up"\n'
                                  '[template.resources]\ncpu_count = 1\nmemory_mb = 512\n'
                                  '[template.network]\ninternet_access = true\nallowed_hosts = ["example.com"]\n')
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "app" / "main.py").write_text("print('main')\n")
    (ctx / "secret.txt").write_text("s3cret\n")
    (ctx / "notes.txt").write_text("notes\n")
    return ctx


async def _build(store: TemplateStore, ctx: Path, **kw):
    return await build_dockerfile(store, load(ctx), network=False, step_limits=StepLimits(memory_mb=512, disk_mb=1024),
                                  **kw)


async def test_build_cache_and_a_sandbox_from_the_result(store: TemplateStore, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    first = await _build(store, ctx)
    assert not first.skipped and first.steps_run == 7 and first.steps_cached == 0
    root = first.info.rootfs
    assert (root / "opt/app/greeting.txt").read_text() == "hello from test in /opt/app\n"
    assert (root / "home/user/whoami.txt").read_text() == "user\n"
    assert not (root / "etc/issue").exists()                      # a deletion (whiteout) carried over
    assert (root / "opt/app/main.py").read_text() == "print('main')\n"
    assert (root / "opt/notes/notes.txt").read_text() == "notes\n"
    secret = os.stat(root / "home/user/secret.txt")
    assert (secret.st_uid, secret.st_gid, secret.st_mode & 0o777) == (1000, 1000, 0o640)
    assert os.stat(root / "root/x").st_uid == 0                  # owners shifted back from the build uid range
    assert os.readlink(root / "opt/app/etc-link") == "/etc"
    assert first.info.resources.cpu_count == 1 and first.info.resources.memory_mb == 512
    image = load_image_config(first.info.path)
    assert image is not None and image.env == {"APP_HOME": "/opt/app", "MODE": "test"}
    assert image.user == "user" and image.workdir == "/opt/app" and image.cmd == ["python3", "main.py"]
    assert image.start_cmd == "echo up" and image.labels == {"purpose": "corral test"}
    assert image.network == {"internet_access": True, "allowed_hosts": ["example.com"]}
    assert "RUN id -un" in first.info.build_log_path.read_text()

    again = await _build(store, ctx)
    assert again.skipped and again.steps_run == 0 and again.steps_cached == 7
    assert again.info.created_at == first.info.created_at

    (ctx / "Dockerfile").write_text(DOCKERFILE.replace("id -un >", "id -u >"))
    changed = await _build(store, ctx)
    assert not changed.skipped and changed.steps_run == 1 and changed.steps_cached == 6
    assert (changed.info.rootfs / "home/user/whoami.txt").read_text() == "1000\n"

    (ctx / "app" / "main.py").write_text("print('v2')\n")         # a COPY source changed
    rebuilt = await _build(store, ctx)
    assert rebuilt.steps_run == 5 and rebuilt.steps_cached == 2

    # A sandbox (real envd) from the published template sees the files.
    tier = NamespaceTier(state_dir=Path("/var/lib/corral/test-runtime-state"), cgroup_group=f"corral-test-{os.getpid()}")
    await tier.start()
    workdir = tmp_path / "sbx"
    sid = f"tdf{os.getpid()}"
    try:
        handle = await tier.create(SandboxSpec(sid, "tiny", rebuilt.info.rootfs, workdir, uid_base=4_000_000_000 - 65536 * 3))
        sandboxes = BuildSandboxes(tmp_path / "unused")
        out: list[bytes] = []
        result = await sandboxes._exec(handle.envd_socket, ["/bin/sh", "-c", "cat /opt/app/greeting.txt; python3 /opt/app/main.py"],
                                       user="user", cwd="/opt/app", env={}, output=lambda _s, d: out.append(d), timeout=60)
        assert result.exit_code == 0, result
        assert b"".join(out).decode() == "hello from test in /opt/app\nv2\n"
    finally:
        await tier.destroy(sid, workdir)
        await tier.close()
    assert not workdir.exists()


@pytest.mark.parametrize("copy_line, needle", [
    ("COPY ../outside.txt /x", "outside the build context"),
    ("COPY /etc/passwd /x", "absolute"),
    ("COPY link /x", "outside the build context"),
    ("COPY linkdir/ /x", "outside the build context"),
])
async def test_copy_cannot_escape_the_context(store: TemplateStore, tmp_path: Path, copy_line: str, needle: str) -> None:
    (tmp_path / "outside.txt").write_text("host secret")
    ctx = _context(tmp_path, f"FROM debian:bookworm\n{copy_line}\n")
    os.symlink(tmp_path / "outside.txt", ctx / "link")
    os.symlink("/etc", ctx / "linkdir")
    with pytest.raises(StepFailed, match=needle) as info:
        await _build(store, ctx)
    assert "line 2" in str(info.value)
    assert not store.exists("tiny")


async def test_failing_step_names_itself_and_shows_output(store: TemplateStore, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM debian:bookworm\nRUN echo before\nRUN echo visible-output; echo to-stderr >&2; exit 3\n")
    with pytest.raises(StepFailed) as info:
        await _build(store, ctx)
    assert "line 3" in str(info.value) and "exit code 3" in str(info.value)
    assert "visible-output" in info.value.output and "to-stderr" in info.value.output
    assert not store.exists("tiny")
    # the first RUN's layer was kept: fixing the second step reruns only it
    (ctx / "Dockerfile").write_text("FROM debian:bookworm\nRUN echo before\nRUN true\n")
    fixed = await _build(store, ctx)
    assert fixed.steps_run == 1 and fixed.steps_cached == 2


async def test_unknown_base_image_is_a_clear_error(store: TemplateStore, tmp_path: Path) -> None:
    for image, needle in (("ubuntu:24.04", "no registry"), ("python:3.12-slim", "Python 3.11 only"),
                          ("nosuchtemplate", "no template 'nosuchtemplate'")):
        ctx = _context(tmp_path, f"FROM {image}\nRUN true\n")
        with pytest.raises(StepFailed, match=needle):
            await _build(store, ctx)


async def test_run_step_has_no_network(store: TemplateStore, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM debian:bookworm\nRUN cat /proc/net/dev > /netdev && ! python3 -c "
                             "\"import socket; socket.create_connection(('203.0.113.1', 80), timeout=2)\"\n")
    result = await _build(store, ctx)
    assert "eth0" not in (result.info.rootfs / "netdev").read_text()
