"""The demand-response event lifecycle, with the real store and envelope feasibility."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aggregator.app import fleet_of
from aggregator.domain import DrEvent, GridEvent
from aggregator.services.events import EventLifecycle
from connectors.sql import open_repository
from connectors.sql.dr_events import SqlDrEventStore
from models.feasibility import EnvelopeFeasibility
from tests.fleet_builders import START, ev, make_problem

H = timedelta(hours=1)


@dataclass
class Clock:
    def now(self) -> datetime:
        return START


def dr(
    event_id: str = "e1",
    mod: int = 0,
    *,
    cap: float | None = 5.0,
    shed: float | None = None,
    status: str = "far",
    slots: tuple[int, int] = (2, 4),
    unsupported: tuple[str, ...] = (),
) -> DrEvent:
    start, end = START + slots[0] * H, START + slots[1] * H
    limits = (GridEvent(f"{event_id}/0", start, end, cap_kw=cap, shed_kw=shed),)
    return DrEvent(
        event_id,
        mod,
        status,
        start,
        end,
        frozenset(),
        limits,  # type: ignore[arg-type]
        unsupported=unsupported,
    )


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    # One vehicle that needs 40 kWh in 8 h at 10 kW: it can pause for up to 4 hours.
    problem = make_problem([ev(0, 8, arrival_soc=0.2, target_soc=0.8)])
    repo = open_repository(f"sqlite:///{tmp_path / 'ev.db'}")
    repo.save_fleet(fleet_of(problem))
    life = EventLifecycle(
        repo,
        SqlDrEventStore(repo),
        Clock(),
        EnvelopeFeasibility(lambda: problem),
        policy="feasible",
    )
    yield life, repo
    repo.dispose()


def active(repo) -> set[str]:  # type: ignore[no-untyped-def]
    return {r.event.event_id for r in repo.events() if r.status == "active"}


def test_a_feasible_new_event_is_opted_in_and_its_limits_stored(world) -> None:  # type: ignore[no-untyped-def]
    life, repo = world
    decision = life.receive(dr())
    assert (decision.action, decision.opt, decision.replan) == ("new", "optIn", True)
    assert active(repo) == {"e1/0"}


def test_the_same_modification_changes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    life, repo = world
    life.receive(dr())
    decision = life.receive(dr())
    assert (decision.action, decision.replan) == ("unchanged", False)
    assert active(repo) == {"e1/0"}


def test_a_higher_modification_replaces_the_limits(world) -> None:  # type: ignore[no-untyped-def]
    life, repo = world
    life.receive(dr())
    modified = dr(mod=1)
    modified = DrEvent(
        "e1",
        1,
        "near",
        modified.start,
        modified.end,
        frozenset(),
        (GridEvent("e1/1", modified.start, modified.end, cap_kw=6.0),),
    )
    decision = life.receive(modified)
    assert (decision.action, decision.opt) == ("modified", "optIn")
    assert active(repo) == {"e1/1"}
    assert {r.event.event_id: r.status for r in repo.events()}["e1/0"] == "cancelled"


def test_a_lower_modification_is_ignored(world) -> None:  # type: ignore[no-untyped-def]
    life, repo = world
    life.receive(dr(mod=3))
    decision = life.receive(dr(mod=2, cap=0.0))
    assert (decision.action, decision.replan) == ("stale", False)
    assert {r.event.cap_kw for r in repo.events()} == {5.0}


def test_cancellation_and_implicit_cancel_remove_the_limits(world) -> None:  # type: ignore[no-untyped-def]
    life, repo = world
    life.receive(dr("e1"))
    life.receive(dr("e2", slots=(5, 6)))
    cancelled = life.receive(dr("e1", mod=1, status="cancelled"))
    assert (cancelled.action, cancelled.replan) == ("cancelled", True)
    assert active(repo) == {"e2/0"}
    (implicit,) = life.reconcile({"e1"})  # e2 is no longer listed by the VTN
    assert implicit.event_id == "e2" and implicit.action == "cancelled"
    assert active(repo) == set()


def test_unsupported_signals_are_opted_out_with_the_reason(world) -> None:  # type: ignore[no-untyped-def]
    life, repo = world
    decision = life.receive(dr(unsupported=("BID_LOAD: not supported",)))
    assert decision.opt == "optOut" and "BID_LOAD" in decision.reason
    assert active(repo) == set()


def test_an_infeasible_cap_is_opted_out_and_a_withdrawn_opt_in_is_flagged(world) -> None:  # type: ignore[no-untyped-def]
    life, repo = world
    assert life.receive(dr(slots=(2, 4), cap=0.0)).opt == "optIn"  # a 2 h pause fits
    decision = life.receive(dr(mod=1, slots=(0, 6), cap=0.0))  # a 6 h pause does not
    assert decision.opt == "optOut" and decision.withdraw
    assert "must take 16.0 kWh during the event" in decision.reason
    assert active(repo) == set()


@pytest.mark.parametrize(("policy", "opt"), [("always", "optIn"), ("never", "optOut")])
def test_fixed_policies(policy: str, opt: str, tmp_path: Path) -> None:
    repo = open_repository(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        life = EventLifecycle(repo, SqlDrEventStore(repo), Clock(), policy=policy)  # type: ignore[arg-type]
        assert life.receive(dr(cap=0.0, slots=(0, 8))).opt == opt
    finally:
        repo.dispose()


def test_an_event_gone_or_completed_after_its_end_is_completed_not_cancelled(world) -> None:  # type: ignore[no-untyped-def]
    life, repo = world
    life.receive(dr("e1", slots=(-2, 0)))  # ended at START, the lifecycle's now
    life.receive(dr("e2", slots=(-3, -1)))
    life.receive(dr("e3", slots=(1, 2)))
    assert life.reconcile({"e2", "e3"}) == []  # e1 dropped after its end: no cancel
    assert life.store.get("e1").state == "completed"
    done = life.receive(dr("e2", status="completed", slots=(-3, -1)))
    assert (done.action, done.opt, done.replan) == ("unchanged", "optIn", False)
    assert life.store.get("e2").state == "completed"
    assert life.store.get("e3").state == "active"
    assert active(repo) == {"e1/0", "e2/0", "e3/0"}  # limits of what ran stay on record


def test_a_status_change_without_a_new_modification_is_not_decided_again(world) -> None:  # type: ignore[no-untyped-def]
    life, repo = world
    first = life.receive(dr("e1"))
    assert first.opt == "optIn"
    near = life.receive(dr("e1", status="near"))
    assert (near.action, near.opt, near.replan) == ("unchanged", "optIn", False)
    held = life.store.get("e1")
    assert held.event.status == "near" and held.state == "active"
    assert held.received_at == life.store.get("e1").received_at
    assert active(repo) == {"e1/0"}
