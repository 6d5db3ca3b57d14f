"""`corral template ...` (corral/cli/template.py): one-line errors, exit 1, no traceback."""

import pytest
from typer.testing import CliRunner

from corral.cli.template import app
from corral.templates import TemplateStore

from .helpers import make_template, store_entries


@pytest.fixture
def store(tmp_path):
    return TemplateStore(tmp_path / "templates")


def run(store, *args):
    result = CliRunner().invoke(app, [*args, "--store", str(store.root)], env={"COLUMNS": "120"})
    return result.exit_code, result.output


def test_ls_empty_says_how_to_build(store):
    code, out = run(store, "ls")
    assert code == 0 and "corral template build-base" in out


def test_ls_shows_templates(store):
    make_template(store, "base")
    store.set_alias("code-interpreter-v1", "base")
    code, out = run(store, "ls")
    assert code == 0
    assert "base" in out and "code-interpreter-v1" in out and "1024 MB" in out


def test_rm(store):
    make_template(store, "base")
    code, out = run(store, "rm", "base")
    assert code == 0 and "Removed template base" in out
    assert store_entries(store.root) == []


@pytest.mark.parametrize("name, message", [
    ("missing", "not found"),
    ("../etc", "invalid template name"),
    ("/etc", "invalid template name"),
])
def test_rm_errors_are_one_line_exit_1(store, name, message):
    code, out = run(store, "rm", name)
    assert code == 1
    assert message in out and "Traceback" not in out
    assert out.strip().startswith("error:")


def test_rm_of_an_alias_points_to_unalias(store):
    make_template(store, "base")
    store.set_alias("b", "base")
    code, out = run(store, "rm", "b")
    assert code == 1 and "corral template unalias b" in out
    assert store.exists("base")


def test_alias_and_unalias(store):
    make_template(store, "base")
    assert run(store, "alias", "e2b-base", "base")[0] == 0
    assert store.get("e2b-base").name == "base"
    assert run(store, "unalias", "e2b-base")[0] == 0
    code, out = run(store, "unalias", "e2b-base")
    assert code == 1 and "no template has the alias" in out


@pytest.mark.root
def test_failed_build_shows_the_log_tail_and_leaves_nothing(store, tmp_path, monkeypatch):
    exe = tmp_path / "mmdebstrap"
    exe.write_text("#!/bin/sh\necho 'I: running apt-get update...'\necho 'E: the mirror is unreachable'\nexit 1\n")
    exe.chmod(0o755)
    monkeypatch.setattr("corral.templates.build.MMDEBSTRAP", str(exe))
    code, out = run(store, "build-base")
    assert code == 1
    assert "E: the mirror is unreachable" in out
    assert "nothing was left behind" in out and "Traceback" not in out
    assert store_entries(store.root) == []
