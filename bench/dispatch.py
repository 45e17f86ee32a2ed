"""Benchmark the MQTT paths: one dispatch cycle of setpoints out, telemetry in at rising rates.

    python bench/dispatch.py            # 1,000 and 10,000 setpoints; telemetry up to 10,000/s
    python bench/dispatch.py --quick    # 1,000 setpoints; telemetry up to 2,000/s

Broker: Mosquitto at ``mqtt://127.0.0.1:1883`` (``--broker`` to change); if it does not answer,
an ``EmbeddedBroker`` (amqtt, MQTT 3.1.1) runs in this process instead and the table title
says so. Every run uses its own random topic prefix and client ids, and no persistent session
outlives it (session expiry 0).

**Setpoints.** N setpoints (chargers in sites of 50) go out through the production path,
``MqttConnector.publish`` (QoS 1, MQTT 5 message expiry), and, interleaved in the same run,
through a bare paho client publishing the same pre-encoded messages at QoS 1 in a loop (the
reference: no translation, no bookkeeping); a third path, "paho + expiry", is the reference
plus the MQTT 5 message expiry property that ``MqttLink`` builds for every setpoint, to tell
that cost apart from ours. A separate helper process receives them with plain
paho clients, each subscribed like a gateway to its sites' setpoint topics, at most 20 sites
(1,000 chargers) per client. Not one ``GatewayClient`` per site: that is 200 network threads
for 10,000 setpoints, and its decode and ``seq`` checks run on the gateway, not on what is
measured here; one wildcard client for all 10,000 would run into Mosquitto's default queue of
1,000 QoS 1 messages per client, which a gateway of one site never meets. Latency is arrival
time minus the moment the message was handed to paho (recorded per ``seq``); wall time runs
from the first publish call to the last arrival.

**Telemetry.** The helper process publishes contract telemetry (``ts`` = publish time, the
run's tag in ``status``) with one plain paho client, paced at rising target rates, to an
``MqttConnector`` whose handler is the real ``AggregatorRuntime``: ``call_soon_threadsafe``
into this process's asyncio loop, ``FleetController.ingest``, and the runtime's own 1-s
``flush_telemetry`` job (``take_telemetry`` -> ``repo.add_telemetry``) into SQLite
(``open_repository`` on a temporary file). The planner is a stub returning an empty plan, and
re-plans that telemetry requests (vehicle arrivals) are counted, not run: the planner has its
own benchmark. Every charger first reports one plugged-in vehicle (the warm-up row: each opens
a session, one SQL write), so the measured rates are steady-state readings of open sessions.
Latency is ingest time minus ``ts``. A rate is *sustained with no loss* when every message
sent was received, ingested and stored; it is also *kept up with* when the backlog is gone
within 0.5 s of the publisher stopping (a short step hides a consumer slower than the rate:
the backlog waits, unbounded, in the event loop's queue). Escalation stops at the first rate
with loss. The reference, right after each step: the same traffic (on another prefix) into a
bare paho subscriber in this process that only keeps each message. A last table gives the CPU
cost per message of each stage measured alone, against the whole path's marginal cost.

Results: tables on stdout and JSON in ``bench/results/dispatch.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import multiprocessing
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt
import paho.mqtt.client as mqtt
import sqlalchemy
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from aggregator.app import FlatForecasts, SystemClock
from aggregator.domain import (
    Charger,
    CostBreakdown,
    Fleet,
    FleetProblem,
    Plan,
    Setpoint,
    Site,
    SiteStatus,
    Telemetry,
    Vehicle,
)
from aggregator.runtime import AggregatorRuntime
from aggregator.services.control import ControlSettings, FleetController, IngestResult
from connectors.mqtt.broker import EmbeddedBroker
from connectors.mqtt.client import MqttConnector
from connectors.mqtt.settings import MqttSettings, ProtocolChoice
from connectors.mqtt.translate import Topics, decode_telemetry, encode_setpoint
from connectors.sql import open_repository

HERE = Path(__file__).resolve().parent
CHARGERS_PER_SITE = 50
SITES_PER_RECEIVER = 20  # <= 1,000 setpoints per receiving client: Mosquitto's default queue
DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
PATHS = ("reference", "paho+expiry", "ours")
PATH_LABELS = {
    "ours": "MqttConnector",
    "paho+expiry": "paho + expiry",
    "reference": "bare paho",
}
IDLE_TIMEOUT_S = 5.0  # give up waiting when nothing arrived for this long
TOTAL_TIMEOUT_S = 60.0
# A rate is "kept up with" when, besides no loss, the backlog is gone this soon after the
# publisher stops (a consumer slower than the rate only looks lossless in a short step).
KEEP_UP_DRAIN_S = 0.5


# --------------------------------------------------------------------------- shared helpers


def site_of(i: int) -> str:
    return f"site-{i // CHARGERS_PER_SITE:04d}"


def charger_of(i: int) -> str:
    return f"c-{i:05d}"


def vehicle_of(i: int) -> str:
    return f"ev-{i:05d}"


def percentile_ms(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q) * 1000.0) if values else float("nan")


def paho_client(client_id: str, protocol: str) -> mqtt.Client:
    """A plain paho client with a clean session (the helper process and the reference)."""
    v5 = protocol == "5"
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else True,
    )


def connect_and_wait(client: mqtt.Client, host: str, port: int, timeout: float = 10.0) -> None:
    """Connect, start the network thread, and wait for CONNACK."""
    up = threading.Event()

    def on_connect(
        c: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if not reason.is_failure:
            up.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=60)
    client.loop_start()
    if not up.wait(timeout):
        client.loop_stop()
        raise RuntimeError(f"no CONNACK from {host}:{port} within {timeout} s")


def telemetry_payload(ts: str, vehicle_id: str, tag: str) -> bytes:
    """A contract telemetry message (checked against ``decode_telemetry`` at start-up)."""
    return (
        f'{{"ts":"{ts}","power_kw":7.4,"plugged":true,"vehicle_id":"{vehicle_id}",'
        f'"soc":0.5,"status":"{tag}"}}'
    ).encode()


def cpu_seconds_of(pid: int | None) -> float | None:
    """user + system CPU seconds of another process (/proc), None if not readable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_mosquitto_pid(port: int) -> int | None:
    """The pid of a local ``mosquitto`` process, for its CPU time (best effort)."""
    if port != 1883:
        return None
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "mosquitto":
                    return int(entry.name)
            except OSError:
                continue
    return None


