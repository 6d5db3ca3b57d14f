"""Configuration by the spec's names (§7.2)."""

from __future__ import annotations

import pytest

from corral.mediagateway import ConfigError, Settings
from corral.mediagateway.settings import DEFAULT_TEMPLATES, parse_templates

CONFIGMAP_TEMPLATES = """discovery: media-gateway-agent
analysis: media-gateway-analysis
search: media-gateway-search
browser: e2b/desktop
"""


def test_configmap_block_parses_as_written():
    assert parse_templates(CONFIGMAP_TEMPLATES) == {
        "discovery": "media-gateway-agent", "analysis": "media-gateway-analysis",
        "search": "media-gateway-search", "scraping": "e2b/desktop"}


def test_templates_merge_over_defaults():
    s = Settings.from_env({"E2B_TEMPLATES": "search: my-search\n# comment\n\n"})
    assert s.template_for("search") == "my-search"
    assert s.template_for("sona") == DEFAULT_TEMPLATES["sona"]


@pytest.mark.parametrize("block", ["discovery media-gateway-agent", "unknown: x", "search:", ": x", "search: two words"])
def test_bad_template_lines(block):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"E2B_TEMPLATES": block})
    assert err.value.field == "E2B_TEMPLATES"


def test_base_url_of_a_corral_server_is_api_and_sandbox_url():
    s = Settings.from_env({"E2B_API_KEY": "k", "E2B_BASE_URL": "http://127.0.0.1:3000/"})
    assert (s.api_url, s.sandbox_url, s.domain) == ("http://127.0.0.1:3000", "http://127.0.0.1:3000", None)
    assert s.is_local
    assert s.sdk_options() == {"api_key": "k", "api_url": "http://127.0.0.1:3000", "sandbox_url": "http://127.0.0.1:3000"}


def test_base_url_of_e2b_cloud_sets_the_domain():
    s = Settings.from_env({"E2B_API_KEY": "k", "E2B_BASE_URL": "https://api.e2b.dev"})
    assert (s.api_url, s.sandbox_url, s.domain) == (None, None, "e2b.dev")
    assert not s.is_local


def test_sdk_variables_win_over_base_url():
    s = Settings.from_env({"E2B_BASE_URL": "http://127.0.0.1:3000", "E2B_API_URL": "http://127.0.0.1:4000",
                           "E2B_DOMAIN": "e2b.localhost:3443"})
    assert (s.api_url, s.sandbox_url, s.domain) == ("http://127.0.0.1:4000", "http://127.0.0.1:3000", "e2b.localhost:3443")


def test_defaults_for_timeout_and_memory():
    s = Settings.from_env({"E2B_DEFAULT_TIMEOUT": "90", "E2B_DEFAULT_MEMORY": "2048"})
    assert (s.default_security.timeout_seconds, s.default_security.memory_mb) == (90, 2048)


@pytest.mark.parametrize("env,name", [
    ({"E2B_DEFAULT_TIMEOUT": "soon"}, "E2B_DEFAULT_TIMEOUT"), ({"E2B_DEFAULT_TIMEOUT": "0"}, "E2B_DEFAULT_TIMEOUT"),
    ({"E2B_DEFAULT_MEMORY": "64"}, "E2B_DEFAULT_MEMORY"), ({"E2B_BASE_URL": "ftp://x"}, "E2B_BASE_URL"),
    ({"E2B_API_URL": "not a url"}, "E2B_API_URL"),
])
def test_bad_values_are_one_clear_error(env, name):
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert err.value.field == name and name in str(err.value)
