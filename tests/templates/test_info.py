import json
from pathlib import Path

import pytest

from corral.templates.info import TemplateCorrupt, TemplateInfo, TemplateResources


def _info(**kw):
    base = dict(name="base", created_at="2026-01-01T00:00:00Z", recipe_hash="sha256:ab",
                size_bytes=10, envd_version="0.6.4", path=Path("/store/base"))
    base.update(kw)
    return TemplateInfo(**base)


def test_round_trip_keeps_everything_but_the_path():
    info = _info(aliases=("b2",), resources=TemplateResources(4, 2048, 4096))
    text = info.to_json()
    assert "path" not in json.loads(text)
    again = TemplateInfo.from_json(text, Path("/other/base"))
    assert again.aliases == ("b2",) and again.resources.memory_mb == 2048
    assert again.rootfs == Path("/other/base/rootfs")
    assert again.cpu_count == 4 and again.disk_mb == 4096


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(format=99),
    lambda d: d.update(name="../etc"),
    lambda d: d.update(aliases=["../x"]),
    lambda d: d.update(build_log="../../etc/shadow"),
    lambda d: d.update(build_log=".hidden"),
    lambda d: d.update(resources={"cpu_count": -1}),
    lambda d: d.update(resources={"memory_mb": True}),
    lambda d: d.update(unexpected=1),
    lambda d: d.update(size_bytes="big"),
])
def test_untrustworthy_files_are_rejected(mutate):
    data = json.loads(_info().to_json())
    mutate(data)
    with pytest.raises(TemplateCorrupt):
        TemplateInfo.from_json(json.dumps(data), Path("/store/base"))


@pytest.mark.parametrize("text", ["", "[]", "{", "null"])
def test_garbage_is_rejected(text):
    with pytest.raises(TemplateCorrupt):
        TemplateInfo.from_json(text, Path("/store/base"))
