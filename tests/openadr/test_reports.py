"""TELEMETRY_USAGE and TELEMETRY_STATUS reports against openleadr's real VTN on loopback.

The VEN offers one resource per site at registration, the VTN requests every data point at a
one-second sampling interval, and the values it receives are the aggregates of the telemetry
stored in a real SQLite repository.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.domain import Telemetry
from aggregator.services.reporting import TelemetryReports, site_reading
from connectors.openadr.reports import (
    STATUS_REPORT_ID,
    USAGE_REPORT_ID,
    ReportSpec,
    r_id,
    telemetry_reports,
)
from connectors.openadr.ven import Ven, VenSettings
from connectors.sql import SqlRepository, open_repository
from tests.openadr.vtn import PREFIX, Vtn, free_port, run, until

# openleadr's OpenADRServer stores itself in its aiohttp app under a str key (server.py).
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(minutes=5)
SAMPLING = timedelta(seconds=1)
SITES = ("site-a", "site-b", "site-c")


class FixedClock:
    def now(self) -> datetime:
        return NOW


def reading(
    site: str, charger: str, minutes_ago: float, kw: float, plugged: bool = True
) -> Telemetry:
    return Telemetry(site, charger, NOW - timedelta(minutes=minutes_ago), kw, plugged)


TELEMETRY = [
    # site-a: c1's newest reading is 7 kW (the older 3 kW is superseded), c2 11 kW,
    # c3's reading is older than MAX_AGE and counts 0 kW.
    reading("site-a", "c1", 4, 3.0),
    reading("site-a", "c1", 1, 7.0),
    reading("site-a", "c2", 2, 11.0),
    reading("site-a", "c3", 9, 50.0),
    # site-b: one vehicle discharging, one charger with nothing plugged in.
    reading("site-b", "c4", 0.5, -5.5),
    reading("site-b", "c5", 0.5, 0.0, plugged=False),
    # site-c: nothing recent, so offline and 0 kW.
    reading("site-c", "c6", 30, 22.0),
]
EXPECTED = {  # site: (power_kw, online, plugged)
    "site-a": (18.0, 1.0, 2.0),
    "site-b": (-5.5, 1.0, 1.0),
    "site-c": (0.0, 0.0, 0.0),
}


def settings(port: int) -> VenSettings:
    return VenSettings(
        vtn_url=f"http://127.0.0.1:{port}{PREFIX}",
        ven_name="fleet-ven",
        poll_interval_s=0.3,
        retry_min_s=0.05,
        retry_max_s=0.3,
        disable_signature=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> SqlRepository:
    repository = open_repository(f"sqlite:///{tmp_path / 'fleet.db'}")
    repository.add_telemetry(TELEMETRY)
    yield repository  # type: ignore[misc]
    repository.dispose()


def specs(repo: SqlRepository) -> list[ReportSpec]:
    source = TelemetryReports(repo, FixedClock(), MAX_AGE)
    return telemetry_reports(SITES, source, min_sampling=SAMPLING)


def all_ids() -> list[str]:
    return [r_id(site, q) for site in SITES for q in ("power_real", "online", "plugged")]


def test_expected_values_are_the_aggregates_of_the_stored_telemetry(repo: SqlRepository) -> None:
    stored = repo.telemetry(NOW - timedelta(hours=1), NOW + timedelta(seconds=1))
    for site, (kw, online, plugged) in EXPECTED.items():
        agg = site_reading(stored, site, NOW, MAX_AGE)
        assert (agg.power_kw, float(agg.online), float(agg.plugged)) == (kw, online, plugged)


def test_reports_registered_per_site_requested_and_delivered(repo: SqlRepository) -> None:
    async def body() -> None:
        port = free_port()
        vtn = Vtn(port, report_sampling=SAMPLING)
        await vtn.start()
        ven = Ven(settings(port), lambda e: _opt_in(), reports=specs(repo))
        await ven.start()
        try:
            await until(lambda: ven.registered and len(vtn.registered_reports) == 2)
            by_name = {r["report_name"]: r for r in vtn.registered_reports}
            assert set(by_name) == {"METADATA_TELEMETRY_USAGE", "METADATA_TELEMETRY_STATUS"}

            usage = by_name["METADATA_TELEMETRY_USAGE"]
            assert usage["report_specifier_id"] == USAGE_REPORT_ID
            rds = usage["report_descriptions"]
            assert sorted(rd["report_data_source"]["resource_id"] for rd in rds) == list(SITES)
            for rd in rds:
                site = rd["report_data_source"]["resource_id"]
                assert rd["r_id"] == r_id(site, "power_real")
                assert rd["measurement"]["name"] == "powerReal"
                assert rd["measurement"]["unit"] == "W"
                assert rd["measurement"]["scale"] == "k"
                assert rd["report_type"] == "reading"
                assert rd["sampling_rate"]["min_period"] == SAMPLING

            status = by_name["METADATA_TELEMETRY_STATUS"]
            assert status["report_specifier_id"] == STATUS_REPORT_ID
            rds = status["report_descriptions"]
            assert sorted(rd["r_id"] for rd in rds) == sorted(
                r_id(s, q) for s in SITES for q in ("online", "plugged")
            )
            for rd in rds:
                assert rd["r_id"].startswith(rd["report_data_source"]["resource_id"] + ":")
                assert rd["report_type"] == "x-resourceStatus"

            # The VTN asked for every data point every second: at least two samples each.
            await until(lambda: all(len(vtn.report_values.get(i, [])) >= 2 for i in all_ids()))
            for site, (kw, online, plugged) in EXPECTED.items():
                for quantity, expected in (("power_real", kw), ("online", online)):
                    values = [v for _, v in vtn.report_values[r_id(site, quantity)]]
                    assert values and all(v == pytest.approx(expected) for v in values)
                values = [v for _, v in vtn.report_values[r_id(site, "plugged")]]
                assert all(v == pytest.approx(plugged) for v in values)
            # Sampled at the requested second: no faster (one job per request), and a gap of
            # about a second (a loaded machine may make the scheduler skip a tick).
            key = r_id("site-a", "power_real")
            await until(lambda: len(vtn.report_values[key]) >= 3)
            stamps = [t for t, _ in vtn.report_values[key]]
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
            assert all(g >= 0.5 for g in gaps), gaps
            assert min(gaps) <= 1.3, gaps
            # What we sent passed the 2.0b XSD (ours before sending; the VTN's on receipt).
            assert not ven.outgoing.invalid
            for message in ("oadrRegisterReport", "oadrCreatedReport", "oadrUpdateReport"):
                assert ven.outgoing.validated[message] >= 1, message
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_values_follow_new_telemetry(repo: SqlRepository) -> None:
    async def body() -> None:
        port = free_port()
        vtn = Vtn(port, report_sampling=SAMPLING)
        await vtn.start()
        ven = Ven(settings(port), lambda e: _opt_in(), reports=specs(repo))
        await ven.start()
        key = r_id("site-c", "power_real")
        try:
            await until(lambda: len(vtn.report_values.get(key, [])) >= 1)
            assert vtn.report_values[key][-1][1] == 0.0
            await asyncio.to_thread(
                repo.add_telemetry,
                [reading("site-c", "c6", 0.1, 9.25), reading("site-c", "c7", 0, 1.0)],
            )
            await until(lambda: vtn.report_values[key][-1][1] == pytest.approx(10.25))
            online = r_id("site-c", "online")
            await until(lambda: vtn.report_values[online][-1][1] == 1.0)
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_restarted_vtn_gets_the_reports_again_without_duplicate_sampling(
    repo: SqlRepository,
) -> None:
    async def body() -> None:
        port = free_port()
        vtn = Vtn(port, report_sampling=SAMPLING)
        await vtn.start()
        ven = Ven(settings(port), lambda e: _opt_in(), reports=specs(repo))
        await ven.start()
        try:
            await until(lambda: len(vtn.report_values) == len(all_ids()))
            await vtn.stop()
            vtn = Vtn(port, report_sampling=SAMPLING)  # forgot every registration
            await vtn.start()
            await until(lambda: ven.registrations >= 2)
            await until(lambda: all(len(vtn.report_values.get(i, [])) >= 2 for i in all_ids()))
            # One request per report, one sampling job each: the first VTN's are gone.
            requests = ven._client.report_requests
            assert len(requests) == 2
            jobs = ven._client.scheduler.get_jobs()
            assert sum(1 for j in jobs if "update_report" in repr(j.func)) == 2
            for site, (kw, _, _) in EXPECTED.items():
                assert vtn.report_values[r_id(site, "power_real")][-1][1] == pytest.approx(kw)
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_a_failing_source_drops_samples_but_not_the_ven(repo: SqlRepository) -> None:
    async def broken(site_id: str) -> float:
        raise RuntimeError("store down")

    async def body() -> None:
        port = free_port()
        vtn = Vtn(port, report_sampling=SAMPLING)
        await vtn.start()
        good = specs(repo)
        bad = [ReportSpec("site-x", "power_real", broken, min_sampling=SAMPLING)]
        ven = Ven(settings(port), lambda e: _opt_in(), reports=[*good, *bad])
        await ven.start()
        try:
            await until(lambda: ven.registered)
            await until(lambda: ven.polls >= 5)
            assert r_id("site-x", "power_real") not in vtn.report_values
            # The status report has no broken data point: it keeps flowing.
            await until(lambda: len(vtn.report_values.get(r_id("site-a", "online"), [])) >= 2)
            assert ven.registered
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_duplicate_data_point_is_refused(repo: SqlRepository) -> None:
    one = specs(repo)[0]
    with pytest.raises(ValueError, match="offered twice"):
        Ven(settings(free_port()), lambda e: _opt_in(), reports=[one, one])


def test_report_spec_validates_sampling() -> None:
    async def zero(site_id: str) -> float:
        return 0.0

    with pytest.raises(ValueError, match="min_sampling"):
        ReportSpec("s", "online", zero, min_sampling=timedelta(0))
    with pytest.raises(ValueError, match="resource_id"):
        ReportSpec("", "online", zero)


async def _opt_in() -> str:
    return "optIn"
