"""The official Python SDK's `Template()` builder against a corral server: `Template.build` with
a run_cmd, a copy and an env makes a template, and a sandbox started from it shows all three.
A tag names a build: an older build's tag still starts that build. Also the SDK's view of
failures (a failing step raises BuildException naming it; an image corral cannot produce is
refused before anything runs), exists/tags, and the layer cache on a rebuild."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, start_server, stop_server
from tests.e2e.private_store import private_store

pytestmark = [pytest.mark.e2e, pytest.mark.root]


@pytest.fixture(scope="module")
def builder_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if os.geteuid() != 0:
        pytest.skip("the corral server needs root")
    root = tmp_path_factory.mktemp("builder")
    store = private_store(root / "store")
    srv = start_server(root / "data", extra_env={"CORRAL_TEMPLATE_DIR": str(store.root), "CORRAL_POOL": ""})
    with pytest.MonkeyPatch.context() as mp:
        for key, value in srv.env().items():
            mp.setenv(key, value)
        mp.delenv("E2B_DOMAIN", raising=False)
        yield srv
    stop_server(srv)


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print('hello from the copied app')\n")
    (tmp_path / "app" / "data.txt").write_text("data v1\n")
    return tmp_path


def test_template_build_then_a_sandbox_shows_run_copy_and_env(builder_server: Server, context: Path) -> None:
    from e2b import Sandbox, Template

    template = (
        Template(file_context_path=str(context))
        .from_image("python:3.11-slim")
        .set_envs({"APP_MODE": "built by corral"})
        .copy("app", "/home/user/app")
        .run_cmd("python --version > /home/user/built.txt && echo \"mode=$APP_MODE\" >> /home/user/built.txt")
    )
    logs = []
    info = Template.build(template, "sdk-built:v1", cpu_count=1, memory_mb=512, on_build_logs=logs.append)
    assert info.template_id == "sdk-built" and "v1" in info.tags
    messages = [str(getattr(e, "message", e)) for e in logs]
    assert any("RUN" in m for m in messages), messages

    sbx = Sandbox.create("sdk-built", timeout=120)
    try:
        built = sbx.commands.run("cat /home/user/built.txt").stdout
        assert built.startswith("Python 3.11") and "mode=built by corral" in built
        assert sbx.commands.run("python /home/user/app/main.py").stdout == "hello from the copied app\n"
        assert sbx.commands.run("echo $APP_MODE").stdout == "built by corral\n"
        assert sbx.commands.run("stat -c %U /home/user/app/data.txt").stdout.strip() == "user"
    finally:
        sbx.kill()

    assert Template.exists("sdk-built") and not Template.exists("never-built")
    assert [t.tag for t in Template.get_tags("sdk-built")] == ["v1"]

    # A rebuild with one changed file reuses the cached RUN-free prefix and reruns what follows.
    (context / "app" / "data.txt").write_text("data v2\n")
    again = []
    Template.build(template, "sdk-built:v2", on_build_logs=again.append)
    text = "\n".join(str(getattr(e, "message", e)) for e in again)
    assert "CACHED" in text and "Uploaded" in text
    sbx = Sandbox.create("sdk-built", timeout=60)
    try:
        assert sbx.commands.run("cat /home/user/app/data.txt").stdout == "data v2\n"
    finally:
        sbx.kill()

    # A tag names a build, as on E2B: `sdk-built:v1` still starts the first build after the second
    # replaced it, and follows the tag when it moves; a removed tag is a clear error.
    sbx = Sandbox.create("sdk-built:v1", timeout=60)
    try:
        assert sbx.commands.run("cat /home/user/app/data.txt").stdout == "data v1\n"
    finally:
        sbx.kill()
    moved = Template.assign_tags("sdk-built:v2", "prod")
    assert moved.build_id != info.build_id and moved.tags == ["prod"]
    assert {t.tag: t.build_id for t in Template.get_tags("sdk-built")} == {
        "v1": info.build_id, "v2": moved.build_id, "prod": moved.build_id}
    Template.remove_tags("sdk-built", "v1")
    with pytest.raises(Exception) as gone:
        Sandbox.create("sdk-built:v1", timeout=60)
    assert "no tag 'v1'" in str(gone.value)


def test_a_failing_step_raises_build_exception(builder_server: Server, context: Path) -> None:
    from e2b import Template
    from e2b.exceptions import BuildException

    template = Template(file_context_path=str(context)).from_image("debian:bookworm").run_cmd("echo before; exit 7")
    with pytest.raises(BuildException) as err:
        Template.build(template, "sdk-broken")
    assert "exit code 7" in str(err.value)


def test_an_image_corral_cannot_make_is_refused_with_what_works(builder_server: Server, context: Path) -> None:
    from e2b import Template
    from e2b.exceptions import BuildException

    with pytest.raises(BuildException) as err:
        Template.build(Template().from_image("ubuntu:24.04").run_cmd("true"), "sdk-ubuntu")
    text = str(err.value)
    assert "400" in text and "python:3.11" in text and "debian:bookworm" in text
