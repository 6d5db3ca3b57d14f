"""Request bodies and response documents, with E2B's field names.

Requests ignore unknown fields (newer SDKs add some); responses carry every field the SDK's parser
requires (`clientID` included, deprecated as it is).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from corral.store import SandboxRecord


class _Req(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def _str_map(v: Any) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        raise ValueError("must be an object of string values")
    return v


class NewSandbox(_Req):
    template_id: str = Field(alias="templateID", min_length=1, max_length=128)
    timeout: int | None = Field(default=None, ge=0)
    auto_pause: bool = Field(default=False, alias="autoPause")
    metadata: dict[str, str] = Field(default_factory=dict)
    env_vars: dict[str, str] = Field(default_factory=dict, alias="envVars")
    allow_internet_access: bool | None = None
    network: dict[str, Any] | None = None

    _maps = field_validator("metadata", "env_vars", mode="before")(_str_map)


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


def detail_doc(rec: SandboxRecord, domain: str | None) -> dict[str, Any]:
    doc = listed_doc(rec)
    doc.update(
        envdAccessToken=rec.envd_access_token,
        allowInternetAccess=rec.allow_internet_access,
        domain=domain,
        lifecycle={"autoResume": False, "onTimeout": rec.on_timeout},
    )
    if rec.network is not None:  # the SDK parses `network` as an object whenever the key is present
        doc["network"] = rec.network
    return doc
