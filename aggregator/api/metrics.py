"""Prometheus metrics, read from the controller and runtime at each scrape (docs/api.md)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from aggregator.runtime import AggregatorRuntime


class AggregatorCollector(Collector):
    def __init__(self, runtime: AggregatorRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | SummaryMetricFamily]:
        runtime = self.runtime
        controller = runtime.controller
        counters = dict(controller.counters)
        seconds = list(runtime.plan_seconds)
        yield SummaryMetricFamily(
            "aggregator_plan_duration_seconds",
            "Time to build and solve a plan",
            count_value=len(seconds),
            sum_value=sum(seconds),
        )
        plans = CounterMetricFamily(
            "aggregator_plans", "Plans made, by solver path", labels=["solver_path"]
        )
        for path in ("lp", "heuristic"):
            plans.add_metric([path], counters.get(f"plans_{path}", 0))
        yield plans
        yield CounterMetricFamily(
            "aggregator_setpoints_sent",
            "Setpoints handed to sites",
            counters.get("setpoints_sent", 0),
        )
        yield CounterMetricFamily(
            "aggregator_telemetry_ingested",
            "Telemetry readings applied",
            counters.get("telemetry_ingested", 0),
        )
        rejects = CounterMetricFamily(
            "aggregator_telemetry_rejected",
            "Telemetry readings rejected, by reason",
            labels=["reason"],
        )
        for key, value in sorted(counters.items()):
            if key.startswith("rejected: "):
                rejects.add_metric([key.removeprefix("rejected: ")], value)
        yield rejects
        events = CounterMetricFamily(
            "aggregator_grid_events", "Utility events handled, by action", labels=["action"]
        )
        settlements = CounterMetricFamily(
            "aggregator_settlements", "Event settlements, by outcome", labels=["status"]
        )
        for key, value in sorted(counters.items()):
            if key.startswith("events_"):
                events.add_metric([key.removeprefix("events_")], value)
            if key.startswith("settlements_"):
                settlements.add_metric([key.removeprefix("settlements_")], value)
        yield events
        yield settlements
        if runtime.recorder is not None:
            yield CounterMetricFamily(
                "aggregator_timeseries_dropped_points",
                "Time-series points lost: backend buffer full, or refused (docs/timeseries.md)",
                runtime.recorder.store.dropped,
            )
        headroom = GaugeMetricFamily(
            "aggregator_site_headroom_kw",
            "Import limit minus the planned site power in the current slot [kW]",
            labels=["site_id"],
        )
        online = GaugeMetricFamily(
            "aggregator_site_online", "1 while the site's gateway is connected", labels=["site_id"]
        )
        current = controller.current
        now = runtime.clock.now()
        for site in controller.fleet.sites:
            up = controller.site_online.get(site.site_id, False)
            online.add_metric([site.site_id], float(up))
            if current is None:
                continue
            grid = current.plan.grid
            t = int(grid.position(now))
            series = current.plan.site_power_kw.get(site.site_id)
            if series and 0 <= t < grid.n_slots:
                headroom.add_metric([site.site_id], site.import_limit_kw - series[t])
        yield headroom
        yield online


class OcppCounters(Protocol):
    """What the OCPP central system exposes (connectors/ocpp, docs/ocpp.md)."""

    @property
    def counters(self) -> Mapping[str, int]: ...

    @property
    def degraded(self) -> Set[str]: ...

    def connected(self) -> list[str]: ...


class OcppCollector(Collector):
    """The OCPP adapter's counters; registered only when the service runs OCPP."""

    _COUNTERS = (
        ("call_errors", "CALLs answered with a CALLERROR"),
        ("timeouts", "CALLs not answered within response_timeout_s"),
        ("composite_mismatches", "After reconnect, a composite schedule not matching our profile"),
        ("profiles_rejected", "Charging profiles answered other than Accepted"),
    )

    def __init__(self, ocpp: OcppCounters) -> None:
        self.ocpp = ocpp

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counters = self.ocpp.counters
        for key, doc in self._COUNTERS:
            yield CounterMetricFamily(f"aggregator_ocpp_{key}", doc, counters.get(key, 0))
        yield GaugeMetricFamily(
            "aggregator_ocpp_degraded_chargers",
            "Chargers whose last CALL timed out",
            len(self.ocpp.degraded),
        )
        yield GaugeMetricFamily(
            "aggregator_ocpp_connected_charge_points",
            "Charge points connected over OCPP",
            len(self.ocpp.connected()),
        )


def registry_for(runtime: AggregatorRuntime) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(AggregatorCollector(runtime))
    return registry
