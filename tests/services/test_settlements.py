"""Settling opted-in events: which baselines and settlements are due, and the figures.

Real SQLite store, the real ``TelemetrySettler``; numbers small enough to check by hand.
One site with a 1 kW forecast base load; the charger's telemetry adds to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aggregator.app import fleet_of
from aggregator.domain import (
    DrEvent,
    DrEventRecord,
    EventBaseline,
    GridEvent,
    Telemetry,
    TimeGrid,
)
from aggregator.services.settlement import EventSettlements, SettlementSettings
from connectors.sql import SqlRepository, open_repository
from connectors.sql.dr_events import SqlDrEventStore
from connectors.sql.settlements import SqlSettlementStore
from models.settlement import MeterBaselineConfig
from models.settlement.event import SettlerConfig, TelemetrySettler
from tests.fleet_builders import START, ev, make_problem

H = timedelta(hours=1)
SITE = "site-0"


@dataclass
class Clock:
    at: datetime = START

    def now(self) -> datetime:
        return self.at


class FlatBase:
    """1 kW base load on every site, no PV."""

    def site_profiles(
        self, grid: TimeGrid, site_ids: Sequence[str]
    ) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
        return {s: ((1.0,) * grid.n_slots, ()) for s in site_ids}


@dataclass
class World:
    repo: SqlRepository
    events: SqlDrEventStore
    store: SqlSettlementStore
    clock: Clock
    service: EventSettlements


def make_world(tmp_path: Path, config: SettlerConfig, history: timedelta | None) -> World:
    repo = open_repository(f"sqlite:///{tmp_path / 'settle.db'}")
    repo.save_fleet(fleet_of(make_problem([ev(0, 4)])))
    events, store, clock = SqlDrEventStore(repo), SqlSettlementStore(repo), Clock()
    service = EventSettlements(
        repo,
        events,
        store,
        TelemetrySettler(FlatBase(), config),
        clock,
        SettlementSettings(grace=timedelta(minutes=5), history=history),
    )
    return World(repo, events, store, clock, service)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path, SettlerConfig(step=H), history=None)
    yield w
    w.repo.dispose()


def event(
    *,
    cap: float | None = 4.0,
    shed: float | None = None,
    mod: int = 0,
    hours: tuple[int, int] = (1, 3),
) -> DrEvent:
    start, end = START + hours[0] * H, START + hours[1] * H
    limits = tuple(
        GridEvent(f"e1/{i}", start + i * H, start + (i + 1) * H, cap_kw=cap, shed_kw=shed)
        for i in range(hours[1] - hours[0])
    )
    return DrEvent("e1", mod, "far", start, end, frozenset({SITE}), limits)


def accept(w: World, e: DrEvent, opt: str = "optIn") -> DrEventRecord:
    record = DrEventRecord(e, opt, "test", "active" if opt == "optIn" else "opted_out", START)  # type: ignore[arg-type]
    w.events.save(record)
    return record


def baseline(kw: float, mod: int = 0, captured_at: datetime = START) -> EventBaseline:
    return EventBaseline("e1", mod, captured_at, TimeGrid(START, H, 4), {SITE: (kw,) * 4})


def charging(w: World, kw: float, since: datetime, until: datetime) -> None:
    """c0 reports ``kw`` every 5 minutes over [since, until]."""
    readings, t = [], since
    while t <= until:
        readings.append(Telemetry(SITE, "c0", t, kw, plugged=True))
        t += timedelta(minutes=5)
    w.repo.add_telemetry(readings)


def test_a_baseline_is_made_once_at_acceptance_and_again_only_if_the_event_leaves_its_grid(
    world: World,
) -> None:
    w = world
    accept(w, event(), opt="optOut")
    assert w.service.baselines_due(START) == []  # opted out: nothing to settle
    accept(w, event())
    assert [r.event.event_id for r in w.service.baselines_due(START)] == ["e1"]
    w.store.save_baseline(baseline(10.0))  # grid 00:00-04:00 covers the event (01:00-03:00)
    # Not again near the start: by then the fleet has reacted to the event.
    assert w.service.baselines_due(START + H - timedelta(minutes=10)) == []
    accept(w, event(mod=1, hours=(1, 2)))  # a modification inside the grid keeps it
    assert w.service.baselines_due(START) == []
    accept(w, event(mod=2, hours=(2, 5)))  # ... one reaching past 04:00 needs a new one
    assert len(w.service.baselines_due(START)) == 1
    assert w.service.baselines_due(START + 5 * H) == []  # ended: none


def test_a_cap_event_is_settled_after_its_end_and_stored(world: World) -> None:
    w = world
    record = accept(w, event(cap=4.0))
    w.store.save_baseline(baseline(10.0))  # without the event: 10 kW net
    charging(w, 3.0, START + H - timedelta(minutes=15), START + 3 * H + timedelta(minutes=10))
    assert w.service.settlements_due(START + 3 * H + timedelta(minutes=4)) == []  # grace
    w.clock.at = START + 3 * H + timedelta(minutes=6)
    (done,) = w.service.settle_due()
    assert done.status == "settled", done.reason
    s = done.settlement
    assert s is not None
    # metered 3 kW + 1 kW base = 4 kW, on the cap: committed = delivered = 10 - 4 = 6 kW.
    assert [i.metered_kw for i in s.intervals] == pytest.approx([4.0, 4.0])
    assert [i.committed_kw for i in s.intervals] == pytest.approx([6.0, 6.0])
    assert s.delivered_kwh == pytest.approx(12.0)
    assert (s.compliance, s.caps_met, s.baseline) == (pytest.approx(1.0), True, "plan")
    (site,) = done.sites
    assert site.delivered_kw == pytest.approx((6.0, 6.0))
    # Stored as returned, the event completed, and not settled twice.
    assert w.store.settlement("e1") == done
    stored = w.events.get("e1")
    assert stored is not None and stored == replace(record, state="completed")
    assert w.service.settle_due() == []


def test_a_shed_event_delivered_short_is_settled_with_partial_compliance(world: World) -> None:
    w = world
    accept(w, event(cap=None, shed=8.0))
    w.store.save_baseline(baseline(10.0))
    charging(w, 3.0, START + H, START + 3 * H + timedelta(minutes=10))
    w.clock.at = START + 4 * H
    (done,) = w.service.settle_due()
    assert done.settlement is not None
    # Delivered 10 - 4 = 6 of the 8 kW asked, in both hours: 12 of 16 kWh.
    assert done.settlement.delivered_kwh == pytest.approx(12.0)
    assert done.settlement.committed_kwh == pytest.approx(16.0)
    assert done.settlement.compliance == pytest.approx(0.75)
    assert done.settlement.caps_met is None


def test_missing_telemetry_fails_with_the_reason_and_is_tried_again(world: World) -> None:
    w = world
    accept(w, event())
    w.store.save_baseline(baseline(10.0))
    w.clock.at = START + 3 * H + timedelta(minutes=6)
    (failed,) = w.service.settle_due()
    assert failed.status == "failed"
    assert failed.reason == "site site-0: telemetry: none stored during the event"
    assert w.store.settlement("e1") == failed
    charging(w, 3.0, START + H, START + 3 * H + timedelta(minutes=10))
    (done,) = w.service.settle_due()
    assert done.status == "settled"
    # Past ``give_up_after`` a failure is left as it is.
    w.store.save_settlement(failed)
    w.clock.at = START + 3 * H + timedelta(hours=25)
    assert w.service.settle_due() == []


def test_without_a_baseline_plan_or_history_an_event_cannot_be_settled(world: World) -> None:
    w = world
    accept(w, event())
    charging(w, 3.0, START + H, START + 3 * H + timedelta(minutes=10))
    w.clock.at = START + 4 * H
    (failed,) = w.service.settle_due()
    assert failed.reason == "event e1: baseline: no baseline plan and no meter history"


def test_the_meter_baseline_is_computed_beside_the_plan_from_earlier_weekdays(
    tmp_path: Path,
) -> None:
    config = SettlerConfig(step=H, meter=MeterBaselineConfig(x_days=2, y_days=3, lookback_days=5))
    w = make_world(tmp_path, config, history=timedelta(days=6))
    try:
        accept(w, event(cap=4.0))
        w.store.save_baseline(baseline(10.0))
        # START is Monday 6 Jan 2025: the three weekdays before it drew 8, 6 and 2 kW (plus
        # 1 kW base); the weekend in between is skipped; the top two give (9 + 7) / 2 = 8 kW.
        for days_back, kw in ((3, 8.0), (4, 6.0), (5, 2.0)):
            day = START - days_back * H * 24
            charging(w, kw, day, day + 4 * H)
        charging(w, 3.0, START + H, START + 3 * H + timedelta(minutes=10))
        w.clock.at = START + 4 * H
        (done,) = w.service.settle_due()
        s = done.settlement
        assert s is not None and s.baseline == "plan"
        assert s.alternative is not None and s.alternative.kind == "meter"
        assert s.alternative.baseline_kw == pytest.approx((8.0, 8.0))
        assert s.alternative.delivered_kwh == pytest.approx(8.0)  # (8 - 4) kW for 2 h
        days = s.meter_baselines[SITE].days
        assert [d.day for d in days] == [3, 2]
        assert w.store.settlement("e1") == done
    finally:
        w.repo.dispose()
