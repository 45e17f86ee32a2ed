"""The demo's utility: openleadr's own VTN on loopback, so events reach the fleet over OpenADR.

``aggregator demo`` runs this VTN next to the service. It registers the demo VEN and sends the
scenario's grid events as OpenADR 2.0b events, each ``notice`` (simulated time) before it
starts, and records what the VEN answers. It speaks plain HTTP without TLS and neither signs
nor checks message signatures: a demo on one machine, never a utility.

Times: the VTN sends the events' own times (the simulated clock's). openleadr judges an event
by the *wall* clock: its VTN marks an event whose end is in the real past ``completed``, sends
it once and drops it from its queue (with one such event queued it sends an empty event list
instead), and its VEN client sends no ``oadrCreatedEvent`` for it. So the demo replays a
scenario on a calendar where the simulated clock is never behind the wall clock
(``aggregator/demo.py``); openleadr then sees every event as still to come (``far``).

A ``GridEvent`` cap becomes a ``LOAD_DISPATCH`` ``setpoint``, a shed a ``LOAD_DISPATCH``
``delta`` (negative: a reduction), in kW (item base ``powerReal``, ``W``, scale ``k``), one
interval over the event, targeted at the demo VEN and at one ``resourceID`` per site (the
site id; ``demo_mapping`` maps them back). An event for every site names no resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from openleadr import OpenADRServer, objects
from openleadr.service import handler
from openleadr.service.opt_service import OptService

from aggregator.domain import GridEvent

log = logging.getLogger(__name__)

VTN_ID = "DEMO_VTN"
PATH_PREFIX = "/OpenADR2/Simple/2.0b"
MARKET_CONTEXT = "http://127.0.0.1/programs/demo-dr"
# openleadr renders the requested poll period in whole seconds (a sub-second one becomes 0,
# which a VEN ignores), so one second is the shortest it can ask for.
POLL = timedelta(seconds=1)


def demo_mapping(site_ids: Sequence[str]) -> dict[str, Any]:
    """The VEN's ``openadr.mapping`` for the demo VTN: resourceID = site id."""
    return {"resources": {site: [site] for site in site_ids}}


def oadr_event(event: GridEvent, ven_id: str) -> Any:
    """``event`` as an openleadr ``objects.Event``: one LOAD_DISPATCH interval, in kW."""
    if event.cap_kw is not None:
        signal_type, payload = "setpoint", event.cap_kw
    else:
        assert event.shed_kw is not None  # a GridEvent has exactly one of the two
        signal_type, payload = "delta", -event.shed_kw
    kw = objects.Measurement(
        name="powerReal",
        description="RealPower",
        unit="W",
        scale="k",
        power_attributes=objects.PowerAttributes(),
    )
    signal = objects.EventSignal(
        intervals=[
            objects.Interval(
                dtstart=event.start,
                duration=event.end - event.start,
                signal_payload=payload,
                uid=0,
            )
        ],
        signal_name="LOAD_DISPATCH",
        signal_type=signal_type,
        signal_id=f"{event.event_id}-dispatch",
        measurement=kw,
    )
    targets = [objects.Target(ven_id=ven_id)]
    targets += [objects.Target(resource_id=site) for site in sorted(event.site_ids)]
    return objects.Event(
        event_descriptor=objects.EventDescriptor(
            event_id=event.event_id,
            modification_number=0,
            market_context=MARKET_CONTEXT,
            event_status="far",
            created_date_time=datetime.now(UTC),
        ),
        event_signals=[signal],
        targets=targets,
        response_required="always",
    )


