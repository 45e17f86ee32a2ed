"""The VEN: openleadr's ``OpenADRClient`` kept registered and polling, whatever the VTN does.

openleadr gives up after one failed registration, stops itself when a re-registration fails,
crashes its poll job on an empty reply and opts out of every event in a message when one handler
call raises. This module wraps (does not fork) the client so none of that reaches the rest of
the aggregator. See ``docs/openadr.md`` ("The VEN").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, get_args

from openleadr import OpenADRClient

from connectors.openadr import tls
from connectors.openadr.reports import ReportSpec, add_reports, forget_report_requests
from connectors.openadr.validation import OutgoingValidator

__all__ = ["OptReason", "OptType", "Ven", "VenError", "VenSettings"]

log = logging.getLogger(__name__)

OptType = Literal["optIn", "optOut"]
OptReason = Literal[
    "economic",
    "emergency",
    "mustRun",
    "notParticipating",
    "outageRunStatus",
    "overrideStatus",
    "participating",
    "x-schedule",
]
EventHandler = Callable[[dict[str, Any]], Awaitable[OptType]]

_MAX_POLL_INTERVAL_S = 24 * 3600.0  # openleadr's own cap; OpenADR has no longer poll period


class VenError(Exception):
    """A VEN operation that needs a registration was asked for while not registered."""


@dataclass(frozen=True, slots=True)
class VenSettings:
    """How to reach the VTN and how hard to try.

    ``poll_interval_s`` is used only when the VTN does not request a poll frequency at
    registration (a VTN's request wins, as OpenADR 2.0b asks). Registration retries back off
    exponentially from ``retry_min_s`` to ``retry_max_s`` [s] and never give up.
    """

    vtn_url: str
    ven_name: str
    vtn_fingerprint: str | None = None
    cert: str | None = None
    key: str | None = None
    ca_file: str | None = None
    passphrase: str | None = None
    poll_interval_s: float = 10.0
    retry_min_s: float = 0.5
    retry_max_s: float = 30.0
    disable_signature: bool = False

    def __post_init__(self) -> None:
        if self.poll_interval_s <= 0:
            raise ValueError(f"poll_interval_s must be positive, got {self.poll_interval_s}")
        if not 0 < self.retry_min_s <= self.retry_max_s:
            raise ValueError(
                f"need 0 < retry_min_s <= retry_max_s, got {self.retry_min_s}, {self.retry_max_s}"
            )


def backoff_s(failures: int, retry_min_s: float, retry_max_s: float) -> float:
    """Delay before the next attempt after ``failures`` consecutive failures (>= 1). [s]

    Doubles from ``retry_min_s`` up to ``retry_max_s``, then jittered down by up to half so that
    many VENs behind one restarted VTN do not come back in lockstep.
    """
    capped = min(retry_max_s, retry_min_s * 2.0 ** min(failures - 1, 30))
    return max(retry_min_s, capped * random.uniform(0.5, 1.0))


class _Client(OpenADRClient):  # type: ignore[misc]  # openleadr is untyped
    """openleadr's client with the few methods it calls internally redirected to the ``Ven``.

    ``_poll`` (openleadr's dispatcher: events, report requests, cancellations) is used as is;
    only what it calls on the way is overridden.
    """

    # Attributes of openleadr's (untyped) client that we set.
    vtn_fingerprint: str | None
    client_session: Any
    _create_message: Callable[..., str]

    def __init__(self, ven: Ven, **kwargs: Any) -> None:
        # Security (docs/openadr.md, "Security"): refuse an https:// VTN without client cert,
        # signatures and pinned fingerprint; our own TLS context; every outgoing message is
        # checked against the 2.0b XSD before it is sent.
        tls.check_security(ven.settings)
        super().__init__(**kwargs)
        self._ven = ven
        if self.vtn_fingerprint is not None:
            self.vtn_fingerprint = tls.normalize_fingerprint(self.vtn_fingerprint)
        self._ssl_context = tls.ssl_context(ven.settings)
        self.outgoing = OutgoingValidator(self._create_message)
        self._create_message = self.outgoing

    async def _ensure_client_session(self) -> None:
        # openleadr's own context has no minimum TLS version and no cipher list.
        if self.client_session is None and self._ssl_context is not None:
            self.client_session = tls.client_session(self._ssl_context)
        await super()._ensure_client_session()

    async def poll(self) -> tuple[str | None, dict[str, Any]]:
        # openleadr returns a bare None for an empty HTTP body, which its _poll cannot unpack.
        result = await super().poll()
        if result is None:
            result = (None, {})
        self._ven._poll_result(result[0], result[1])
        return result  # type: ignore[no-any-return]

    async def create_party_reregistration(self, registration_id: str | None = None) -> None:
        # openleadr re-registers once and stops the whole client if that fails; we only mark
        # ourselves unregistered and let the Ven's loop register again with backoff.
        self._ven._forget_registration("the VTN requested re-registration")

    async def on_event(self, event: dict[str, Any]) -> OptType:
        return await self._ven._handle_event(event)

    async def on_update_event(self, event: dict[str, Any]) -> OptType:
        return await self._ven._handle_event(event)


class Ven:
    """Registers with the VTN (retrying forever), polls it, and hands each event to ``on_event``.

    ``on_event`` gets openleadr's raw event dict (``connectors.openadr.translate`` turns it into a
    ``DrEvent``) for new events and for modified ones (higher modification number, cancellation)
    and returns ``"optIn"`` or ``"optOut"``; it should answer fast, because it runs on the poll
    path. An exception or a wrong answer from it is logged with the event id, counted in
    ``handler_errors`` and answered with ``optOut``.

    Counters: ``registrations`` successful (re-)registrations; ``registration_failures`` failed
    attempts; ``polls`` oadrPoll requests that got an OpenADR answer; ``polls_failed`` those that
    did not (transport error, HTTP error, unparsable or error reply); ``events_received`` event
    dicts handed to ``on_event``; ``handler_errors``.
    """

    def __init__(
        self,
        settings: VenSettings,
        on_event: EventHandler,
        reports: Sequence[ReportSpec] = (),
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        # Called with the ids of every oadrDistributeEvent (implicit cancel of the others).
        self.on_event_list: Callable[[set[str]], object] | None = None
        self._client = _Client(
            self,
            ven_name=settings.ven_name,
            vtn_url=settings.vtn_url,
            cert=settings.cert,
            key=settings.key,
            passphrase=settings.passphrase,
            vtn_fingerprint=settings.vtn_fingerprint,
            ca_file=settings.ca_file,
            disable_signature=settings.disable_signature,
            show_fingerprint=False,
        )
        add_reports(self._client, reports)  # offered at every registration (docs: "Reports")
        self._registered = False
        self._poll_interval_s = settings.poll_interval_s
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.registrations = 0
        self.registration_failures = 0
        self.polls = 0
        self.polls_failed = 0
        self.events_received = 0
        self.handler_errors = 0

    # ------------------------------------------------------------------ state

    @property
    def registered(self) -> bool:
        """Whether the VTN accepted our last registration and has not asked for a new one."""
        return self._registered

    @property
    def ven_id(self) -> str | None:
        """The venID the VTN assigned (kept across re-registrations and sent with them)."""
        value = self._client.ven_id
        return None if value is None else str(value)

    @property
    def registration_id(self) -> str | None:
        value = self._client.registration_id
        return None if value is None else str(value)

    @property
    def poll_interval_s(self) -> float:
        """The poll period in use: the VTN's requested one, else the configured one. [s]"""
        return self._poll_interval_s

    @property
    def outgoing(self) -> OutgoingValidator:
        """XSD checks of what we send: ``validated`` and ``invalid`` (refused) per message type."""
        return self._client.outgoing

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start registering and polling in the background; returns at once."""
        if self._task is not None:
            raise RuntimeError("Ven.start() called twice")
        loop = asyncio.get_running_loop()
        self._client.loop = loop  # openleadr's run() sets this; its report worker needs it
        # openleadr's scheduler runs report jobs and its event bookkeeping; polling is ours.
        self._client.scheduler.add_job(
            self._client._event_cleanup,
            trigger="interval",
            seconds=self._client.events_clean_up_period,
        )
        self._client.scheduler.start()
        self._task = loop.create_task(self._run(), name=f"ven:{self.settings.ven_name}")

    async def stop(self) -> None:
        """Stop polling and close the HTTP session. Does not cancel the registration."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        client = self._client
        if client.scheduler.running:
            client.scheduler.shutdown(wait=False)
        if client.report_queue_task is not None:
            client.report_queue_task.cancel()
        if client.client_session is not None:
            await client.client_session.close()

    # ------------------------------------------------------------------ opt-out

    async def opt_out(
        self, event_id: str, modification_number: int, reason: OptReason = "notParticipating"
    ) -> bool:
        """Withdraw from an event we already answered (oadrCreateOpt on EiOpt, optOut).

        Returns whether the VTN acknowledged it (an oadrCreatedOpt naming our opt). Not retried
        here: the caller knows whether the opt-out still matters.
        """
        if reason not in get_args(OptReason):
            raise ValueError(f"reason must be one of {get_args(OptReason)}, got {reason!r}")
        if not self._registered:
            raise VenError(f"cannot opt out of event {event_id}: not registered with the VTN")
        try:
            opt_id = await self._client.create_opt(
                opt_type="optOut",
                opt_reason=reason,
                targets=[{"ven_id": self._client.ven_id}],
                event_id=event_id,
                modification_number=modification_number,
            )
        except Exception:
            log.exception("opt-out of event %s failed", event_id)
            return False
        if not opt_id:
            log.warning("the VTN did not acknowledge our opt-out of event %s", event_id)
            return False
        log.info(
            "opted out of event %s (modification %s): %s", event_id, modification_number, reason
        )
        return True

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while True:
            if not self._registered:
                await self._register_until_done()
                continue
            self._wake.clear()
            try:
                await self._client._poll()
            except Exception:
                # openleadr's dispatcher raising (a message it cannot handle) must not end polling.
                self.polls_failed += 1
                log.exception("poll failed; retrying on the next tick")
            if self._registered:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    async def _register_until_done(self) -> None:
        failures = 0
        while not await self._register_once():
            failures += 1
            self.registration_failures += 1
            delay = backoff_s(failures, self.settings.retry_min_s, self.settings.retry_max_s)
            log.warning(
                "registration with %s failed (%d in a row); retrying in %.1f s",
                self.settings.vtn_url,
                failures,
                delay,
            )
            await asyncio.sleep(delay)

    async def _register_once(self) -> bool:
        """One oadrQueryRegistration + oadrCreatePartyRegistration, then the initial sync."""
        client = self._client
        client.registration_id = None
        try:
            # openleadr returns a bare None for an empty HTTP body; unpacking it raises here.
            _, query = await client.query_registration()
            request_id = (query.get("response") or {}).get("request_id")
            result = await client.create_party_registration(
                ven_id=client.ven_id, request_id=request_id
            )
        except Exception:
            log.exception("registration attempt raised")
            return False
        if not client.registration_id or not client.ven_id:
            return False
        _, payload = result
        requested: timedelta | None = payload.get("requested_oadr_poll_freq")
        if requested is not None and requested.total_seconds() > 0:
            self._poll_interval_s = min(requested.total_seconds(), _MAX_POLL_INTERVAL_S)
        self._registered = True
        self.registrations += 1
        log.info(
            "registered with %s as venID %s (registration %s), polling every %.1f s",
            self.settings.vtn_url,
            client.ven_id,
            client.registration_id,
            self._poll_interval_s,
        )
        # What openleadr's run() does after registering. A failure here is not a failed
        # registration: polling brings what the sync missed.
        try:
            forget_report_requests(client)  # the VTN requests them anew; no duplicate jobs
            await client.register_reports(client.reports or [])
            if client.reports and client.report_queue_task is None:
                client.report_queue_task = client.loop.create_task(client._report_queue_worker())
            await client.sync_events()
        except Exception:
            log.exception("post-registration report registration or event sync failed")
        return True

    # ------------------------------------------------------------------ called by _Client

    def _poll_result(self, response_type: str | None, payload: dict[str, Any]) -> None:
        if response_type is None:
            self.polls_failed += 1
            log.warning("poll of %s failed; retrying on the next tick", self.settings.vtn_url)
            return
        self.polls += 1
        if response_type == "oadrDistributeEvent" and self.on_event_list is not None:
            # The list is the VTN's whole truth: an event we hold that is not in it is over
            # (implicit cancel). Called before the new events in it are handled.
            events = payload.get("events") or []
            ids = {str((e.get("event_descriptor") or {}).get("event_id")) for e in events}
            try:
                self.on_event_list(ids)
            except Exception:  # never let our bookkeeping stop the poll loop
                log.exception("handling the VTN's event list failed")
                self.handler_errors += 1
        code = (payload.get("response") or {}).get("response_code", 200)
        if response_type == "oadrResponse" and code != 200:
            # An error answer to a poll means the VTN no longer knows us (e.g. it restarted
            # without our registration): register again rather than poll into the void.
            self._forget_registration(f"the VTN answered our poll with error {code}")
        elif response_type == "oadrCancelPartyRegistration":
            # openleadr drops its registration id; we register again (the VTN may refuse, and
            # then we keep backing off).
            self._forget_registration("the VTN cancelled our registration")

    def _forget_registration(self, reason: str) -> None:
        log.warning("no longer registered (%s); registering again", reason)
        self._registered = False
        self._wake.set()

    async def _handle_event(self, event: dict[str, Any]) -> OptType:
        descriptor = event.get("event_descriptor") or {}
        event_id = descriptor.get("event_id", "?")
        self.events_received += 1
        try:
            answer = await self._on_event(event)
        except Exception:
            self.handler_errors += 1
            log.exception("on_event failed for event %s; opting out", event_id)
            return "optOut"
        if answer not in ("optIn", "optOut"):
            self.handler_errors += 1
            log.error("on_event returned %r for event %s; opting out", answer, event_id)
            return "optOut"
        return answer
