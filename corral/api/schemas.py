"""Request bodies and response documents, with E2B's field names.

A request body is parsed here once into the lifecycle's typed requests (`CreateRequest`,
`NetworkUpdate`): E2B's `network` object becomes an `EgressPolicy` through corral.network's
policy model, corral's create extensions become typed values (see extensions.py), and every
mistake is an `InvalidRequest` (400) with a message. Requests ignore unknown top-level fields
(newer SDKs add some); responses carry every field the SDK's parser requires (`clientID`
included, deprecated as it is).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from corral.api.extensions import parse_extensions, resource_request
from corral.errors import InvalidRequest
from corral.lifecycle import CreateRequest, NetworkRequest, NetworkUpdate
from corral.network import EgressPolicy, NetworkPolicyError, from_e2b
from corral.store import SandboxRecord

# E2B network fields with meaning beyond allowOut/denyOut, in both spellings the SDKs send.
_PUBLIC_TRAFFIC = ("allowPublicTraffic", "allow_public_traffic")
_BUDGET = ("egressBudgetBytes", "egress_budget_bytes")     # corral's extension: bytes before egress is cut
_IGNORED = ("dnsServers", "dns_servers")   # accepted, ignored: the resolver intercepts every DNS query
_UNSUPPORTED = ("egressProxy", "egress_proxy", "rules")     # refused on update; ignored on create (as before)
_ALLOW_INTERNET = ("allow_internet_access", "allowInternetAccess")


def _first(body: dict[str, Any], keys: tuple[str, ...], default: Any = None) -> Any:
    for key in keys:
        if key in body:
            return body[key]
    return default


def _egress(allow_internet_access: Any, network: dict[str, Any]) -> EgressPolicy:
    fields = {k: v for k, v in network.items()
              if k not in _IGNORED + _UNSUPPORTED + _BUDGET + _ALLOW_INTERNET}
    try:
        return from_e2b(allow_internet_access, fields, byte_budget=_first(network, _BUDGET))
    except NetworkPolicyError as exc:
        raise InvalidRequest(str(exc)) from None


def network_request(allow_internet_access: bool | None, network: dict[str, Any] | None) -> NetworkRequest:
    """E2B's create fields `allow_internet_access` and `network`."""
    if network is not None and not isinstance(network, dict):
        raise InvalidRequest("network: expected an object with allowOut / denyOut")
    asked = allow_internet_access is not None or bool(network)
    egress = _egress(allow_internet_access, network or {}) if asked else None
    public = _first(network or {}, _PUBLIC_TRAFFIC, True)
    if not isinstance(public, bool):
        raise InvalidRequest("network.allowPublicTraffic: expected true or false")
    echo = {k: v for k, v in (network or {}).items() if k not in _IGNORED} if asked else None
    return NetworkRequest(egress=egress, public_traffic=public, echo=echo)


def network_update(body: dict[str, Any]) -> NetworkUpdate:
    """E2B's `PUT /sandboxes/{id}/network` body."""
    for key in _UNSUPPORTED:
        if body.get(key):
            raise InvalidRequest(f"network.{key} is not supported by corral")
    allow = _first(body, _ALLOW_INTERNET)
    egress = _egress(allow if allow is not None else False, body)
    return NetworkUpdate(egress=egress, echo={k: v for k, v in body.items() if k in ("allowOut", "denyOut")})


