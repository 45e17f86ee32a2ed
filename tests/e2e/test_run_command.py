"""``aggregator run`` refuses bad settings with exit code 2 and one line naming the key."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


def run(config: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "planning: {dispatch_seconds: -1}\n",
            "planning.dispatch_seconds: Input should be greater than 0",
        ),
        ("mqtt: {urll: mqtt://x}\n", "mqtt.urll: Extra inputs are not permitted"),
        (
            "planning: {dispatch_seconds: 60, setpoint_lifetime_seconds: 30}\n",
            "setpoint_lifetime_seconds must exceed dispatch_seconds",
        ),
        ("fleet: missing.yaml\n", "fleet: "),
        (
            "settlement: {meter: {timezone: Mars/Olympus}}\n",
            "settlement.meter: Value error, timezone: unknown zone 'Mars/Olympus'",
        ),
        ("settlement: {meter: {x_days: 11}}\n", "x_days must not exceed y_days"),
        ("settlement: {baseline: average}\n", "settlement.baseline: Input should be 'plan'"),
        ("[1, 2]\n", "the top level must be a mapping"),
    ],
)
def test_bad_settings_exit_2_with_one_line(text: str, message: str, tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(text)
    result = run(config, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert str(config) in lines[0] or message.startswith("fleet")


def test_embedded_broker_port_in_use_exits_2_naming_the_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            f"database_url: sqlite:///{tmp_path / 'a.db'}\nmqtt: {{embedded_port: {port}}}\n"
            "log_level: WARNING\n"
        )
        result = run(config, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mqtt.embedded_port: cannot listen on {port}")


@pytest.mark.parametrize(
    ("openadr", "message"),
    [
        (
            "{vtn_url: 'http://127.0.0.1:9/OpenADR2/Simple/2.0b', ven_name: v, "
            "mapping: {programs: {p: {simple_levels: {1: {cap_kw: 1, shed_kw: 2}}}}}}",
            "openadr.mapping: ",
        ),
        (
            "{vtn_url: 'https://127.0.0.1:9/OpenADR2/Simple/2.0b', ven_name: v}",
            "openadr: cert, key, vtn_fingerprint: required for an https:// VTN",
        ),
    ],
)
def test_bad_openadr_settings_exit_2_before_anything_starts(
    openadr: str, message: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:  # the embedded broker's port is taken: never reached
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            f"database_url: sqlite:///{tmp_path / 'a.db'}\nmqtt: {{embedded_port: {port}}}\n"
            f"openadr: {openadr}\nlog_level: WARNING\n"
        )
        result = run(config, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert not (tmp_path / "a.db").exists()  # nothing was opened
