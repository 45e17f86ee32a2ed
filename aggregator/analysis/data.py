"""Where the notebooks' data comes from: shipped files, or a real store when one is configured.

Offline (the default) everything comes from files in the repository: the shipped scenarios
and ``notebooks/data/``. ``AGGREGATOR_DATABASE_URL`` (the service's own setting,
docs/storage.md) points the notebooks at a real store instead, read-only: no migration is
run, nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from aggregator.scenario.prices import read_price_csv
from connectors.sql import SqlRepository

DATABASE_URL_ENV = "AGGREGATOR_DATABASE_URL"


def read_prices(path: Path) -> pd.Series:
    """Day-ahead prices [EUR/MWh] by interval start (UTC) from a ``start,price_eur_per_mwh`` CSV.

    The scenario loader's reader: rows are checked (UTC times, numbers, no duplicate hours)
    and a bad row is named in the error.
    """
    series = read_price_csv(path, str(path))
    series.index.name = "start"
    series.name = "price_eur_per_mwh"
    return series


def configured_store_url() -> str | None:
    """The store named by ``AGGREGATOR_DATABASE_URL``, or None to run offline."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    return url or None


@contextmanager
def open_store(url: str) -> Iterator[SqlRepository]:
    """The SQL store at ``url`` for reading; its schema must already exist (no migration)."""
    repo = SqlRepository(url)
    try:
        yield repo
    finally:
        repo.dispose()