# --------------------------------------------------------------------------- helper process


@dataclass
class Helper:
    """State of the helper process: setpoint receivers and the telemetry publisher."""

    host: str
    port: int
    protocol: str
    run_id: str
    arrivals: list[tuple[float, bytes]] = field(default_factory=list)
    receivers: list[mqtt.Client] = field(default_factory=list)
    publisher: mqtt.Client | None = None
    acked: int = 0

    def receive(self, filters: list[list[str]]) -> dict[str, Any]:
        """One client per list of topic filters; returns once every SUBACK is in."""
        subscribed = threading.Semaphore(0)

        def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            self.arrivals.append((time.time(), bytes(msg.payload)))

        def on_subscribe(c: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
            subscribed.release()

        for k, group in enumerate(filters):
            client = paho_client(f"bench-{self.run_id}-rx{k}", self.protocol)
            client.on_message = on_message
            client.on_subscribe = on_subscribe
            connect_and_wait(client, self.host, self.port)
            client.subscribe([(f, 1) for f in group])
            self.receivers.append(client)
        for _ in filters:
            if not subscribed.acquire(timeout=10.0):
                raise RuntimeError("no SUBACK within 10 s")
        return {"clients": len(filters)}

    def collect(self, lo: int, hi: int) -> dict[str, Any]:
        """Wait for setpoints with ``lo <= seq < hi``; their (seq, arrival time), then forget."""
        want = hi - lo
        start = last_change = time.monotonic()
        seen = 0
        while True:
            n = len(self.arrivals)
            now = time.monotonic()
            if n != seen:
                seen, last_change = n, now
            if n >= want:
                seqs = {json.loads(p)["seq"] for _, p in self.arrivals[:n]}
                if len({s for s in seqs if lo <= s < hi}) >= want:
                    break
            if now - last_change > IDLE_TIMEOUT_S or now - start > TOTAL_TIMEOUT_S:
                break
            time.sleep(0.005)
        time.sleep(0.2)  # let duplicates (QoS 1 may deliver twice) show up
        got, self.arrivals = self.arrivals, []
        out = []
        for t, payload in got:
            seq = int(json.loads(payload)["seq"])
            if lo <= seq < hi:
                out.append((seq, t))
        return {"arrivals": out}

    def publish(
        self, prefix: str, n_chargers: int, rate: float, duration: float, qos: int, tag: str
    ) -> dict[str, Any]:
        """Paced telemetry, round robin over the chargers; returns what was sent, and when."""
        if self.publisher is None:
            client = paho_client(f"bench-{self.run_id}-tx", self.protocol)

            def on_publish(c: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
                self.acked += 1

            client.on_publish = on_publish
            client.max_queued_messages_set(0)
            connect_and_wait(client, self.host, self.port)
            self.publisher = client
        client = self.publisher
        topics = Topics(prefix)
        targets = [
            (topics.telemetry(site_of(i), charger_of(i)), vehicle_of(i)) for i in range(n_chargers)
        ]
        total = max(1, round(rate * duration))
        self.acked = 0
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        first = time.time()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - t0) * rate) + 1)
            if sent >= due:
                time.sleep(max(0.0, t0 + sent / rate - time.perf_counter()))
                continue
            while sent < due:
                topic, vehicle = targets[sent % n_chargers]
                ts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                client.publish(topic, telemetry_payload(ts, vehicle, tag), qos=qos)
                sent += 1
        last = time.time()
        elapsed = time.perf_counter() - t0
        deadline = time.monotonic() + 30.0
        while self.acked < sent and time.monotonic() < deadline:  # QoS 1: PUBACKs; 0: written
            time.sleep(0.01)
        return {
            "sent": sent,
            "acked": self.acked,
            "first": first,
            "last": last,
            "elapsed_s": elapsed,
            "cpu_s": time.process_time() - cpu0,
        }

    def close(self) -> None:
        for client in [*self.receivers, *([self.publisher] if self.publisher else [])]:
            client.disconnect()
            client.loop_stop()


def helper_main(conn: Connection, host: str, port: int, protocol: str, run_id: str) -> None:
    """Entry point of the helper process: answer commands from the pipe until ``stop``."""
    helper = Helper(host, port, protocol, run_id)
    try:
        while True:
            cmd, kwargs = conn.recv()
            if cmd == "stop":
                break
            try:
                conn.send(("ok", getattr(helper, cmd)(**kwargs)))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        helper.close()
        conn.close()


