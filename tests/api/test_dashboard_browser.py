"""The dashboard in a real headless browser (Debian's chromium driven by Playwright).

Chromium is installed with apt when it is missing and we may (root, apt-get there); otherwise
the test skips with the reason. Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from aggregator.domain import EventRecord, GridEvent, Telemetry
from tests.api.conftest import Running
from tests.api.test_dashboard_api import depot_live, wait_for  # noqa: F401  (fixture)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", *args], env=env, capture_output=True, text=True, timeout=900, check=False
    )


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed with apt-get if missing (root only)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and we cannot apt-get install it (not root or no apt)")
    done = _apt("install", "-y", "--no-install-recommends", "chromium")
    if done.returncode != 0:
        _apt("update")
        done = _apt("install", "-y", "--no-install-recommends", "chromium")
    if done.returncode != 0 or not CHROMIUM.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"apt-get install chromium failed: {tail[0]}")
    return CHROMIUM


@pytest.fixture
def history(running: Running) -> Running:
    """Two hours of stored readings before the live ones (with a 10-minute gap where the
    gateway was silent) and a local cap event ahead, so the chart has something to draw.

    Requested before ``depot_live``: the live readings are stored after these."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = []
    for minutes in range(115, 0, -1):
        if 80 <= minutes < 90:
            continue  # the gap
        ts = now - timedelta(minutes=minutes)
        for i, charger in enumerate(("c0", "c1", "c2")):
            on = minutes < 100 - 20 * i  # c0 from 100 min ago, c1 from 80, c2 from 60
            power = (7.0 - 2 * i + 0.8 * math.sin(minutes / 7 + i)) if on else 0.0
            rows.append(Telemetry("depot", charger, ts, power, on, f"v{i}" if on else None))
    running.service.repo.add_telemetry(rows)
    start = now + timedelta(hours=2, minutes=15)
    cap = GridEvent("evening-cap", start, start + timedelta(hours=1), frozenset({"depot"}), 10.0)
    running.call(running.service.runtime.submit_event(EventRecord(cap)))
    return running


@pytest.fixture
def page(chromium: Path) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def test_the_dashboard_logs_in_shows_the_depot_and_updates_live(
    history: Running,
    depot_live: Running,  # noqa: F811
    page: Any,
    tmp_path: Path,
) -> None:
    running = depot_live
    origin = urlsplit(running.url).netloc
    elsewhere: list[str] = []
    problems: list[str] = []
    page.on(
        "request",
        lambda r: None if urlsplit(r.url).netloc in (origin, "") else elsewhere.append(r.url),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )

    page.goto(running.url + "/")
    assert page.url == running.url + "/dashboard"
    page.wait_for_selector("#login-form", state="visible")

    # A wrong key: a clear message, still on the sign-in form, nothing kept.
    page.fill("#token", "agg_this-is-not-a-key")
    page.click("#signin")
    error = page.wait_for_selector("#login-error", state="visible")
    assert "not accepted" in error.inner_text() and "unknown or revoked" in error.inner_text()
    assert page.is_hidden("#board")
    assert page.evaluate("sessionStorage.getItem('aggregator.apiKey')") is None
    page.screenshot(path=str(tmp_path / "login-error.png"))
    problems.clear()  # the browser logs the 401 itself

    page.fill("#token", running.operator)
    page.click("#signin")
    page.wait_for_selector(".site[data-site='depot'] svg.site-chart", state="visible")
    for vehicle in ("v0", "v1", "v2"):
        page.wait_for_selector(f"tr[data-vehicle='{vehicle}']", state="visible")
    assert page.is_hidden("#login")
    assert page.inner_text("#account") == "root (operator)"
    assert page.get_attribute("tr[data-vehicle='v2']", "data-status") == "shortfall"
    assert page.get_attribute("tr[data-vehicle='v0']", "data-status") == "on track"
    assert page.get_attribute("tr[data-vehicle='v1']", "data-status") == "on track"
    assert "online" in page.inner_text(".site[data-site='depot'] .site-head")
    assert page.locator(".site[data-site='depot'] tr[data-charger]").count() == 3
    # The local cap event: in the events table, and shaded on the chart.
    page.wait_for_selector("#events tr[data-event='evening-cap']", state="visible")
    assert "cap 10" in page.inner_text("#events tr[data-event='evening-cap']")
    assert page.locator("svg.site-chart rect.event[data-event='evening-cap']").count() == 1

    chart = ".site[data-site='depot'] svg.site-chart"

    def points() -> int:
        return int(page.get_attribute(chart, "data-points") or 0)

    # The stored history is there (2 h at 30 s buckets, less the gap), and the live readings.
    wait_for("the history on the site chart", lambda: points() > 150, timeout=10)
    path = page.locator(f"{chart} path.measured").get_attribute("d") or ""
    assert path.count("M") == 2, "one line before the gateway's silence, one after"
    first = page.get_attribute(chart, "data-last")
    first_points = points()
    # The next poll redraws the chart with a newer last point, without a reload.
    page.evaluate("window.__notReloaded = true")
    wait_for(
        "the chart to move on",
        lambda: page.get_attribute(chart, "data-last") != first,
        timeout=10,
    )
    assert page.evaluate("window.__notReloaded") is True
    assert points() >= first_points
    assert page.locator(f"{chart} path.measured").get_attribute("d")
    assert page.locator(f"{chart} path.plan").get_attribute("d")

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"dashboard screenshots: {shot}, {tmp_path / 'login-error.png'}")
    assert shot.stat().st_size > 10_000

    # A reload keeps the session (sessionStorage); signing out forgets the key.
    page.reload()
    page.wait_for_selector("tr[data-vehicle='v0']", state="visible")
    page.click("#signout")
    page.wait_for_selector("#login-form", state="visible")
    assert page.evaluate("sessionStorage.getItem('aggregator.apiKey')") is None

    assert elsewhere == [], f"the page loaded from elsewhere: {elsewhere}"
    assert problems == [], problems
