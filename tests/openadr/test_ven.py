"""The VEN against openleadr's real VTN on loopback: registration, events, opt answers, outages.

Each test runs its own asyncio loop (``asyncio.run``) with an ``OpenADRServer`` on a free port,
plain HTTP and unsigned messages (TLS and fingerprint pinning are tested separately).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from connectors.openadr.ven import Ven, VenError, VenSettings, backoff_s
from tests.openadr.vtn import POLL, PREFIX, Vtn, free_port, run, until

# openleadr's OpenADRServer stores itself in its aiohttp app under a str key (server.py).
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


def settings(port: int) -> VenSettings:
    return VenSettings(
        vtn_url=f"http://127.0.0.1:{port}{PREFIX}",
        ven_name="fleet-ven",
        poll_interval_s=0.3,
        retry_min_s=0.05,
        retry_max_s=0.3,
        disable_signature=True,
    )


class Recorder:
    """An ``on_event`` handler that records the events and answers ``answer`` (or raises)."""

    def __init__(self, answer: str = "optIn", fail_for: int = 0) -> None:
        self.answer = answer
        self.fail_for = fail_for  # raise for this many events first
        self.events: list[dict[str, Any]] = []

    async def __call__(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        if len(self.events) <= self.fail_for:
            raise RuntimeError("handler bug")
        return self.answer

    def ids(self) -> list[str]:
        return [e["event_descriptor"]["event_id"] for e in self.events]


def test_backoff_doubles_and_is_capped() -> None:
    delays = [backoff_s(n, 0.5, 30.0) for n in range(1, 20)]
    assert 0.5 <= delays[0] <= 0.5
    assert 1.0 <= delays[2] <= 2.0  # 0.5 * 2**2 = 2, jittered down by at most half
    assert all(0.5 <= d <= 30.0 for d in delays)
    assert delays[-1] >= 15.0


def test_registers_and_answers_an_event_with_opt_in() -> None:
    async def body() -> None:
        port = free_port()
        vtn = Vtn(port)
        await vtn.start()
        handler = Recorder("optIn")
        ven = Ven(settings(port), handler)
        await ven.start()
        try:
            await until(lambda: ven.registered)
            assert ven.ven_id in vtn.registrations
            assert ven.registration_id == vtn.registrations[ven.ven_id]
            assert ven.poll_interval_s == pytest.approx(POLL.total_seconds())
            event_id = vtn.add_event(ven.ven_id)
            await until(lambda: (event_id, "optIn") in vtn.opts)
            assert handler.ids() == [event_id]
            signal = handler.events[0]["event_signals"][0]
            assert signal["signal_name"] == "SIMPLE"
            assert ven.events_received == 1
            assert ven.registrations == 1
            assert ven.registration_failures == 0
            assert ven.handler_errors == 0
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_vtn_down_at_start_then_up_registers_and_gets_events() -> None:
    async def body() -> None:
        port = free_port()
        handler = Recorder("optIn")
        ven = Ven(settings(port), handler)
        await ven.start()
        vtn = Vtn(port)
        try:
            # openleadr alone would have stopped after the first failure.
            await until(lambda: ven.registration_failures >= 3)
            assert not ven.registered
            await vtn.start()
            await until(lambda: ven.registered)
            assert ven.registrations == 1
            event_id = vtn.add_event(ven.ven_id)
            await until(lambda: (event_id, "optIn") in vtn.opts)
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_vtn_restart_mid_run_reregisters_and_keeps_polling() -> None:
    async def body() -> None:
        port = free_port()
        vtn = Vtn(port)
        await vtn.start()
        handler = Recorder("optIn")
        ven = Ven(settings(port), handler)
        await ven.start()
        try:
            await until(lambda: ven.registered)
            first = vtn.add_event(ven.ven_id)
            await until(lambda: (first, "optIn") in vtn.opts)
            ven_id = ven.ven_id

            await vtn.stop()
            failed_before = ven.polls_failed
            await until(lambda: ven.polls_failed >= failed_before + 2)  # polls go on, failing

            vtn = Vtn(port)  # the restarted VTN has forgotten every registration
            await vtn.start()
            await until(lambda: ven.registrations == 2)  # it asked us to re-register
            assert ven.registered
            assert ven.ven_id == ven_id  # we re-registered under the same venID
            second = vtn.add_event(ven.ven_id)
            await until(lambda: (second, "optIn") in vtn.opts)
            assert handler.ids() == [first, second]
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_handler_error_is_counted_and_answered_with_opt_out_and_polling_goes_on() -> None:
    async def body() -> None:
        port = free_port()
        vtn = Vtn(port)
        await vtn.start()
        handler = Recorder("optIn", fail_for=1)
        ven = Ven(settings(port), handler)
        await ven.start()
        try:
            await until(lambda: ven.registered)
            bad = vtn.add_event(ven.ven_id)
            await until(lambda: (bad, "optOut") in vtn.opts)
            assert ven.handler_errors == 1
            good = vtn.add_event(ven.ven_id)
            await until(lambda: (good, "optIn") in vtn.opts)
            assert ven.handler_errors == 1
            assert ven.events_received >= 2
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_handler_answer_other_than_opt_in_or_out_is_an_error_and_opts_out() -> None:
    async def body() -> None:
        port = free_port()
        vtn = Vtn(port)
        await vtn.start()
        ven = Ven(settings(port), Recorder("maybe"))
        await ven.start()
        try:
            await until(lambda: ven.registered)
            event_id = vtn.add_event(ven.ven_id)
            await until(lambda: (event_id, "optOut") in vtn.opts)
            assert ven.handler_errors == 1
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_opt_out_of_an_accepted_event_reaches_the_vtn_as_ei_opt() -> None:
    async def body() -> None:
        port = free_port()
        vtn = Vtn(port)
        await vtn.start()
        ven = Ven(settings(port), Recorder("optIn"))
        with pytest.raises(VenError):
            await ven.opt_out("e1", 0, "emergency")
        await ven.start()
        try:
            await until(lambda: ven.registered)
            event_id = vtn.add_event(ven.ven_id)
            await until(lambda: (event_id, "optIn") in vtn.opts)
            assert await ven.opt_out(event_id, 0, "emergency")
            [opt] = vtn.create_opts
            assert opt["opt_type"] == "optOut"
            assert opt["opt_reason"] == "emergency"
            assert opt["event_id"] == event_id
            assert opt["modification_number"] == 0
            assert opt["ven_id"] == ven.ven_id
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def _truncated(body: bytes) -> bytes:
    return body[: len(body) // 2]


def _without_intervals(body: bytes) -> bytes:
    """Well-formed XML that breaks the 2.0b schema: the event signal loses its intervals."""
    out = re.sub(rb"<(\w+:)?intervals[ >].*?</(\w+:)?intervals>", b"", body, flags=re.S)
    assert out != body
    return out


@pytest.mark.parametrize("corrupt", [_truncated, _without_intervals], ids=["malformed", "schema"])
def test_a_malformed_or_schema_invalid_event_is_rejected_and_polling_goes_on(
    corrupt: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        port = free_port()
        vtn = Vtn(port)
        await vtn.start()
        handler = Recorder("optIn")
        ven = Ven(settings(port), handler)
        await ven.start()
        try:
            await until(lambda: ven.registered)
            vtn.corrupt_events = corrupt
            bad = vtn.add_event(ven.ven_id)
            await until(lambda: vtn.corrupted >= 1)
            failed, polls = ven.polls_failed, ven.polls
            await until(lambda: ven.polls >= polls + 3)  # polling goes on
            assert ven.polls_failed == failed == 1  # the one bad message, nothing more
            assert handler.events == []  # nothing reached the lifecycle: no stored change
            assert "did not pass XML schema validation" in caplog.text
            vtn.corrupt_events = None
            good = vtn.add_event(ven.ven_id)  # the VTN sends its whole list again
            await until(lambda: (good, "optIn") in vtn.opts)
            assert set(handler.ids()) == {bad, good}
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)