class HelperProcess:
    def __init__(self, host: str, port: int, protocol: str, run_id: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._lock = threading.Lock()
        self.process = ctx.Process(
            target=helper_main, args=(child, host, port, protocol, run_id), daemon=True
        )
        self.process.start()
        child.close()

    def call(self, cmd: str, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self._conn.send((cmd, kwargs))
            status, result = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"helper process: {cmd} failed: {result}")
        return dict(result)

    def stop(self) -> None:
        with self._lock:
            self._conn.send(("stop", {}))
        self.process.join(10.0)
        if self.process.is_alive():
            self.process.terminate()


# --------------------------------------------------------------------------- broker


class ThreadedBroker:
    """The fallback: an ``EmbeddedBroker`` on its own asyncio loop in a thread of this process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.broker = EmbeddedBroker()

    def start(self) -> str:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.broker.start(), self.loop).result(15.0)
        return self.broker.url

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.broker.stop(), self.loop).result(15.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5.0)


def probe_broker(host: str, port: int, timeout: float = 3.0) -> str | None:
    """The broker's version (``$SYS/broker/version``, "unknown" if it keeps it to itself),
    or None when no MQTT broker accepts a connection at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        return None
    client = paho_client(f"bench-probe-{uuid.uuid4().hex[:8]}", "3.1.1")
    version: list[str] = []
    got = threading.Event()

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        version.append(msg.payload.decode(errors="replace"))
        got.set()

    client.on_message = on_message
    try:
        connect_and_wait(client, host, port, timeout)
    except (OSError, RuntimeError):
        return None
    client.subscribe("$SYS/broker/version")
    got.wait(1.0)
    client.disconnect()
    client.loop_stop()
    return version[0] if version else "unknown"


# --------------------------------------------------------------------------- setpoint dispatch


class TimedConnector(MqttConnector):
    """The production connector, recording when each setpoint is handed to paho (by seq)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_at: dict[int, float] = {}

    def _send(self, sp: Setpoint, now: datetime) -> None:
        self.sent_at[sp.seq] = time.time()
        super()._send(sp, now)


class NullHandler:
    """Telemetry handler for the dispatch connector (nothing arrives on its topics)."""

    def on_telemetry(self, topic: str, telemetry: Telemetry) -> None:
        pass

    def on_site_status(self, status: SiteStatus) -> None:
        pass

    def on_reject(self, topic: str, reason: str) -> None:
        pass


def make_setpoints(n: int, first_seq: int) -> list[Setpoint]:
    now = datetime.now(UTC)
    rng = np.random.default_rng(first_seq)
    powers = rng.uniform(-11.0, 11.0, n).round(2)
    return [
        Setpoint(
            charger_id=charger_of(i),
            site_id=site_of(i),
            power_kw=float(powers[i]),
            issued_at=now,
            valid_until=now + timedelta(minutes=5),
            plan_id="bench-dispatch",
            seq=first_seq + i,
        )
        for i in range(n)
    ]


def dispatch_once(
    path: str,
    setpoints: list[Setpoint],
    connector: TimedConnector,
    reference: mqtt.Client,
    helper: HelperProcess,
) -> dict[str, Any]:
    """Publish one cycle by ``path`` and wait for every arrival.

    ``ours``: ``MqttConnector.publish``. ``reference``: the same topics and pre-encoded payloads
    through a bare paho client. ``paho+expiry``: the reference plus the MQTT 5 message expiry
    property that ``MqttLink`` builds for every setpoint.
    """
    lo, hi = setpoints[0].seq, setpoints[-1].seq + 1
    sent_at: dict[int, float]
    if path == "ours":
        connector.sent_at = sent_at = {}
        start = time.time()
        connector.publish(setpoints)
        handoff = time.time() - start
    else:
        topics = connector.topics
        messages = [
            (sp.seq, topics.setpoint(sp.site_id, sp.charger_id), encode_setpoint(sp))
            for sp in setpoints
        ]
        expiry = path == "paho+expiry" and reference.protocol == mqtt.MQTTv5
        sent_at = {}
        start = time.time()
        for seq, topic, payload in messages:
            sent_at[seq] = time.time()
            properties = None
            if expiry:  # what MqttLink adds to every setpoint on MQTT 5
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                properties.MessageExpiryInterval = 300
            reference.publish(topic, payload, qos=1, properties=properties)
        handoff = time.time() - start
    arrivals = helper.call("collect", lo=lo, hi=hi)["arrivals"]
    first_arrival: dict[int, float] = {}
    for seq, t in arrivals:
        first_arrival.setdefault(seq, t)
    latencies = [t - sent_at[seq] for seq, t in first_arrival.items() if seq in sent_at]
    last = max(first_arrival.values(), default=start)
    wall = last - start
    n = len(setpoints)
    return {
        "path": path,
        "n": n,
        "handed_to_paho": len(sent_at),
        "received": len(first_arrival),
        "lost": n - len(first_arrival),
        "duplicates": len(arrivals) - len(first_arrival),
        "handoff_s": handoff,
        "wall_s": wall,
        "rate_per_s": len(first_arrival) / wall if wall > 0 else float("nan"),
        "p50_ms": percentile_ms(latencies, 50),
        "p95_ms": percentile_ms(latencies, 95),
        "max_ms": percentile_ms(latencies, 100),
    }


def run_dispatch(
    sizes: Sequence[int],
    repeats: dict[int, int],
    settings: MqttSettings,
    protocol: str,
    helper: HelperProcess,
    console: Console,
) -> list[dict[str, Any]]:
    host, port = settings.endpoint.host, settings.endpoint.port
    n_sites = -(-max(sizes) // CHARGERS_PER_SITE)
    topics = Topics(settings.prefix)
    sites = [f"site-{s:04d}" for s in range(n_sites)]
    groups = [
        [topics.site_setpoints(s) for s in sites[k : k + SITES_PER_RECEIVER]]
        for k in range(0, n_sites, SITES_PER_RECEIVER)
    ]
    helper.call("receive", filters=groups)
    connector = TimedConnector(settings, NullHandler())
    connector.start()
    if not connector.wait_connected(15.0):
        raise RuntimeError("the MqttConnector did not connect within 15 s")
    reference = paho_client(f"{settings.client_id}-ref", protocol)
    connect_and_wait(reference, host, port)
    seq = 1
    rows = []
    try:
        for n in sizes:
            runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PATHS}
            console.print(
                f"[dim]dispatch: {n:,} setpoints x {repeats[n]} repeats per path "
                f"({len(groups)} receiving client(s))...[/dim]"
            )
            for k in range(repeats[n]):
                # Interleaved, and rotated so that no path always follows the same one.
                for path in PATHS[k % len(PATHS) :] + PATHS[: k % len(PATHS)]:
                    setpoints = make_setpoints(n, seq)
                    seq += n
                    runs[path].append(dispatch_once(path, setpoints, connector, reference, helper))
            for path in ("ours", "paho+expiry", "reference"):
                rs = runs[path]
                row: dict[str, Any] = {"n": n, "path": path, "repeats": len(rs), "runs": rs}
                for key in ("handoff_s", "wall_s", "rate_per_s", "p50_ms", "p95_ms", "max_ms"):
                    row[key] = statistics.median(r[key] for r in rs)
                row["lost"] = sum(r["lost"] for r in rs)
                row["duplicates"] = sum(r["duplicates"] for r in rs)
                rows.append(row)
            ref = rows[-1]
            for row in rows[-3:]:
                row["ratio"] = row["rate_per_s"] / ref["rate_per_s"]
    finally:
        reference.disconnect()
        reference.loop_stop()
        connector.stop()
    return rows


# --------------------------------------------------------------------------- telemetry ingest


class StubPlanner:
    """Returns an empty plan at once: the planner is not what this benchmark measures."""

    def plan(self, problem: FleetProblem) -> Plan:
        return Plan(
            grid=problem.grid,
            schedules=(),
            site_power_kw={},
            site_battery_kw={},
            outcomes=(),
            events=(),
            cost=CostBreakdown(0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            solver_path="heuristic",
            solver_status="bench stub",
        )


class MeasuredController(FleetController):
    """The production controller; times readings whose ``status`` is the current tag."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag = ""
        self.latencies: list[float] = []
        self.first_at: float | None = None
        self.last_at: float | None = None

    def start_tag(self, tag: str) -> None:
        self.tag, self.latencies, self.first_at, self.last_at = tag, [], None, None

    def ingest(self, topic: str, t: Telemetry) -> IngestResult:
        result = super().ingest(topic, t)
        if t.status == self.tag:
            now = time.time()
            self.latencies.append(now - t.ts.timestamp())
            if self.first_at is None:
                self.first_at = now
            self.last_at = now
        return result


class BenchRuntime(AggregatorRuntime):
    """The production runtime; re-plans that telemetry asks for are counted, not run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replans_requested: Counter[str] = Counter()

    def request_replan(self, reason: str) -> None:
        self.replans_requested[reason.split(" ")[0]] += 1


def make_fleet(n_chargers: int) -> Fleet:
    n_sites = -(-n_chargers // CHARGERS_PER_SITE)
    return Fleet(
        sites=tuple(Site(f"site-{s:04d}", import_limit_kw=500.0) for s in range(n_sites)),
        chargers=tuple(Charger(charger_of(i), site_of(i), 11.0) for i in range(n_chargers)),
        vehicles=tuple(Vehicle(vehicle_of(i), 60.0, 11.0) for i in range(n_chargers)),
    )


class TimedRepository:
    """Wraps the repository's ``add_telemetry`` to time each flush (batch size, seconds)."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo
        self.flushes: list[tuple[int, float]] = []
        inner = repo.add_telemetry

        def add_telemetry(items: Sequence[Telemetry]) -> None:
            start = time.perf_counter()
            inner(items)
            self.flushes.append((len(items), time.perf_counter() - start))

        repo.add_telemetry = add_telemetry

    def stored(self, tag: str) -> int:
        with self.repo.engine.connect() as c:
            count = c.execute(
                text("SELECT count(*) FROM telemetry WHERE status = :tag"), {"tag": tag}
            ).scalar_one()
        return int(count)


class BareSubscriber:
    """A plain paho client subscribed like the aggregator (wildcard, QoS 1), doing nothing."""

    def __init__(self, settings: MqttSettings, protocol: str, topic_filter: str) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        subscribed = threading.Event()

        def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            self.arrivals.append((time.time(), bytes(msg.payload)))

        def on_subscribe(c: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
            subscribed.set()

        self.client = paho_client(f"{settings.client_id}-ref", protocol)
        self.client.on_message = on_message
        self.client.on_subscribe = on_subscribe
        connect_and_wait(self.client, settings.endpoint.host, settings.endpoint.port)
        self.client.subscribe(topic_filter, qos=1)
        if not subscribed.wait(10.0):
            raise RuntimeError("no SUBACK within 10 s")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stage_costs(
    controller: MeasuredController, timed: TimedRepository, n_chargers: int, n: int = 5000
) -> dict[str, float]:
    """CPU microseconds per message of each stage of the ingest path, alone, on this thread
    (``thread_time``: the process's other threads are not counted)."""
    topics = Topics("stage")
    now = datetime.now(UTC)
    messages = [
        (
            topics.telemetry(site_of(i % n_chargers), charger_of(i % n_chargers)),
            telemetry_payload(
                (now + timedelta(microseconds=i)).isoformat().replace("+00:00", "Z"),
                vehicle_of(i % n_chargers),
                "stage",
            ),
        )
        for i in range(n)
    ]
    gc.collect()
    start = time.thread_time()
    decoded = [(topic, decode_telemetry(topics, topic, payload)) for topic, payload in messages]
    decode_s = time.thread_time() - start
    loop = asyncio.new_event_loop()
    try:
        gc.collect()
        start = time.thread_time()
        for topic, t in decoded:
            loop.call_soon_threadsafe(controller.ingest, topic, t)
        handoff_s = time.thread_time() - start
    finally:
        loop.close()
    controller.take_telemetry()  # whatever the last flush left, so the batch is ours alone
    gc.collect()
    start = time.thread_time()
    for topic, t in decoded:
        FleetController.ingest(controller, topic, t)  # without MeasuredController's timing
    ingest_s = time.thread_time() - start
    batch = controller.take_telemetry()
    gc.collect()
    start, wall = time.thread_time(), time.perf_counter()
    timed.repo.add_telemetry(batch)
    store_s, store_wall = time.thread_time() - start, time.perf_counter() - wall
    rows = max(1, len(batch))
    return {
        "messages": n,
        "decode_telemetry_us": 1e6 * decode_s / n,
        "call_soon_threadsafe_us": 1e6 * handoff_s / n,
        "controller_ingest_us": 1e6 * ingest_s / n,
        "sqlite_add_telemetry_us_per_row": 1e6 * store_s / rows,
        "sqlite_add_telemetry_wall_us_per_row": 1e6 * store_wall / rows,
    }


def marginal_us(points: Sequence[tuple[float, float]]) -> float:
    """Slope of CPU seconds over messages, in microseconds: the cost of one more message."""
    if len(points) < 2:
        return float("nan")
    x, y = np.asarray(points).T
    return float(np.polyfit(x, y, 1)[0] * 1e6)


@dataclass
class IngestBench:
    controller: MeasuredController
    runtime: BenchRuntime
    connector: MqttConnector
    timed: TimedRepository
    helper: HelperProcess
    prefix: str
    n_chargers: int
    broker_pid: int | None
    reference: BareSubscriber | None = None

    async def reference_step(
        self, tag: str, rate: float, duration: float, qos: int
    ) -> dict[str, Any]:
        """The same traffic (to ``{prefix}-ref``) into a bare paho subscriber that only keeps
        each message and its arrival time: what paho and the broker deliver without our path."""
        ref = self.reference
        assert ref is not None
        ref.arrivals = []
        cpu0, wall0 = time.process_time(), time.time()
        sent = await asyncio.to_thread(
            self.helper.call,
            "publish",
            prefix=f"{self.prefix}-ref",
            n_chargers=self.n_chargers,
            rate=rate,
            duration=duration,
            qos=qos,
            tag=tag,
        )
        n = sent["sent"]
        seen, last_change = -1, time.monotonic()
        while len(ref.arrivals) < n:
            now = time.monotonic()
            if len(ref.arrivals) != seen:
                seen, last_change = len(ref.arrivals), now
            elif now - last_change > IDLE_TIMEOUT_S:
                break
            await asyncio.sleep(0.02)
        cpu, wall = time.process_time() - cpu0, time.time() - wall0
        arrivals, ref.arrivals = ref.arrivals, []
        latencies = [
            t - datetime.fromisoformat(json.loads(payload)["ts"]).timestamp()
            for t, payload in arrivals
        ]
        span = arrivals[-1][0] - arrivals[0][0] if len(arrivals) > 1 else 0.0
        return {
            "sent": n,
            "received": len(arrivals),
            "lost": n - len(arrivals),
            "received_per_s": len(arrivals) / span if span > 0 else float("nan"),
            "p50_ms": percentile_ms(latencies, 50),
            "p95_ms": percentile_ms(latencies, 95),
            "drain_s": arrivals[-1][0] - sent["last"] if arrivals else float("nan"),
            "cpu_s": cpu,
            "cpu_pct": 100.0 * cpu / wall,
        }

    async def step(self, tag: str, rate: float, duration: float, qos: int) -> dict[str, Any]:
        """Publish at ``rate`` for ``duration`` s; wait until ingested and stored; measure."""
        ctl, connector = self.controller, self.connector
        ctl.start_tag(tag)
        received0, rejected0 = connector.received, connector.rejected
        flushes0 = len(self.timed.flushes)
        cpu0, broker0, wall0 = time.process_time(), cpu_seconds_of(self.broker_pid), time.time()
        sent = await asyncio.to_thread(
            self.helper.call,
            "publish",
            prefix=self.prefix,
            n_chargers=self.n_chargers,
            rate=rate,
            duration=duration,
            qos=qos,
            tag=tag,
        )
        n = sent["sent"]
        # Wait for the backlog: every message ingested, or nothing new for IDLE_TIMEOUT_S.
        seen, last_change = -1, time.monotonic()
        while len(ctl.latencies) < n:
            now = time.monotonic()
            if len(ctl.latencies) != seen:
                seen, last_change = len(ctl.latencies), now
            elif now - last_change > IDLE_TIMEOUT_S:
                break
            await asyncio.sleep(0.02)
        done = time.time()
        cpu1, broker1 = time.process_time(), cpu_seconds_of(self.broker_pid)
        await self.runtime.flush_telemetry()  # what the 1-s job would store next
        stored = 0
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:  # a scheduled flush may still be in its thread
            stored = await asyncio.to_thread(self.timed.stored, tag)
            if stored >= len(ctl.latencies):
                break
            await asyncio.sleep(0.1)
        ingested = len(ctl.latencies)
        received = connector.received - received0
        flushes = self.timed.flushes[flushes0:]
        ingest_span = (ctl.last_at or 0.0) - (ctl.first_at or 0.0)
        wall = done - wall0
        return {
            "tag": tag,
            "qos": qos,
            "target_per_s": rate,
            "duration_s": duration,
            "sent": n,
            "acked_by_publisher": sent["acked"],
            "achieved_per_s": n / sent["elapsed_s"] if sent["elapsed_s"] > 0 else float("nan"),
            "received": received,
            "rejected": connector.rejected - rejected0,
            "ingested": ingested,
            "stored": stored,
            "lost": n - min(received, ingested, stored),
            "ingest_per_s": ingested / ingest_span if ingest_span > 0 else float("nan"),
            "p50_ms": percentile_ms(ctl.latencies, 50),
            "p95_ms": percentile_ms(ctl.latencies, 95),
            "max_ms": percentile_ms(ctl.latencies, 100),
            "drain_s": (ctl.last_at or sent["last"]) - sent["last"],
            "aggregator_cpu_s": cpu1 - cpu0,
            "aggregator_cpu_pct": 100.0 * (cpu1 - cpu0) / wall,
            "publisher_cpu_pct": 100.0 * sent["cpu_s"] / wall,
            "broker_cpu_pct": None
            if broker0 is None or broker1 is None
            else 100.0 * (broker1 - broker0) / wall,
            "flushes": len(flushes),
            "max_flush_rows": max((f[0] for f in flushes), default=0),
            "max_flush_s": max((f[1] for f in flushes), default=0.0),
            "flush_rows_per_s": sum(f[0] for f in flushes) / sum(f[1] for f in flushes)
            if flushes
            else float("nan"),
        }


async def run_telemetry(
    settings: MqttSettings,
    helper: HelperProcess,
    n_chargers: int,
    rates: Sequence[int],
    duration: float,
    qos_levels: Sequence[int],
    broker_pid: int | None,
    ref_protocol: str,
    console: Console,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        repo = await asyncio.to_thread(open_repository, f"sqlite:///{tmp}/bench.db")
        timed = TimedRepository(repo)
        await asyncio.to_thread(repo.save_fleet, make_fleet(n_chargers))
        clock = SystemClock()
        # Dispatch and periodic re-plans an hour away: only telemetry runs in the loop.
        control = ControlSettings(dispatch_period=timedelta(hours=1))
        controller = MeasuredController(repo, FlatForecasts(50.0), clock, control)
        runtime = BenchRuntime(controller, StubPlanner(), clock, replan_every=timedelta(days=1))
        connector = MqttConnector(settings, runtime, clock=clock)
        await asyncio.to_thread(connector.start)
        if not await asyncio.to_thread(connector.wait_connected, 15.0):
            raise RuntimeError("the MqttConnector did not connect within 15 s")
        await runtime.start()
        await asyncio.sleep(0.5)  # SUBACK before the first message
        bench = IngestBench(
            controller, runtime, connector, timed, helper, settings.prefix, n_chargers, broker_pid
        )
        bench.reference = await asyncio.to_thread(
            BareSubscriber, settings, ref_protocol, Topics(f"{settings.prefix}-ref").all_telemetry
        )
        try:
            console.print(f"[dim]telemetry: warm-up, {n_chargers:,} vehicle arrivals...[/dim]")
            warmup = await bench.step("warmup", 2000.0, n_chargers / 2000.0, 0)
            warmup["sessions_open"] = len(controller.live)
            warmup["replans_requested"] = dict(runtime.replans_requested)
            steps: list[dict[str, Any]] = []
            for qos in qos_levels:
                for rate in rates:
                    console.print(f"[dim]telemetry: QoS {qos}, {rate:,} msg/s...[/dim]")
                    row = await bench.step(f"q{qos}-r{rate}", float(rate), duration, qos)
                    ref = await bench.reference_step(f"q{qos}-r{rate}", float(rate), duration, qos)
                    row["reference"] = ref
                    row["ratio"] = row["ingest_per_s"] / ref["received_per_s"]
                    steps.append(row)
                    if row["lost"]:
                        break
            counters = dict(controller.counters)
            replans = dict(runtime.replans_requested)
            console.print("[dim]telemetry: cost of each stage, alone...[/dim]")
            # On the loop thread, like the runtime's own calls; it blocks the loop a moment.
            stages = stage_costs(controller, timed, n_chargers)
            lossless = [r for r in steps if r["qos"] == 0 and r["ingested"] == r["sent"]]
            stages["paho_receive_bare_us"] = marginal_us(
                [
                    (r["reference"]["received"], r["reference"]["cpu_s"])
                    for r in steps
                    if r["qos"] == 0 and r["reference"]["lost"] == 0
                ]
            )
            stages["whole_path_us"] = marginal_us(
                [(r["ingested"], r["aggregator_cpu_s"]) for r in lossless]
            )
        finally:
            await asyncio.to_thread(bench.reference.stop)
            await runtime.stop()
            await asyncio.to_thread(connector.stop)
            repo.dispose()
    sustained = {
        qos: max(
            (r["target_per_s"] for r in steps if r["qos"] == qos and r["lost"] == 0),
            default=0,
        )
        for qos in qos_levels
    }
    kept_up = {
        qos: max(
            (
                r["target_per_s"]
                for r in steps
                if r["qos"] == qos and r["lost"] == 0 and r["drain_s"] <= KEEP_UP_DRAIN_S
            ),
            default=0,
        )
        for qos in qos_levels
    }
    for r in steps:
        r["path_cpu_us_per_msg"] = 1e6 * r["aggregator_cpu_s"] / max(1, r["ingested"])
    return {
        "chargers": n_chargers,
        "warmup": warmup,
        "steps": steps,
        "stage_costs": stages,
        "sustained_no_loss_per_s": sustained,
        "kept_up_per_s": kept_up,
        "controller_counters": counters,
        "replans_requested": replans,
        "callback_errors": connector.callback_errors,
    }


# --------------------------------------------------------------------------- output


def fmt(value: float | None, spec: str = ",.0f") -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return format(value, spec)


def dispatch_table(rows: list[dict[str, Any]], broker: str, mqtt5: bool) -> Table:
    title = f"Setpoint dispatch, QoS 1, {broker}: MqttConnector.publish vs bare paho (medians)"
    if not mqtt5:
        title += "; MQTT 3.1.1 has no message expiry, so 'paho + expiry' sends none"
    table = Table(title=title)
    for col in (
        "setpoints",
        "path",
        "repeats",
        "hand-off s",
        "wall s",
        "setpoints/s",
        "p50 ms",
        "p95 ms",
        "max ms",
        "lost",
        "dup",
        "ours/ref rate",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['n']:,}",
            PATH_LABELS[r["path"]],
            str(r["repeats"]),
            f"{r['handoff_s']:.3f}",
            f"{r['wall_s']:.3f}",
            fmt(r["rate_per_s"]),
            fmt(r["p50_ms"], ",.1f"),
            fmt(r["p95_ms"], ",.1f"),
            fmt(r["max_ms"], ",.1f"),
            str(r["lost"]),
            str(r["duplicates"]),
            f"{r['ratio']:.2f}x",
        )
    return table


def telemetry_table(result: dict[str, Any], broker: str) -> Table:
    table = Table(
        title=(
            f"Telemetry ingest, {broker}: paced publisher -> MqttConnector -> AggregatorRuntime "
            f"-> FleetController.ingest -> SQLite ({result['chargers']:,} chargers)"
        )
    )
    for col in (
        "QoS",
        "target/s",
        "sent/s",
        "sent",
        "received",
        "ingested",
        "stored",
        "lost",
        "ingest/s",
        "p50 ms",
        "p95 ms",
        "drain s",
        "agg CPU",
        "broker CPU",
        "flush max s",
    ):
        table.add_column(col, justify="right")
    rows = [result["warmup"], *result["steps"]]
    for r in rows:
        table.add_row(
            "arrivals" if r["tag"] == "warmup" else str(r["qos"]),
            fmt(r["target_per_s"]),
            fmt(r["achieved_per_s"]),
            f"{r['sent']:,}",
            f"{r['received']:,}",
            f"{r['ingested']:,}",
            f"{r['stored']:,}",
            f"{r['lost']:,}",
            fmt(r["ingest_per_s"]),
            fmt(r["p50_ms"], ",.1f"),
            fmt(r["p95_ms"], ",.1f"),
            f"{r['drain_s']:.2f}",
            fmt(r["aggregator_cpu_pct"], ".0f") + " %",
            fmt(r["broker_cpu_pct"], ".0f") + " %",
            f"{r['max_flush_s']:.3f}",
        )
    return table


def reference_table(result: dict[str, Any], broker: str) -> Table:
    table = Table(
        title=(
            f"Telemetry reference, {broker}: the same traffic into a bare paho subscriber "
            "(keeps each message, nothing else)"
        )
    )
    for col in (
        "QoS",
        "target/s",
        "sent",
        "received",
        "lost",
        "recv/s",
        "p50 ms",
        "p95 ms",
        "drain s",
        "CPU",
        "ours ingest/s / ref recv/s",
    ):
        table.add_column(col, justify="right")
    for r in result["steps"]:
        ref = r["reference"]
        table.add_row(
            str(r["qos"]),
            fmt(r["target_per_s"]),
            f"{ref['sent']:,}",
            f"{ref['received']:,}",
            f"{ref['lost']:,}",
            fmt(ref["received_per_s"]),
            fmt(ref["p50_ms"], ",.1f"),
            fmt(ref["p95_ms"], ",.1f"),
            f"{ref['drain_s']:.2f}",
            fmt(ref["cpu_pct"], ".0f") + " %",
            f"{r['ratio']:.2f}x",
        )
    return table


def stages_table(result: dict[str, Any], in_process_broker: bool) -> Table:
    stages = result["stage_costs"]
    title = (
        "Telemetry: CPU per message. Stages: alone, one thread; paho and whole path: "
        "marginal (slope of process CPU over the QoS 0 steps)"
    )
    if in_process_broker:
        title += "; both include the in-process broker's CPU"
    table = Table(title=title)
    table.add_column("stage")
    table.add_column("thread")
    table.add_column("CPU us/msg", justify="right")
    rows = [
        ("paho receive (bare subscriber)", "paho", "paho_receive_bare_us"),
        ("decode_telemetry (JSON, ISO time, Telemetry checks)", "paho", "decode_telemetry_us"),
        ("loop.call_soon_threadsafe (runtime hand-over)", "paho", "call_soon_threadsafe_us"),
        ("FleetController.ingest (open session, SoC given)", "loop", "controller_ingest_us"),
        ("SqlRepository.add_telemetry, per row", "worker", "sqlite_add_telemetry_us_per_row"),
    ]
    total = 0.0
    for label, thread, key in rows:
        total += stages[key]
        table.add_row(label, thread, f"{stages[key]:.1f}")
    table.add_row("sum of the stages", "", f"{total:.1f}")
    table.add_row(
        "whole path (MqttConnector -> runtime -> SQLite)", "all", f"{stages['whole_path_us']:.1f}"
    )
    return table


# --------------------------------------------------------------------------- main


def check_payload() -> None:
    """The hand-made telemetry payload must be what the contract decoder accepts."""
    topics = Topics("p")
    t = decode_telemetry(
        topics,
        topics.telemetry("site-0000", "c-00000"),
        telemetry_payload("2025-06-01T12:00:05.123456Z", "ev-00000", "tag"),
    )
    assert t.plugged and t.vehicle_id == "ev-00000" and t.status == "tag" and t.soc == 0.5


async def run_all(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    check_payload()
    run_id = uuid.uuid4().hex[:8]
    settings = MqttSettings(args.broker)
    host, port = settings.endpoint.host, settings.endpoint.port
    fallback: ThreadedBroker | None = None
    broker_label = f"Mosquitto at {host}:{port}"
    protocol: ProtocolChoice = "auto"
    version = await asyncio.to_thread(probe_broker, host, port)
    if version is None:
        console.print(f"[yellow]no broker answers at {host}:{port}: using EmbeddedBroker[/yellow]")
        fallback = ThreadedBroker()
        url = await asyncio.to_thread(fallback.start)
        settings = MqttSettings(url)
        host, port = settings.endpoint.host, settings.endpoint.port
        broker_label = f"EmbeddedBroker (amqtt, in-process; {args.broker} did not answer)"
        protocol = "3.1.1"
        version = "amqtt (EmbeddedBroker)"
    prefix = f"bench-{run_id}"
    base = MqttSettings(
        settings.url,
        prefix=prefix,
        client_id=f"bench-{run_id}-aggregator",
        protocol=protocol,
        session_expiry_s=0,
        connack_timeout_s=3.0,
    )
    helper_protocol = "3.1.1" if fallback is not None else "5"
    helper = await asyncio.to_thread(HelperProcess, host, port, helper_protocol, run_id)
    broker_pid = find_mosquitto_pid(port) if fallback is None else None
    sizes = [1000] if args.quick else [1000, 10_000]
    repeats = {1000: 5, 10_000: 2}
    rates = [500, 1000, 2000] if args.quick else [500, 1000, 2000, 5000, 10_000]
    qos_levels = [0, 1]
    try:
        dispatch = await asyncio.to_thread(
            run_dispatch, sizes, repeats, base, helper_protocol, helper, console
        )
        telemetry = await run_telemetry(
            replace(base, client_id=f"bench-{run_id}-ingest"),
            helper,
            args.chargers,
            rates,
            args.seconds,
            qos_levels,
            broker_pid,
            helper_protocol,
            console,
        )
    finally:
        await asyncio.to_thread(helper.stop)
        if fallback is not None:
            await asyncio.to_thread(fallback.stop)
    return {
        "broker": broker_label,
        "broker_version": version,
        "broker_fallback": fallback is not None,
        "dispatch": dispatch,
        "telemetry": telemetry,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 setpoints; rates to 2,000/s")
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="broker URL (mqtt://host:port)")
    parser.add_argument("--chargers", type=int, default=1000, help="fleet for the telemetry part")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each rate step")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "dispatch.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    console = Console(width=160)
    started = time.perf_counter()
    result = asyncio.run(run_all(args, console))
    console.print(
        dispatch_table(result["dispatch"], result["broker"], not result["broker_fallback"])
    )
    tele = result["telemetry"]
    console.print(telemetry_table(tele, result["broker"]))
    sustained = ", ".join(
        f"QoS {q}: {fmt(v)} msg/s" for q, v in tele["sustained_no_loss_per_s"].items()
    )
    kept = ", ".join(f"QoS {q}: {fmt(v)} msg/s" for q, v in tele["kept_up_per_s"].items())
    console.print(reference_table(tele, result["broker"]))
    console.print(stages_table(tele, result["broker_fallback"]))
    console.print(f"Highest rate sustained with no loss (of those tried): {sustained}")
    console.print(
        f"Highest rate also kept up with (backlog drained <= {KEEP_UP_DRAIN_S} s after the "
        f"publisher stopped): {kept}"
    )
    elapsed = time.perf_counter() - started
    meta = {
        "when": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "paho_mqtt": paho.mqtt.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "broker": result["broker"],
        "broker_version": result["broker_version"],
        "broker_fallback": result["broker_fallback"],
        "quick": args.quick,
        "seconds_per_rate": args.seconds,
        "elapsed_s": elapsed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, **result}, indent=2, default=str))
    console.print(f"JSON written to {args.out} ({elapsed:.0f} s in all)")


if __name__ == "__main__":
    main()
