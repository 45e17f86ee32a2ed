"""SIGKILL the running aggregator, start it again: accepted state survives, no stale setpoints.

The aggregator runs as a real ``aggregator run`` process against a broker this test owns; a
gateway client plays the site. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.domain import DepartureConstraint, Setpoint, Telemetry
from connectors.mqtt.broker import EmbeddedBroker
from connectors.mqtt.gateway import GatewayClient
from connectors.mqtt.settings import MqttSettings
from connectors.sql import open_repository
from tests.e2e.scenarios import write_depot
from tests.mqtt.mqtt_helpers import BackgroundLoop, wait_until

EVENT = """
events:
  - {{id: dr-1, start: {start}, end: {end}, cap_kw: 12}}
"""


class Site:
    """A gateway that keeps reporting two plugged-in vehicles and records every setpoint."""

    def __init__(self, url: str, prefix: str) -> None:
        self.received: list[tuple[float, Setpoint]] = []
        self._lock = threading.Lock()
        settings = MqttSettings(url=url, prefix=prefix, client_id=f"gw-{prefix}", protocol="3.1.1")
        self.gateway = GatewayClient(settings, "depot", self._on_setpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, daemon=True)

    def _on_setpoint(self, sp: Setpoint) -> None:
        with self._lock:
            self.received.append((time.monotonic(), sp))

    def _report(self) -> None:
        while not self._stop.is_set():
            now = datetime.now(UTC)
            for charger, vehicle, soc in (("c0", "v0", 0.2), ("c1", "v1", 0.3)):
                self.gateway.publish_telemetry(
                    Telemetry("depot", charger, now, 0.0, True, vehicle, soc, "charging")
                )
            self._stop.wait(0.5)

    def start(self) -> None:
        self.gateway.start()
        assert self.gateway.wait_connected(10)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.gateway.stop()

    def since(self, t: float) -> list[Setpoint]:
        with self._lock:
            return [sp for at, sp in self.received if at >= t]


@pytest.fixture
def broker() -> Iterator[str]:
    loop = BackgroundLoop()
    broker = EmbeddedBroker()
    loop.run(broker.start())
    yield broker.url
    loop.run(broker.stop())
    loop.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("pg_database"))


def start_aggregator(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aggregator", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def test_sigkill_and_restart_lose_nothing_and_send_no_superseded_plan(
    broker: str, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    event = EVENT.format(
        start=(now + timedelta(hours=1)).strftime(fmt), end=(now + timedelta(hours=2)).strftime(fmt)
    )
    fleet = write_depot(tmp_path / "fleet.yaml", now.replace(microsecond=0), hours=48, events=event)
    prefix = f"restart-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"""
database_url: {database_url}
fleet: {fleet}
mqtt: {{url: "{broker}", prefix: {prefix}, client_id: agg-{prefix}, protocol: "3.1.1"}}
planning: {{dispatch_seconds: 0.5, setpoint_lifetime_seconds: 3, replan_minutes: 10}}
api: {{port: 0}}
"""
    )
    # A fleet manager's constraint, accepted before the vehicle arrives.
    repo = open_repository(database_url)
    constraint = DepartureConstraint("v0", now + timedelta(hours=3), target_soc=0.9)
    repo.save_constraint(constraint)
    repo.dispose()

    site = Site(broker, prefix)
    site.start()
    log = tmp_path / "aggregator.log"
    proc = start_aggregator(config, log)
    try:
        charging = lambda: any(  # noqa: E731
            sp.charger_id == "c0" and sp.power_kw > 0 for sp in site.since(0)
        )
        assert wait_until(charging, timeout=60), log.read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = time.monotonic()
        before = site.since(0)
        old_plans = {sp.plan_id for sp in before}
        old_max_seq = max(sp.seq for sp in before)

        repo = open_repository(database_url)
        try:
            sessions = {s.charger_id: s.session_id for s in repo.open_sessions()}
            assert set(sessions) == {"c0", "c1"}
            assert repo.constraints() == [constraint]
            assert [r.event.event_id for r in repo.events()] == ["dr-1"]
            stored_plans = {p.plan_id for p in repo.plans(limit=1000)}
            assert old_plans <= stored_plans  # every plan a setpoint came from was stored
        finally:
            repo.dispose()

        proc = start_aggregator(config, log)
        assert wait_until(lambda: len(site.since(killed_at)) >= 6, timeout=60), log.read_text()[
            -3000:
        ]
        after = site.since(killed_at)
        assert {sp.plan_id for sp in after}.isdisjoint(old_plans)
        assert min(sp.seq for sp in after) > old_max_seq
        assert any(sp.charger_id == "c0" and sp.power_kw > 0 for sp in after)

        repo = open_repository(database_url)
        try:
            # The same sessions go on: the restart opened no duplicates.
            assert {s.charger_id: s.session_id for s in repo.open_sessions()} == sessions
            latest = repo.latest_plan()
            assert latest is not None and latest[0].plan_id not in old_plans
        finally:
            repo.dispose()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        site.stop()
