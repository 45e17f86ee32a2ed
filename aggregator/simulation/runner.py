"""The site simulator on the wire: simulated sites behind one MQTT site gateway each.

Every telemetry period (simulated seconds) it integrates the sites up to the clock's now and
publishes one reading per charger; setpoints are applied the moment they arrive. paho calls
``on_setpoint`` from its network thread, so one lock guards the models.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from aggregator.domain import FleetProblem, Setpoint, Telemetry
from aggregator.simulation.clock import SimClock
from aggregator.simulation.model import SessionResult, SimulatedSite
from connectors.mqtt.gateway import GatewayClient
from connectors.mqtt.settings import MqttSettings

log = logging.getLogger(__name__)


class Gateway(Protocol):
    """What the simulator needs of a site gateway client (``GatewayClient`` is one)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wait_connected(self, timeout: float) -> bool: ...

    def publish_telemetry(self, telemetry: Telemetry) -> bool: ...


GatewayFactory = Callable[[MqttSettings, str, SimClock, Callable[[Setpoint], None]], Gateway]


def mqtt_gateway(
    settings: MqttSettings, site_id: str, clock: SimClock, on_setpoint: Callable[[Setpoint], None]
) -> Gateway:
    """The real MQTT gateway of one site, client id ``{settings.client_id}-{site_id}``.

    It judges setpoint expiry on the simulated clock, as the chargers do.
    """
    client_id = f"{settings.client_id}-{site_id}"
    return GatewayClient(settings, site_id, on_setpoint, clock=clock, client_id=client_id)


