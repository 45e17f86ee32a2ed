"""Demand-response events survive a restart: the same event is not handled twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.domain import DrEvent, DrEventRecord, GridEvent, PriceSignal
from aggregator.services.events import EventLifecycle
from connectors.sql import open_repository
from connectors.sql.dr_events import SqlDrEventStore

T0 = datetime(2025, 1, 6, 8, tzinfo=UTC)
H = timedelta(hours=1)


class Clock:
    def now(self) -> datetime:
        return T0


def event(mod: int = 0) -> DrEvent:
    return DrEvent(
        "vtn-e1",
        mod,
        "far",
        T0 + H,
        T0 + 3 * H,
        frozenset({"depot"}),
        limits=(
            GridEvent("vtn-e1/0", T0 + H, T0 + 2 * H, frozenset({"depot"}), cap_kw=20.0),
            GridEvent("vtn-e1/1", T0 + 2 * H, T0 + 3 * H, frozenset({"depot"}), shed_kw=5.0),
        ),
        prices=(PriceSignal(T0 + H, T0 + 3 * H, 250.0, "add"),),
        unsupported=("BID_LOAD: not supported",),
        program="http://utility.example/dr",
    )


def test_records_round_trip(db_url: str) -> None:
    repo = open_repository(db_url)
    try:
        store = SqlDrEventStore(repo)
        record = DrEventRecord(event(2), "optOut", "unsupported signal", "opted_out", T0)
        store.save(record)
        assert store.get("vtn-e1") == record
        assert store.all() == [record]
        assert store.get("nope") is None
    finally:
        repo.dispose()


def test_after_a_restart_the_same_event_is_not_handled_again(db_url: str) -> None:
    ev = DrEvent(
        "vtn-e2",
        1,
        "far",
        T0 + H,
        T0 + 2 * H,
        frozenset(),
        limits=(GridEvent("vtn-e2/0", T0 + H, T0 + 2 * H, cap_kw=10.0),),
    )
    repo = open_repository(db_url)
    try:
        first = EventLifecycle(repo, SqlDrEventStore(repo), Clock(), policy="always")
        assert first.receive(ev).action == "new"
    finally:
        repo.dispose()
    repo = open_repository(db_url)  # the process starts again
    try:
        again = EventLifecycle(repo, SqlDrEventStore(repo), Clock(), policy="always")
        decision = again.receive(ev)
        assert (decision.action, decision.replan) == ("unchanged", False)
        assert [r.event.event_id for r in repo.events() if r.status == "active"] == ["vtn-e2/0"]
    finally:
        repo.dispose()
