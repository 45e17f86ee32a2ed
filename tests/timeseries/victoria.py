"""A VictoriaMetrics server for tests: the InfluxDB v2 write API, read back via export."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BINARY = "victoria-metrics"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Victoria:
    """One ``victoria-metrics`` process on a fixed port and data folder; stop and start it
    again (same port, same data) to make an outage."""

    def __init__(self, binary: str, data: Path, log: Path) -> None:
        self.binary = binary
        self.data = data
        self.log = log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        assert self.proc is None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"-storageDataPath={self.data}",
                    f"-httpListenAddr=127.0.0.1:{self.port}",
                    "-retentionPeriod=100y",
                    "-loggerLevel=WARN",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"victoria-metrics did not answer on {self.url} in {timeout_s} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every raw sample of the series matching ``match`` (a series selector)."""
        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/internal/force_flush"), timeout=10
        ).close()
        body = urllib.parse.urlencode({"match[]": match}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/export", body, timeout=30) as r:
            text = r.read().decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def samples(self, match: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        """Per series (its labels, sorted), its (ms timestamp, value) samples by time."""
        out: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
        for series in self.export(match):
            key = tuple(sorted(series["metric"].items()))
            pairs = sorted(zip(series["timestamps"], series["values"], strict=True))
            out.setdefault(key, []).extend(pairs)
        return out


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[Victoria]:
    binary = shutil.which(BINARY)
    if binary is None:
        pytest.skip(
            "victoria-metrics is not installed (Debian: apt-get install victoria-metrics); "
            "the InfluxDB write path runs against it"
        )
    server = Victoria(binary, tmp_path / "victoria-data", tmp_path / "victoria.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
