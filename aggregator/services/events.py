"""Use case: a utility's demand-response events, from receipt to the plan's constraints.

Each event version is decided once. A new event, or a higher modification number, is decided
(opt in or out) and replaces the previous version's limits. The same number changes nothing.
A lower number is stale: ignored and logged. A cancellation, or an event gone from the VTN's
list before its end (implicit cancel), removes its limits; one gone after its end (or sent as
completed) is completed and kept for settlement. Limits of an opted-in event are stored as
grid events (``{event_id}/{interval}``), which the controller plans with at the next
re-plan. The caller re-plans when ``replan`` is set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from aggregator.domain import (
    DrEvent,
    DrEventRecord,
    DrState,
    EventRecord,
    GridEvent,
    OptChoice,
)
from aggregator.ports import Clock, DrEventStore, FeasibilityCheck, Repository

log = logging.getLogger(__name__)

OptPolicy = Literal["always", "feasible", "never"]
Action = Literal["new", "modified", "unchanged", "stale", "cancelled"]


@dataclass(frozen=True)
class EventDecision:
    event_id: str
    action: Action
    opt: OptChoice
    reason: str
    replan: bool
    # True when an event we had opted in to is now opted out: the VEN must send an EiOpt.
    withdraw: bool = False


class EventLifecycle:
    def __init__(
        self,
        repo: Repository,
        store: DrEventStore,
        clock: Clock,
        feasibility: FeasibilityCheck | None = None,
        policy: OptPolicy = "feasible",
    ) -> None:
        if policy == "feasible" and feasibility is None:
            raise ValueError("policy 'feasible' needs a feasibility check")
        self.repo = repo
        self.store = store
        self.clock = clock
        self.feasibility = feasibility
        self.policy = policy

    def receive(self, event: DrEvent) -> EventDecision:
        stored = self.store.get(event.event_id)
        if stored is not None:
            known = stored.event.modification_number
            if event.modification_number < known:
                log.warning(
                    "event %s: modification %d is older than %d, ignored",
                    event.event_id,
                    event.modification_number,
                    known,
                )
                return EventDecision(
                    event.event_id,
                    "stale",
                    stored.opt,
                    f"modification {event.modification_number} < {known}",
                    replan=False,
                )
            if event.modification_number == known and event.status == stored.event.status:
                return EventDecision(
                    event.event_id, "unchanged", stored.opt, stored.reason, replan=False
                )
            if event.modification_number == known and event.status not in (
                "cancelled",
                "completed",
            ):
                # The VTN moves an event far -> near -> active as time passes without a new
                # modification: nothing to decide again; keep our answer and state.
                self.store.save(replace(stored, event=replace(stored.event, status=event.status)))
                return EventDecision(
                    event.event_id, "unchanged", stored.opt, stored.reason, replan=False
                )
        if event.status == "cancelled":
            return self._cancel(event, stored, "cancelled by the VTN")
        if event.status == "completed" and stored is not None:
            # Over: nothing to decide; keep the version we acted on, to be settled.
            if stored.state in ("active", "opted_out"):
                self.store.save(replace(stored, state="completed"))
            return EventDecision(event.event_id, "unchanged", stored.opt, stored.reason, False)
        action: Action = "new" if stored is None else "modified"
        opt, reason = self._decide(event)
        now = self.clock.now()
        self._replace_limits(stored, event if opt == "optIn" else None, now)
        state: DrState = "active" if opt == "optIn" else "opted_out"
        self.store.save(DrEventRecord(event, opt, reason, state, now))
        withdraw = stored is not None and stored.opt == "optIn" and opt == "optOut"
        log.info("event %s %s: %s (%s)", event.event_id, action, opt, reason)
        return EventDecision(event.event_id, action, opt, reason, replan=True, withdraw=withdraw)

    def reconcile(self, listed_event_ids: set[str]) -> list[EventDecision]:
        """Implicit cancel: events we hold that the VTN no longer lists are cancelled."""
        out = []
        now = self.clock.now()
        for record in self.store.all():
            if record.state not in ("active", "opted_out"):
                continue
            if record.event.event_id in listed_event_ids:
                continue
            if record.event.end <= now:
                # Over: a VTN drops ended events from its list. That is no cancellation;
                # the event stays to be settled.
                self.store.save(replace(record, state="completed"))
                continue
            out.append(self._cancel(record.event, record, "no longer listed by the VTN"))
        return out

    def _decide(self, event: DrEvent) -> tuple[OptChoice, str]:
        if event.unsupported:
            return "optOut", "unsupported signal: " + "; ".join(event.unsupported)
        if self.policy == "always":
            return "optIn", "policy: always"
        if self.policy == "never":
            return "optOut", "policy: never"
        assert self.feasibility is not None
        ok, why = self.feasibility.check(event.limits)
        return ("optIn", why) if ok else ("optOut", why)

    def _cancel(self, event: DrEvent, stored: DrEventRecord | None, reason: str) -> EventDecision:
        now = self.clock.now()
        self._replace_limits(stored, None, now)
        opt: OptChoice = stored.opt if stored is not None else "optIn"
        base = stored.event if stored is not None else event
        cancelled = replace(base, status="cancelled")
        self.store.save(DrEventRecord(cancelled, opt, reason, "cancelled", now))
        log.info("event %s cancelled: %s", event.event_id, reason)
        return EventDecision(event.event_id, "cancelled", opt, reason, replan=stored is not None)

    def _replace_limits(
        self, stored: DrEventRecord | None, event: DrEvent | None, now: datetime
    ) -> None:
        """Store ``event``'s limits as active; cancel the old version's that are not reused."""
        keep: dict[str, GridEvent] = {g.event_id: g for g in event.limits} if event else {}
        if stored is not None and stored.state == "active":
            for old in stored.event.limits:
                if old.event_id not in keep:
                    self.repo.save_event(
                        EventRecord(old, stored.event.modification_number, "cancelled", now)
                    )
        if event is not None:
            for limit in keep.values():
                self.repo.save_event(EventRecord(limit, event.modification_number, "active", now))
