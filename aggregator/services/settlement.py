"""Use case: settle the events we opted in to, from a baseline captured before they ran.

For every opted-in event with cap or shed intervals:

1. **Baseline.** The plan the fleet would follow without the event (its limits left out,
   every other event kept) is made once, when the event is first accepted: before the fleet
   reacts to it. A plan made later would already hold the event's pre-charging and so hide
   what was shed. A modification keeps that baseline unless the event now reaches outside
   its grid; then one is made again.
2. **Settlement.** ``grace`` after the event ends (so the last telemetry is stored), the
   settler compares the baseline with the metered power (charger telemetry plus the site's
   forecast base load minus PV) per interval; the X-of-Y meter baseline, when history is
   wanted, is computed beside it. The record is stored and the event marked completed. An
   event that cannot be settled yet (e.g. telemetry missing) is stored as failed with the
   reason and tried again each round until ``give_up_after`` past its end.

The caller (the runtime) makes the baseline plans: this module decides which are due.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from aggregator.domain import (
    DrEventRecord,
    EventBaseline,
    Plan,
    SettlementRecord,
    Telemetry,
    ValidationError,
)
from aggregator.ports import Clock, DrEventStore, EventSettler, Repository, SettlementStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettlementSettings:
    grace: timedelta = timedelta(minutes=5)  # wait this long after the end for telemetry
    give_up_after: timedelta = timedelta(hours=24)  # stop retrying a failed settlement
    margin: timedelta = timedelta(minutes=15)  # telemetry read either side of the event
    history: timedelta | None = timedelta(days=45)  # meter-baseline lookback; None = no meter


def _settleable(record: DrEventRecord) -> bool:
    return (
        record.opt == "optIn"
        and record.state in ("active", "completed")
        and bool(record.event.limits)
    )


class EventSettlements:
    def __init__(
        self,
        repo: Repository,
        events: DrEventStore,
        store: SettlementStore,
        settler: EventSettler,
        clock: Clock,
        settings: SettlementSettings | None = None,
    ) -> None:
        self.repo = repo
        self.events = events
        self.store = store
        self.settler = settler
        self.clock = clock
        self.settings = settings or SettlementSettings()

    # ------------------------------------------------------------------ baselines
    def baselines_due(self, now: datetime) -> list[DrEventRecord]:
        """Opted-in events that need a baseline plan made now."""
        due = []
        for record in self.events.all():
            e = record.event
            if not _settleable(record) or record.state != "active" or e.end <= now:
                continue
            held = self.store.baseline(e.event_id)
            if held is None or not (held.grid.start <= e.start and e.end <= held.grid.end):
                due.append(record)
        return due

    def save_baseline(self, record: DrEventRecord, plan: Plan, now: datetime) -> EventBaseline:
        """Keep ``plan`` (made without ``record``'s limits) as the event's baseline."""
        baseline = EventBaseline(
            event_id=record.event.event_id,
            modification_number=record.event.modification_number,
            captured_at=now,
            grid=plan.grid,
            site_power_kw={k: tuple(v) for k, v in plan.site_power_kw.items()},
        )
        self.store.save_baseline(baseline)
        log.info("event %s: baseline captured (%s)", baseline.event_id, plan.solver_path)
        return baseline

    # ------------------------------------------------------------------ settlements
    def settlements_due(self, now: datetime) -> list[DrEventRecord]:
        s = self.settings
        due = []
        for record in self.events.all():
            e = record.event
            if not _settleable(record) or e.end + s.grace > now:
                continue
            held = self.store.settlement(e.event_id)
            fresh = held is None or held.modification_number != e.modification_number
            retry = held is not None and held.status == "failed" and now < e.end + s.give_up_after
            if fresh or retry:
                due.append(record)
        return due

    def settle_due(self) -> list[SettlementRecord]:
        now = self.clock.now()
        return [self.settle(record, now) for record in self.settlements_due(now)]

    def settle(self, record: DrEventRecord, now: datetime) -> SettlementRecord:
        e = record.event
        s = self.settings
        sites = sorted(e.site_ids) or [x.site_id for x in self.repo.load_fleet().sites]
        readings = self._telemetry(e.start - s.margin, e.end + s.margin, sites)
        history = None
        if s.history is not None:
            history = self._telemetry(e.start - s.history, e.start, sites)
        try:
            settlement, per_site, note = self.settler.settle(
                e,
                sites,
                self.store.baseline(e.event_id),
                readings,
                history,
                self._event_days(e.event_id),
            )
        except ValidationError as exc:
            out = SettlementRecord(e.event_id, e.modification_number, now, "failed", str(exc))
            log.warning("event %s not settled: %s", e.event_id, exc)
        else:
            out = SettlementRecord(
                e.event_id,
                e.modification_number,
                now,
                "settled",
                note,
                settlement=settlement,
                sites=per_site,
            )
            log.info(
                "event %s settled: %.1f of %.1f kWh delivered, compliance %.0f %% (%s baseline)",
                e.event_id,
                settlement.delivered_kwh,
                settlement.committed_kwh,
                settlement.compliance_pct,
                settlement.baseline,
            )
        if record.state == "active":  # first: whoever sees the settlement sees it completed
            self.events.save(replace(record, state="completed"))
        self.store.save_settlement(out)
        return out

    def _telemetry(self, since: datetime, until: datetime, sites: Sequence[str]) -> list[Telemetry]:
        out: list[Telemetry] = []
        for site in sites:
            out.extend(self.repo.telemetry(since, until, site))
        return out

    def _event_days(self, event_id: str) -> frozenset[date]:
        """UTC dates of earlier events we took part in (not a normal day for a baseline)."""
        days: set[date] = set()
        for r in self.events.all():
            if r.event.event_id != event_id and r.opt == "optIn" and r.state != "cancelled":
                day, last = r.event.start.date(), r.event.end.date()
                while day <= last:
                    days.add(day)
                    day += timedelta(days=1)
        return frozenset(days)
