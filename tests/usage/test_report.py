"""The §8 tables: grouping, per-day counts, average durations, monthly scaling and cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from corral.usage import build_report, load_prices
from corral.usage.report import seconds_of

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
E2B = load_prices()


@dataclass
class Row:
    sandbox_id: str
    created_at: datetime
    running_seconds: float
    metadata_: dict = field(default_factory=dict)
    template: str = "media-gateway-agent"
    tier: str = "namespace"
    cpu_count: int = 2
    memory_mb: int = 512
    state: str = "ended"
    state_since: datetime = T0
    paused_seconds: float = 0.0
    egress_bytes_out: int = 0
    egress_bytes_in: int = 0


def test_default_prices_are_e2bs_published_rates():
    assert E2B.vcpu_per_second == 0.000014 and E2B.gib_ram_per_second == 0.0000045
    assert E2B.paused_per_second == 0.0 and "e2b.dev" in E2B.source
    # E2B's worked example: 2 vCPU and 0.5 GiB for one hour is about $0.109.
    assert E2B.running_cost(3600, 2, 512) == pytest.approx(0.1089, abs=1e-4)


def test_groups_by_metadata_key_with_spec_columns():
    rows = [Row("a", T0 + timedelta(hours=1), 30, {"agent": "discovery"}),
            Row("b", T0 + timedelta(hours=2), 30, {"agent": "discovery"}),
            Row("c", T0 + timedelta(hours=3), 120, {"agent": "analysis"}, cpu_count=4, memory_mb=2048),
            Row("d", T0 + timedelta(hours=4), 15, {})]
    r = build_report(rows, since=T0, until=T0 + timedelta(days=1), by="agent", prices=E2B, now=T0 + timedelta(days=2))
    groups = {g["key"]: g for g in r["groups"]}
    assert set(groups) == {"discovery", "analysis", "(none)"}
    d = groups["discovery"]
    assert d["sandboxes"] == 2 and d["sandboxes_per_day"] == 2 and d["avg_duration_s"] == 30
    assert d["running_seconds"] == 60 and d["monthly_hours"] == pytest.approx(60 / 3600 * 30, abs=1e-3)
    assert d["cost"] == pytest.approx(60 * (2 * 0.000014 + 0.5 * 0.0000045), rel=1e-6)
    assert groups["analysis"]["cost"] == pytest.approx(120 * (4 * 0.000014 + 2 * 0.0000045), rel=1e-6)
    assert r["total"]["sandboxes"] == 4 and r["total"]["running_seconds"] == 195
    assert r["total"]["cost"] == pytest.approx(sum(g["cost"] for g in r["groups"]), rel=1e-6)
    table = {c["component"].split(" (")[0]: c for c in r["cost_table"]}
    assert table["Total"]["monthly_cost"] == pytest.approx(r["total"]["cost"] * 30, rel=1e-3)
    assert table["Custom templates"]["note"] == "included"


def test_daily_series_and_template_grouping():
    rows = [Row("a", T0 + timedelta(hours=1), 10), Row("b", T0 + timedelta(days=1, hours=1), 20),
            Row("c", T0 + timedelta(days=1, hours=2), 40, template="media-gateway-search")]
    r = build_report(rows, since=T0, until=T0 + timedelta(days=2), by="template", prices=E2B, now=T0 + timedelta(days=3))
    assert r["days"] == 2
    daily = {(d["date"], d["key"]): d for d in r["daily"]}
    assert daily[("2026-12-01", "media-gateway-agent")]["sandboxes"] == 1
    assert daily[("2026-12-02", "media-gateway-agent")]["running_seconds"] == 20
    assert daily[("2026-12-02", "media-gateway-search")]["running_seconds"] == 40
    assert {g["key"]: g["sandboxes_per_day"] for g in r["groups"]} == {"media-gateway-agent": 1.0, "media-gateway-search": 0.5}


def test_live_sandbox_counts_its_current_state_up_to_now():
    live = Row("a", T0, 10, state="running", state_since=T0 + timedelta(seconds=100), paused_seconds=5)
    assert seconds_of(live, until=T0 + timedelta(days=1), now=T0 + timedelta(seconds=130)) == (40, 5)
    paused = Row("b", T0, 10, state="paused", state_since=T0 + timedelta(seconds=100))
    assert seconds_of(paused, until=T0 + timedelta(days=1), now=T0 + timedelta(seconds=160)) == (10, 60)
    # A report that ends before now counts the open interval only up to its end.
    assert seconds_of(live, until=T0 + timedelta(seconds=110), now=T0 + timedelta(seconds=500)) == (20, 5)


def test_paused_seconds_are_free_on_e2b_but_priced_when_the_file_says_so(tmp_path):
    rows = [Row("a", T0, 100, paused_seconds=1000)]
    free = build_report(rows, since=T0, until=T0 + timedelta(days=1), by="template", prices=E2B, now=T0 + timedelta(days=1))
    assert free["total"]["cost"] == pytest.approx(E2B.running_cost(100, 2, 512))
    f = tmp_path / "p.toml"
    f.write_text('name = "own"\n[rates]\nvcpu_per_second = 0.0\npaused_per_second = 0.001\negress_per_gib = 1.0\n')
    own = load_prices(f)
    rows[0].egress_bytes_out = 1 << 30
    r = build_report(rows, since=T0, until=T0 + timedelta(days=1), by="template", prices=own, now=T0 + timedelta(days=1))
    assert r["total"]["cost"] == pytest.approx(1.0 + 1.0)


def test_report_with_nothing_in_it_and_a_bad_period():
    r = build_report([], since=T0, until=T0 + timedelta(days=1), by="agent", prices=E2B, now=T0 + timedelta(days=1))
    assert r["groups"] == [] and r["total"]["sandboxes"] == 0 and r["total"]["avg_duration_s"] == 0
    with pytest.raises(ValueError):
        build_report([], since=T0, until=T0, by="agent", prices=E2B, now=T0)
