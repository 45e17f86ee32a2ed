"""The running service plans with the forecast section: published prices, then the quantile."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.app import start_service
from aggregator.domain import TimeGrid
from aggregator.scenario import load_scenario
from aggregator.settings import ApiConfig, ForecastConfig, MqttConfig, RuntimeSettings
from aggregator.simulation.clock import ScaledClock
from connectors.mqtt.broker import free_port
from models.forecast import QuantilePriceForecasts
from tests.e2e.scenarios import write_depot
from tests.forecast.conftest import PRICES_SLICE


def test_the_service_plans_past_the_fleet_file_with_the_forecast(tmp_path: Path) -> None:
    # The fleet file's flat 50 EUR/MWh covers 1 Jan 2024 00:00-04:00; the history file ends
    # just before it. Past 04:00 the planner sees the forecaster's P75.
    start = datetime(2024, 1, 1, tzinfo=UTC)
    problem = load_scenario(write_depot(tmp_path / "depot.yaml", start))
    settings = RuntimeSettings(
        database_url=f"sqlite:///{tmp_path / 'f.db'}",
        mqtt=MqttConfig(embedded_port=free_port()),
        api=ApiConfig(enabled=False),
        forecast=ForecastConfig(history_csv=PRICES_SLICE, price_quantile=0.75),
    )

    async def run() -> tuple[list[str], tuple[float, ...]]:
        service = await start_service(settings, clock=ScaledClock(start, 1.0), scenario=problem)
        try:
            source = service.controller.forecasts.base  # under the event price overlay
            assert isinstance(source, QuantilePriceForecasts)
            grid = TimeGrid(start + timedelta(hours=2), timedelta(minutes=15), 16)
            return source.sources(grid), service.controller.forecasts.prices(grid).import_per_mwh
        finally:
            await service.stop()

    kinds, prices = asyncio.run(run())
    assert kinds == ["published"] * 8 + ["forecast"] * 8
    assert prices[:8] == (50.0,) * 8
    assert len(set(prices[8:])) > 1


def test_aggregator_run_with_a_bad_history_file_exits_2_with_one_line(tmp_path: Path) -> None:
    hours = [*range(5), *range(14, 20)]  # 00:00-04:00, then nothing until 14:00
    (tmp_path / "prices.csv").write_text(
        "start,price_eur_per_mwh\n" + "".join(f"2024-01-01T{h:02d}:00:00Z,{h}\n" for h in hours)
    )
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"database_url: sqlite:///{tmp_path / 'a.db'}\nforecast: {{history_csv: prices.csv}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("forecast.history_csv: ")
    assert "line 7" in lines[0] and "9 h missing" in lines[0]
    assert not (tmp_path / "a.db").exists()  # refused before anything was opened