class SiteSimulator:
    """Every site of ``problem``, simulated on ``clock`` and speaking the MQTT contract.

    Use ``await start()`` / ``await stop()`` to run it in the background, or
    ``await run(until)`` to run it inline. ``safe_power_kw`` and ``reports_soc`` are passed to
    each ``SimulatedSite`` (one value or a mapping by charger id).
    """

    def __init__(
        self,
        problem: FleetProblem,
        mqtt_settings: MqttSettings,
        clock: SimClock,
        *,
        telemetry_period_s: float = 60.0,
        safe_power_kw: float | Mapping[str, float] = 0.0,
        reports_soc: bool | Mapping[str, bool] = True,
        connect_timeout_s: float = 10.0,
        gateway_factory: GatewayFactory = mqtt_gateway,
    ) -> None:
        if not telemetry_period_s > 0:
            raise ValueError(f"telemetry_period_s: must be > 0, got {telemetry_period_s}")
        self.problem = problem
        self.clock = clock
        self.telemetry_period_s = telemetry_period_s
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._now = clock.now()
        self.sites: dict[str, SimulatedSite] = {
            s.site_id: SimulatedSite(
                problem,
                s.site_id,
                start=self._now,
                safe_power_kw=safe_power_kw,
                reports_soc=reports_soc,
            )
            for s in problem.sites
        }
        self.gateways: dict[str, Gateway] = {
            site_id: gateway_factory(mqtt_settings, site_id, clock, self._setpoint_handler(site_id))
            for site_id in self.sites
        }
        self._history: dict[str, list[tuple[datetime, float]]] = {s: [] for s in self.sites}
        self._applied: list[Setpoint] = []
        self._connected = False
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle

    async def start(self) -> None:
        """Connect every site's gateway and run the telemetry loop in the background."""
        await self._connect()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(None), name="site-simulator")
            self._task.add_done_callback(_log_crash)

    async def stop(self) -> None:
        """Stop the loop and disconnect; each gateway publishes its site ``offline``."""
        task, self._task = self._task, None
        try:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            await self._disconnect()

    async def run(self, until: datetime | None = None) -> None:
        """Run inline until the clock reaches ``until`` (forever if None), then disconnect."""
        if self._task is not None:
            raise RuntimeError("the simulator already runs in the background (start())")
        connected_here = not self._connected
        await self._connect()
        try:
            await self._loop(until)
        finally:
            if connected_here:
                await self._disconnect()

    # --- observations (safe from any thread)

    def tick(self, at_most: datetime | None = None) -> list[Telemetry]:
        """Integrate up to the clock's now (capped at ``at_most``); publish one reading per
        charger, record each site's power, and return the readings.
        """
        with self._lock:
            now = self.clock.now()
            if at_most is not None:
                now = min(now, at_most)
            now = self._advance_to(now)
            readings = [r for site in self.sites.values() for r in site.telemetry(now)]
            for site_id, site in self.sites.items():
                self._history[site_id].append((now, site.site_power_kw(now)))
        for reading in readings:
            self.gateways[reading.site_id].publish_telemetry(reading)
        return readings

    def _next_plug_at(self) -> datetime | None:
        with self._lock:
            times = [t for site in self.sites.values() if (t := site.next_plug_at()) is not None]
        return min(times, default=None)

    def site_power_kw(self, now: datetime | None = None) -> dict[str, float]:
        """Net power at each site's meter at ``now`` (default: the clock's now). [kW]"""
        with self._lock:
            at = self._advance_to(self.clock.now() if now is None else now)
            return {site_id: site.site_power_kw(at) for site_id, site in self.sites.items()}

    def power_history(self, site_id: str) -> list[tuple[datetime, float]]:
        """(time, net site power [kW]) at every telemetry tick so far."""
        with self._lock:
            return list(self._history[site_id])

    def applied_setpoints(self) -> list[Setpoint]:
        """Setpoints the chargers took, in arrival order (stale ones are not here)."""
        with self._lock:
            return list(self._applied)

    def report(self, *, include_plugged: bool = False) -> list[SessionResult]:
        """Per departed session: target, SoC at departure, reached; ``include_plugged`` adds
        the sessions still plugged in, as of the last tick (``departed=False``).
        """
        with self._lock:
            return [
                r
                for site in self.sites.values()
                for r in site.report(include_plugged=include_plugged)
            ]

    # --- internals

    def _advance_to(self, now: datetime) -> datetime:
        # The models only move forward; a clock read a moment late must not move them back.
        self._now = max(self._now, now)
        for site in self.sites.values():
            site.advance(self._now)
        return self._now

    def _setpoint_handler(self, site_id: str) -> Callable[[Setpoint], None]:
        def on_setpoint(sp: Setpoint) -> None:
            with self._lock:
                at = self._advance_to(self.clock.now())
                if self.sites[site_id].apply_setpoint(sp, at=at):
                    self._applied.append(sp)

        return on_setpoint

    async def _loop(self, until: datetime | None) -> None:
        period = timedelta(seconds=self.telemetry_period_s)
        next_tick = self.clock.now()
        while True:
            self.tick(at_most=until)
            if until is not None and self._now >= until:
                return
            now = self.clock.now()
            next_tick += period
            if next_tick <= now:
                # Running behind (a slow machine at a high speed): skip the missed ticks.
                next_tick = now + period
            if until is not None:
                next_tick = min(next_tick, until)
            # Like a real gateway, report a plug-in or plug-out the moment it happens.
            plug = self._next_plug_at()
            wake = min(next_tick, plug) if plug is not None and plug > now else next_tick
            await self.clock.sleep_sim(max(0.0, (wake - now).total_seconds()))
            if wake < next_tick:
                next_tick -= period  # an extra tick: the periodic one stays where it was

    async def _connect(self) -> None:
        if self._connected:
            return
        # Waiting happens off the event loop: the broker may be running on this very loop.
        for gateway in self.gateways.values():
            gateway.start()
        for site_id, gateway in self.gateways.items():
            if not await asyncio.to_thread(gateway.wait_connected, self.connect_timeout_s):
                # Like a real gateway, keep going: it reconnects in the background and the
                # chargers run on safe power meanwhile.
                log.warning(
                    "site %s: gateway not connected after %.0f s", site_id, self.connect_timeout_s
                )
        self._connected = True

    async def _disconnect(self) -> None:
        if not self._connected:
            return
        self._connected = False
        for gateway in self.gateways.values():
            await asyncio.to_thread(gateway.stop)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("site simulator stopped", exc_info=task.exception())
