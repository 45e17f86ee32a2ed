"""Shared by the analysis and notebook tests: a SQL store holding one settled event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.analysis import events
from aggregator.domain import SettlementRecord
from connectors.sql import open_repository
from connectors.sql.settlements import SqlSettlementStore

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "config" / "scenarios" / "depot_v2g_dr.yaml"


@pytest.fixture(scope="module")
def shed() -> events.EventReview:
    """The depot scenario's morning shed, simulated without meter noise."""
    return events.simulate_event(SCENARIO, "dr-morning-shed", noise_kw=0.0)


def seed_store(url: str, review: events.EventReview) -> None:
    """Store ``review``'s settlement as the service would (modification 2)."""
    repo = open_repository(url)
    try:
        record = SettlementRecord(
            review.event_id,
            2,
            datetime(2024, 5, 15, 6, 5, tzinfo=UTC),
            "settled",
            "",
            settlement=review.settlement,
        )
        SqlSettlementStore(repo).save_settlement(record)
    finally:
        repo.dispose()


@pytest.fixture
def settled_store(tmp_path: Path, shed: events.EventReview) -> str:
    """A SQLite store holding the shed's settlement; its URL."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    seed_store(url, shed)
    return url
