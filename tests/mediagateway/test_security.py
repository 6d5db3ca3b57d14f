"""SandboxSecurityConfig: the spec's defaults and the layer-3 ranges, each refused by field."""

from __future__ import annotations

import pytest

from corral.mediagateway import ConfigError, Language, SandboxSecurityConfig


def test_defaults_are_the_specs():
    c = SandboxSecurityConfig()
    assert (c.internet_access, c.allowed_hosts, c.timeout_seconds, c.memory_mb, c.cpu_cores) == (False, [], 60, 1024, 2)
    assert c.max_upload_bytes == 10 * 1024 * 1024
    assert c.max_download_bytes == 50 * 1024 * 1024


@pytest.mark.parametrize("field,value", [
    ("cpu_cores", 0), ("cpu_cores", 9), ("memory_mb", 511), ("memory_mb", 8193),
    ("timeout_seconds", 0), ("timeout_seconds", 24 * 3600 + 1), ("max_upload_bytes", -1), ("max_download_bytes", -1),
])
def test_out_of_range_values_name_the_field(field, value):
    with pytest.raises(ConfigError) as err:
        SandboxSecurityConfig(**{field: value})
    assert isinstance(err.value, ValueError)
    assert err.value.field == field and field in str(err.value)


def test_range_edges_are_accepted():
    SandboxSecurityConfig(cpu_cores=1, memory_mb=512, timeout_seconds=1)
    SandboxSecurityConfig(cpu_cores=8, memory_mb=8192, timeout_seconds=24 * 3600)


def test_hosts_without_internet_are_an_error():
    with pytest.raises(ConfigError) as err:
        SandboxSecurityConfig(allowed_hosts=["api.themoviedb.org"])
    assert err.value.field == "allowed_hosts"


@pytest.mark.parametrize("host", ["https://api.themoviedb.org", "api.themoviedb.org:443", "api.themoviedb.org/x",
                                  "10.0.0.1", "*", "localhost", "-bad.example.com", "a..b.com", "*.*.example.com", ""])
def test_hosts_must_be_host_names(host):
    with pytest.raises(ConfigError) as err:
        SandboxSecurityConfig(internet_access=True, allowed_hosts=[host])
    assert err.value.field == "allowed_hosts"


def test_good_hosts_and_wildcards():
    c = SandboxSecurityConfig(internet_access=True, allowed_hosts=["api.themoviedb.org", "*.justwatch.com"])
    assert c.allowed_hosts == ["api.themoviedb.org", "*.justwatch.com"]


def test_unknown_field_and_wrong_type_are_config_errors():
    with pytest.raises(ConfigError) as err:
        SandboxSecurityConfig(memory=2048)
    assert err.value.field == "memory"
    with pytest.raises(ConfigError) as err:
        SandboxSecurityConfig(cpu_cores="many")
    assert err.value.field == "cpu_cores"


def test_with_revalidates():
    with pytest.raises(ConfigError):
        SandboxSecurityConfig().with_(memory_mb=100)


def test_languages():
    assert [lang.as_str() for lang in Language] == ["python", "javascript", "typescript", "r", "java", "bash"]