class _AckingOptService(OptService):  # type: ignore[misc]  # openleadr is untyped
    """openleadr's server mounts no ``EiOpt`` and its OptService leaves opts unanswered."""

    def __init__(self, vtn_id: str, on_opt: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(vtn_id)
        self._on_opt = on_opt

    @handler("oadrCreateOpt")  # type: ignore[untyped-decorator]
    async def create_opt(self, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self._on_opt(payload)
        return "oadrCreatedOpt", {"opt_id": payload["opt_id"]}


@dataclass
class SentEvent:
    """An event the VTN sent: when (simulated time) and the VEN's answer, once it came."""

    event: GridEvent
    sent_at: datetime
    answer: str | None = None  # optIn / optOut from oadrCreatedEvent
    withdrawn: bool = False  # the VEN opted out later (oadrCreateOpt)


class DemoVtn:
    """openleadr's ``OpenADRServer`` on ``127.0.0.1:port``: plain HTTP, unsigned. Demo only.

    Registers the VEN named ``ven_name`` (and no other) and, once it is registered, sends each
    of ``events`` when the simulated clock ``now()`` reaches ``notice`` before its start (at
    once if that is already past). ``sent`` holds what was sent and answered, ``pending`` the
    events still to send.
    """

    def __init__(
        self,
        events: Sequence[GridEvent],
        *,
        ven_name: str,
        port: int,
        now: Callable[[], datetime],
        notice: timedelta = timedelta(hours=2),
    ) -> None:
        self.ven_name = ven_name
        self.port = port
        self.notice = notice
        self._now = now
        self.events = tuple(events)
        self.pending = sorted(events, key=lambda e: (e.start, e.event_id))
        self.sent: dict[str, SentEvent] = {}
        self.ven_id: str | None = None
        self._registration_id: str | None = None
        self._task: asyncio.Task[None] | None = None
        # openleadr stores itself in its aiohttp app under a str key, which aiohttp warns about.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", web.NotAppKeyWarning)
            self.server = OpenADRServer(
                vtn_id=VTN_ID,
                http_host="127.0.0.1",
                http_port=port,
                http_path_prefix=PATH_PREFIX,
                requested_poll_freq=POLL,
                ven_lookup=self._ven_lookup,
                show_fingerprint=False,
            )
        self.server.add_handler("on_create_party_registration", self._on_registration)
        self.server.add_handler("on_register_report", self._on_register_report)
        opt_service = _AckingOptService(VTN_ID, self._on_create_opt)
        self.server.app.add_routes([web.post(f"{PATH_PREFIX}/EiOpt", opt_service.handler)])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH_PREFIX}"

    @property
    def poll_s(self) -> float:
        """The poll period the VTN asks of VENs at registration. [s, wall time]"""
        return POLL.total_seconds()

    async def start(self) -> None:
        """Listen, and send the events as they fall due (a background task)."""
        # openleadr prints a banner on stdout; the demo prints its own.
        with contextlib.redirect_stdout(io.StringIO()):
            await self.server.run()
        self._task = asyncio.get_running_loop().create_task(self._send_loop(), name="demo-vtn")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.server.stop()

    def send_due(self) -> list[str]:
        """Send every pending event whose notice time has come; the ids sent."""
        if self.ven_id is None:
            return []  # nobody to send to yet
        now = self._now()
        due = [e for e in self.pending if e.start - self.notice <= now]
        for event in due:
            self.pending.remove(event)
            self.server.add_raw_event(
                ven_id=self.ven_id, event=oadr_event(event, self.ven_id), callback=self._on_opt
            )
            self.sent[event.event_id] = SentEvent(event, now)
            log.info("demo VTN sent event %s at %s (simulated)", event.event_id, now)
        return [e.event_id for e in due]

    async def _send_loop(self) -> None:
        while self.pending:
            self.send_due()
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ openleadr handlers

    def _ven_lookup(self, ven_id: str) -> dict[str, Any] | None:
        if ven_id != self.ven_id:
            return None
        return {
            "ven_id": ven_id,
            "ven_name": self.ven_name,
            "registration_id": self._registration_id,
        }

    def _on_registration(self, payload: dict[str, Any]) -> tuple[str, str] | bool:
        if payload.get("ven_name") != self.ven_name:
            log.warning("demo VTN refused VEN %r", payload.get("ven_name"))
            return False
        self.ven_id = self.ven_id or f"ven-{uuid.uuid4().hex[:8]}"
        self._registration_id = f"reg-{uuid.uuid4().hex[:8]}"
        return self.ven_id, self._registration_id

    def _on_register_report(self, report: dict[str, Any]) -> None:
        return None  # the demo requests no reports ("full" mode: openleadr passes the report)

    def _on_opt(self, ven_id: str, event_id: str, opt_type: str) -> None:
        if event_id in self.sent:
            self.sent[event_id].answer = opt_type

    def _on_create_opt(self, payload: dict[str, Any]) -> None:
        event_id = payload.get("event_id")
        if payload.get("opt_type") == "optOut" and event_id in self.sent:
            self.sent[event_id].withdrawn = True
