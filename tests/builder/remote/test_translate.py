"""The SDK's build steps -> corral's Dockerfile: E2B's defaults, per-RUN users, cache busting,
COPY ownership, and that what comes out parses as the builder will read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.errors import InvalidRequest
from corral.builder.remote.dockerfile import translate
from corral.builder.remote.records import Records
from corral.builder.remote.spec import parse_build
from corral.builder import parse

H = "a" * 64


def _spec(steps: list[dict], **extra) -> dict:
    return {"fromImage": "python:3.11-slim", "steps": steps, **extra}


def test_translation_keeps_e2b_semantics_and_parses() -> None:
    spec = parse_build(_spec([
        {"type": "RUN", "args": ["apt-get update\napt-get install -y jq", "root"]},
        {"type": "COPY", "args": ["./app dir", "/home/user/app/", "", "0755"], "filesHash": H},
        {"type": "USER", "args": ["root"]},
        {"type": "COPY", "args": ["conf", "/etc/app/"], "filesHash": H, "force": True},
        {"type": "ENV", "args": ["MSG", "it's $HOME", "EMPTY", ""]},
        {"type": "RUN", "args": ["echo done"]},
    ], startCmd="sleep infinity", readyCmd="true"))
    t = translate(spec, build_id="b-1")
    lines = t.dockerfile.splitlines()
    assert lines[:3] == ["FROM python:3.11-slim", "USER user", "WORKDIR /home/user"]
    assert lines[3:6] == ["USER root", 'RUN ["/bin/bash", "-c", "apt-get update\\napt-get install -y jq"]', "USER user"]
    assert lines[6] == 'COPY --chown=user --chmod=0755 ["' + H + '/app dir", "/home/user/app/"]'
    assert lines[7] == "USER root"
    assert lines[8] == "ARG CORRAL_SKIP_CACHE=b-1"           # forced from step 4 on
    assert lines[9] == 'COPY ["' + H + '/conf", "/etc/app/"]'  # root-owned: no --chown
    assert lines[10] == "ENV MSG='it'\"'\"'s $HOME' EMPTY=''"
    assert [t.step_of(i) for i in range(1, len(lines) + 1)] == \
        ["base", "base", "base", "1", "1", "1", "2", "3", "4", "4", "5", "6"]
    assert t.step_of(99) == "finalize"
    parsed = parse(t.dockerfile)                              # the builder's own parser accepts it
    assert [i.keyword for i in parsed][:4] == ["FROM", "USER", "WORKDIR", "USER"]
    run = parsed[4]
    assert run.exec_form and run.args[2] == "apt-get update\napt-get install -y jq"
    env = next(i for i in parsed if i.keyword == "ENV")
    assert env.args == ("MSG", "it's $HOME", "EMPTY", "")


def test_whole_template_force_busts_from_the_start() -> None:
    t = translate(parse_build(_spec([{"type": "RUN", "args": ["true"]}], force=True)), build_id="b-2")
    assert t.dockerfile.splitlines()[3] == "ARG CORRAL_SKIP_CACHE=b-2"


@pytest.mark.parametrize("steps, needle", [
    ([{"type": "ENV", "args": ["A", "line1\nline2"]}], "single line"),
    ([{"type": "WORKDIR", "args": ["/a\nRUN evil"]}], "single line"),
    ([{"type": "WORKDIR", "args": ["$HOME/x"]}], "'$'"),
    ([{"type": "COPY", "args": ["a\nRUN x", "/d"], "filesHash": H}], "single line"),
    ([{"type": "COPY", "args": ["a", "/d", "user --chmod=777"], "filesHash": H}], "not a user name"),
    ([{"type": "COPY", "args": ["a", "/d", "", "999"], "filesHash": H}], "octal"),
    ([{"type": "RUN", "args": ["x\x00y"]}], "NUL"),
    ([{"type": "RUN", "args": ["true", "bad user"]}], "not a user name"),
    ([{"type": "USER", "args": ["user\nRUN rm -rf /"]}], "single line"),
])
def test_nothing_can_smuggle_a_dockerfile_line(steps, needle) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_build(_spec(steps))
    assert needle in str(err.value)


def test_records_survive_a_restart_and_unfinished_builds_become_errors(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    records = Records(path)
    records.new_build("app", "b1", 1, 512, ["v1"])
    records.set_status("app", "b1", "ready")
    records.new_build("app", "b2", 1, 512, ["v2"])
    records.set_status("app", "b2", "building")
    again = Records(path)
    rec = again.get("app")
    assert rec is not None and rec.tags["v1"]["build_id"] == "b1" and "v2" not in rec.tags
    assert [b.status for b in rec.builds] == ["ready", "error"] and "stopped" in (rec.builds[1].reason or "")
    assert json.loads(path.read_text())["templates"]["app"]["cpu_count"] == 1
