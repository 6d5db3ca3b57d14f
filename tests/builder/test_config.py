"""e2b.toml: the spec's layout, E2B's flat keys, and refusals."""

from pathlib import Path

import pytest

from corral.builder.config import ConfigError, load


def _dir(tmp_path: Path, toml: str, dockerfile: str = "FROM debian:bookworm\n") -> Path:
    (tmp_path / "e2b.toml").write_text(toml)
    (tmp_path / "Dockerfile").write_text(dockerfile)
    return tmp_path


def test_spec_layout(tmp_path: Path) -> None:
    cfg = load(_dir(tmp_path, """[template]
name = "t1"
start_cmd = "run"
ready_cmd = "check"
[template.resources]
cpu_count = 1
memory_mb = 256
[template.network]
internet_access = true
allowed_hosts = ["api.example.com", "*.example.org"]
"""))
    assert cfg.name == "t1" and cfg.resources.cpu_count == 1 and cfg.resources.memory_mb == 256
    assert cfg.network.internet_access and cfg.network.allowed_hosts == ("api.example.com", "*.example.org")
    assert cfg.start_cmd == "run" and cfg.ready_cmd == "check" and cfg.dockerfile == tmp_path / "Dockerfile"


def test_e2b_flat_layout(tmp_path: Path) -> None:
    cfg = load(_dir(tmp_path, 'template_id = "abc"\ntemplate_name = "flat"\ncpu_count = 4\nmemory_mb = 4096\n'))
    assert cfg.name == "flat" and cfg.resources.cpu_count == 4


@pytest.mark.parametrize("toml, needle", [
    ('[template]\nname = "x"\nmemory = 5\n', "unknown key 'memory'"),
    ('[template]\nname = "x"\n[template.resources]\nmemory_mb = -1\n', "memory_mb must be a positive"),
    ('[template]\nname = "../x"\n', "invalid template name"),
    ('[template]\nname = "x"\ndockerfile = "../Dockerfile"\n', "not a file inside"),
    ('[template]\nname = "x"\n[template.network]\nallowed_hosts = ["a.com"]\n', "needs internet_access"),
    ('[template]\nname = "x"\n[template.network]\ninternet_access = true\nallowed_hosts = ["a b"]\n', "allowed_hosts"),
    ('[template\n', "e2b.toml"),
])
def test_bad_config_is_refused(tmp_path: Path, toml: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load(_dir(tmp_path, toml))


def test_missing_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="e2b.toml not found"):
        load(tmp_path)
