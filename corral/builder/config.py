"""`e2b.toml`: which Dockerfile, the template's name, its default resources, network and commands.

The spec's layout is `[template] name, dockerfile, start_cmd, ready_cmd`,
`[template.resources] cpu_count, memory_mb[, disk_mb]` and
`[template.network] internet_access, allowed_hosts`. The flat keys E2B's own CLI writes
(`template_name`, `dockerfile`, `start_cmd`, `ready_cmd`, `cpu_count`, `memory_mb`, plus its
`template_id`/`team_id` bookkeeping) are read too, so an existing E2B template directory builds
as is. Unknown keys are errors: a misspelt `memory_mb` silently ignored would give sandboxes the
wrong limits.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.errors import InvalidRequest
from corral.network import NetworkPolicyError, from_spec
from corral.templates.info import TemplateResources
from corral.templates.names import TemplateNameError, check_name

CONFIG_FILE = "e2b.toml"
DOCKERFILE_CANDIDATES = ("e2b.Dockerfile", "Dockerfile")
_FLAT_KEYS = {"template_name", "dockerfile", "start_cmd", "ready_cmd", "cpu_count", "memory_mb",
              "template_id", "team_id", "template"}
_TEMPLATE_KEYS = {"name", "dockerfile", "start_cmd", "ready_cmd", "resources", "network"}
_RESOURCE_KEYS = {"cpu_count", "memory_mb", "disk_mb"}
_NETWORK_KEYS = {"internet_access", "allowed_hosts"}


class ConfigError(InvalidRequest):
    """e2b.toml is missing or wrong; the message names the key."""


@dataclass(frozen=True)
class NetworkDefaults:
    """What sandboxes of this template may reach (enforced by corral.network)."""

    internet_access: bool = False
    allowed_hosts: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"internet_access": self.internet_access, "allowed_hosts": list(self.allowed_hosts)}


@dataclass(frozen=True)
class TemplateConfig:
    name: str
    dockerfile: Path                      # absolute, inside the template directory
    context: Path                         # the template directory: COPY sources come from here
    resources: TemplateResources = field(default_factory=TemplateResources)
    network: NetworkDefaults = field(default_factory=NetworkDefaults)
    start_cmd: str | None = None
    ready_cmd: str | None = None


def _positive_int(value: object, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{CONFIG_FILE}: {key} must be a positive integer, got {value!r}")
    return value


def _optional_str(value: object, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ConfigError(f"{CONFIG_FILE}: {key} must be a non-empty string")
    return value


def _unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(f"{CONFIG_FILE}: unknown key {extra[0]!r} in {where} "
                          f"(allowed: {', '.join(sorted(allowed))})")


def load(directory: Path, *, name: str | None = None) -> TemplateConfig:
    """Read `directory/e2b.toml`; `name` overrides the file's name (the CLI's --name)."""
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory")
    path = directory / CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found (a template directory needs an {CONFIG_FILE})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    _unknown(data, _FLAT_KEYS, "the top level")
    section = data.get("template", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{CONFIG_FILE}: [template] must be a table")
    _unknown(section, _TEMPLATE_KEYS, "[template]")
    resources = section.get("resources", {})
    network = section.get("network", {})
    if not isinstance(resources, dict) or not isinstance(network, dict):
        raise ConfigError(f"{CONFIG_FILE}: [template.resources] and [template.network] must be tables")
    _unknown(resources, _RESOURCE_KEYS, "[template.resources]")
    _unknown(network, _NETWORK_KEYS, "[template.network]")

    chosen = name or section.get("name") or data.get("template_name")
    if chosen is None:
        raise ConfigError(f"{CONFIG_FILE}: [template] name is missing")
    try:
        check_name(chosen)
    except TemplateNameError as exc:
        raise ConfigError(f"{CONFIG_FILE}: {exc}") from None

    dockerfile_name = section.get("dockerfile", data.get("dockerfile"))
    if dockerfile_name is None:
        found = [c for c in DOCKERFILE_CANDIDATES if (directory / c).is_file()]
        if not found:
            raise ConfigError(f"{directory} has no e2b.Dockerfile or Dockerfile")
        dockerfile_name = found[0]
    if not isinstance(dockerfile_name, str) or not dockerfile_name:
        raise ConfigError(f"{CONFIG_FILE}: dockerfile must be a file name")
    dockerfile = (directory / dockerfile_name).resolve()
    if not dockerfile.is_relative_to(directory) or not dockerfile.is_file():
        raise ConfigError(f"{CONFIG_FILE}: dockerfile {dockerfile_name!r} is not a file inside {directory}")

    defaults = TemplateResources()
    cpu = _positive_int(resources.get("cpu_count", data.get("cpu_count", defaults.cpu_count)), "cpu_count")
    mem = _positive_int(resources.get("memory_mb", data.get("memory_mb", defaults.memory_mb)), "memory_mb")
    disk = _positive_int(resources.get("disk_mb", defaults.disk_mb), "disk_mb")

    internet = network.get("internet_access", False)
    hosts = network.get("allowed_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError(f"{CONFIG_FILE}: allowed_hosts must be a list of strings")
    try:
        from_spec(internet, hosts)          # the network package's own validation
    except NetworkPolicyError as exc:
        raise ConfigError(f"{CONFIG_FILE}: [template.network]: {exc}") from None

    return TemplateConfig(
        name=chosen, dockerfile=dockerfile, context=directory,
        resources=TemplateResources(cpu_count=cpu, memory_mb=mem, disk_mb=disk),
        network=NetworkDefaults(internet, tuple(hosts)),
        start_cmd=_optional_str(section.get("start_cmd", data.get("start_cmd")), "start_cmd"),
        ready_cmd=_optional_str(section.get("ready_cmd", data.get("ready_cmd")), "ready_cmd"),
    )
