"""The tier's payload is named, not imported: the zygote resolves it, and a missing one is refused."""

from __future__ import annotations

import subprocess
import sys

from corral.runtime.base import Payload
from corral.runtime.namespace import zygote
from corral.wire.constants import ENVD_PAYLOAD


def test_the_default_payload_is_envd_by_import_path() -> None:
    payload = Payload(*ENVD_PAYLOAD)
    loaded = zygote.load_payload({"entry_point": payload.entry_point, "preload": [],
                                  "process_name": payload.process_name})
    assert loaded is not None and loaded.process_name == b"envd"
    from corral.envd.server import serve_handoff
    assert loaded.serve is serve_handoff


def test_preloads_are_called_and_plain_modules_imported(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    import corral.wire.handoff as target
    monkeypatch.setattr(target, "preload_probe", lambda: calls.append("called"), raising=False)
    loaded = zygote.load_payload({"entry_point": "corral.wire.handoff:EnvdConfig",
                                  "preload": ["corral.wire.handoff:preload_probe", "corral.wire.framing"]})
    assert calls == ["called"]
    assert loaded is not None and loaded.process_name == b"init"


def test_a_payload_that_cannot_be_imported_is_none() -> None:
    assert zygote.load_payload({"entry_point": "corral.no_such_module:serve"}) is None
    assert zygote.load_payload({"entry_point": "corral.wire.handoff:no_such_function"}) is None
    assert zygote.load_payload({}) is None


def test_the_runtime_does_not_import_the_in_sandbox_side() -> None:
    code = ("import sys, corral.runtime.namespace.tier, corral.runtime.namespace.zygote, "
            "corral.runtime.namespace.launch; "
            "bad = [m for m in sys.modules if m.startswith(('corral.envd', 'corral.interpreter', 'corral.guest'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