class _Req(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def _str_map(v: Any) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        raise ValueError("must be an object of string values")
    return v


class VolumeMountBody(_Req):
    """E2B's SandboxVolumeMount: a volume by name, mounted at an absolute path."""

    name: str = Field(min_length=1, max_length=64)
    path: str = Field(min_length=1, max_length=1024)


class NewSandbox(_Req):
    template_id: str = Field(alias="templateID", min_length=1, max_length=128)
    timeout: int | None = Field(default=None, ge=0)
    auto_pause: bool = Field(default=False, alias="autoPause")
    auto_pause_memory: StrictBool | None = Field(default=None, alias="autoPauseMemory")
    auto_resume: StrictBool | dict[str, Any] | None = Field(default=None, alias="autoResume")
    metadata: dict[str, str] = Field(default_factory=dict)
    env_vars: dict[str, str] = Field(default_factory=dict, alias="envVars")
    allow_internet_access: bool | None = None
    network: dict[str, Any] | None = None
    corral: dict[str, Any] | None = None      # corral's create extensions (see extensions.py)
    volume_mounts: list[VolumeMountBody] | None = Field(default=None, alias="volumeMounts")

    _maps = field_validator("metadata", "env_vars", mode="before")(_str_map)

    def lifecycle(self) -> tuple[str | None, bool | None]:
        """(auto-pause mode, auto-resume) from E2B's `autoPauseMemory` and `autoResume`
        (`{"enabled": bool}`, or a bare bool from older clients), refusing what cannot hold:
        auto-resume without auto-pause, or with a filesystem-mode auto-pause (its processes are
        gone, so there is nothing traffic could wake)."""
        resume = self.auto_resume
        if isinstance(resume, dict):
            enabled = resume.get("enabled")
            if enabled is not None and not isinstance(enabled, bool):
                raise InvalidRequest("autoResume.enabled must be a boolean")
            resume = enabled
        if not self.auto_pause:
            if resume:
                raise InvalidRequest("autoResume needs autoPause: a sandbox killed on its timeout cannot resume")
            return None, resume
        mode = None if self.auto_pause_memory is None else ("full" if self.auto_pause_memory else "filesystem")
        if mode == "filesystem" and resume:
            raise InvalidRequest("autoResume cannot be combined with autoPauseMemory false: a filesystem-mode "
                                 "pause keeps no process for traffic to wake; resume it with connect")
        return mode, resume

    def to_request(self) -> CreateRequest:
        extensions = parse_extensions(self.metadata, self.corral)
        pause_mode, auto_resume = self.lifecycle()
        return CreateRequest(
            template=self.template_id, timeout=self.timeout, metadata=dict(self.metadata),
            env_vars=dict(self.env_vars), auto_pause=self.auto_pause, auto_pause_mode=pause_mode,
            auto_resume=auto_resume,
            network=network_request(self.allow_internet_access, self.network),
            resources=resource_request(extensions), isolation=extensions.get("isolation"),
            volume_mounts=tuple((m.name, m.path) for m in self.volume_mounts or ()),
        )


class TimeoutBody(_Req):
    timeout: int = Field(ge=0)


class RefreshBody(_Req):
    duration: int = Field(default=60, ge=0)


class ConnectBody(_Req):
    timeout: int | None = Field(default=None, ge=0)


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sandbox_doc(rec: SandboxRecord, domain: str | None) -> dict[str, Any]:
    return {
        "templateID": rec.template_id,
        "sandboxID": rec.sandbox_id,
        "clientID": rec.client_id,
        "alias": rec.alias,
        "envdVersion": rec.envd_version,
        "envdAccessToken": rec.envd_access_token,
        "trafficAccessToken": rec.traffic_access_token,
        "domain": domain,
    }


def listed_doc(rec: SandboxRecord) -> dict[str, Any]:
    return {
        "templateID": rec.template_id,
        "sandboxID": rec.sandbox_id,
        "clientID": rec.client_id,
        "alias": rec.alias,
        "startedAt": _ts(rec.started_at),
        "endAt": _ts(rec.end_at),
        "cpuCount": rec.cpu_count,
        "memoryMB": rec.memory_mb,
        "diskSizeMB": rec.disk_mb,
        "state": rec.state,
        "envdVersion": rec.envd_version,
        "metadata": rec.metadata_ or {},
    }


def auto_resumes(rec: SandboxRecord) -> bool:
    """Whether traffic resumes the sandbox once it auto-paused (lifecycle/service.auto_resume)."""
    return rec.on_timeout == "pause" and rec.auto_resume is True and (rec.auto_pause_mode or "full") == "full"


def detail_doc(rec: SandboxRecord, domain: str | None) -> dict[str, Any]:
    doc = listed_doc(rec)
    doc.update(
        envdAccessToken=rec.envd_access_token,
        allowInternetAccess=rec.allow_internet_access,
        domain=domain,
        lifecycle={"autoResume": auto_resumes(rec), "onTimeout": rec.on_timeout},
        # corral's extra field (E2B has none): the isolation tier the sandbox runs in.
        isolation=rec.tier,
    )
    if rec.network is not None:  # the SDK parses `network` as an object whenever the key is present
        doc["network"] = rec.network
    return doc
