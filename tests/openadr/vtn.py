"""openleadr's own VTN on loopback, as the peer for VEN tests (plain HTTP, unsigned)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from openleadr import OpenADRServer
from openleadr.service import handler
from openleadr.service.opt_service import OptService

# openleadr's OpenADRServer stores itself in its aiohttp app under a str key (server.py).

VTN_ID = "TEST_VTN"
POLL = timedelta(seconds=0.3)
PREFIX = "/OpenADR2/Simple/2.0b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _AckingOptService(OptService):  # openleadr's OptService leaves oadrCreateOpt unanswered
    def __init__(self, vtn_id: str, received: list[dict[str, Any]]) -> None:
        super().__init__(vtn_id)
        self.received = received

    @handler("oadrCreateOpt")
    async def create_opt(self, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.received.append(payload)
        return "oadrCreatedOpt", {"opt_id": payload["opt_id"]}


class Vtn:
    """An openleadr VTN that registers every VEN and records what the VENs answer.

    A new ``Vtn`` on the same port is a restarted VTN that forgot every registration.
    """

    def __init__(self, port: int, report_sampling: timedelta | None = None) -> None:
        self.port = port
        # Reports: with ``report_sampling`` set, every offered data point is requested at that
        # interval; the values openleadr's server delivers are kept per rID.
        self.report_sampling = report_sampling
        self.registered_reports: list[dict[str, Any]] = []  # oadrReport metadata, as offered
        self.report_values: dict[str, list[tuple[datetime, float]]] = {}  # rID -> values
        self.registrations: dict[str, str] = {}  # ven_id -> registration_id
        self.opts: list[tuple[str, str]] = []  # (event_id, opt_type) from oadrCreatedEvent
        self.create_opts: list[dict[str, Any]] = []  # oadrCreateOpt payloads (EiOpt)
        self.server = OpenADRServer(
            vtn_id=VTN_ID,
            http_host="127.0.0.1",
            http_port=port,
            requested_poll_freq=POLL,
            ven_lookup=self.ven_lookup,
            show_fingerprint=False,
        )
        self.server.add_handler("on_create_party_registration", self.on_create_party_registration)
        self.server.add_handler("on_register_report", self.on_register_report)
        opt_service = _AckingOptService(VTN_ID, self.create_opts)
        self.server.app.add_routes([web.post(f"{PREFIX}/EiOpt", opt_service.handler)])
        # Set to rewrite the body of every oadrDistributeEvent the VTN sends (bad input tests).
        self.corrupt_events: Callable[[bytes], bytes] | None = None
        self.corrupted = 0
        self.server.app.middlewares.append(self._corrupting)

    @web.middleware
    async def _corrupting(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        body = getattr(response, "body", None)
        if (
            self.corrupt_events is not None
            and isinstance(response, web.Response)
            and isinstance(body, bytes)
            and b"oadrDistributeEvent" in body
        ):
            response.body = self.corrupt_events(body)
            self.corrupted += 1
        return response

    def ven_lookup(self, ven_id: str) -> dict[str, Any] | None:
        if ven_id not in self.registrations:
            return None
        return {"ven_id": ven_id, "registration_id": self.registrations[ven_id]}

    def on_create_party_registration(self, payload: dict[str, Any]) -> tuple[str, str]:
        ven_id = payload.get("ven_id") or f"ven-{uuid.uuid4().hex[:8]}"
        self.registrations[ven_id] = f"reg-{uuid.uuid4().hex[:8]}"
        return ven_id, self.registrations[ven_id]

    def on_register_report(self, report: dict[str, Any]) -> list[tuple[str, Any, timedelta]] | None:
        """openleadr's "full" mode gets the whole report; (rID, callback, sampling) requests."""
        self.registered_reports.append(report)
        if self.report_sampling is None:
            return None
        return [
            (rd["r_id"], self._value_sink(rd["r_id"]), self.report_sampling)
            for rd in report["report_descriptions"]
        ]

    def _value_sink(self, r_id: str) -> Any:
        def receive(values: list[tuple[datetime, float]]) -> None:
            self.report_values.setdefault(r_id, []).extend(values)

        return receive

    def on_opt(self, ven_id: str, event_id: str, opt_type: str) -> None:
        self.opts.append((event_id, opt_type))

    def add_event(self, ven_id: str, level: float = 2.0) -> str:
        """A SIMPLE level event starting in a minute, lasting ten (so a response is required)."""
        start = datetime.now(UTC) + timedelta(minutes=1)
        event_id: str = self.server.add_event(
            ven_id=ven_id,
            signal_name="SIMPLE",
            signal_type="level",
            intervals=[
                {"dtstart": start, "duration": timedelta(minutes=10), "signal_payload": level}
            ],
            callback=self.on_opt,
        )
        return event_id

    async def start(self) -> None:
        await self.server.run()

    async def stop(self) -> None:
        await self.server.stop()


async def until(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait until ``cond()`` holds; fail the test after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def run(body: Callable[[], Awaitable[None]], timeout_s: float = 40.0) -> None:
    """Run one test body on a fresh event loop, bounded in time."""
    asyncio.run(asyncio.wait_for(body(), timeout=timeout_s))
