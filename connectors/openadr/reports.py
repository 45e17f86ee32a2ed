"""The reports the VEN offers: ``TELEMETRY_USAGE`` and ``TELEMETRY_STATUS``, one resource per site.

The connector knows nothing of the store: each report data point (an OpenADR ``rID``) is a
``ReportSpec`` whose ``source`` is called with the site id whenever openleadr samples the report
(at the sampling interval the VTN requested at registration) and returns the current value.
``telemetry_reports`` builds the specs for a set of sites from a ``TelemetrySource`` (the
aggregator passes ``aggregator.services.reporting.TelemetryReports``). See ``docs/openadr.md``
("Reports").
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

from openleadr import enums, objects

__all__ = [
    "STATUS_REPORT_ID",
    "USAGE_REPORT_ID",
    "Quantity",
    "ReportSource",
    "ReportSpec",
    "TelemetrySource",
    "add_reports",
    "forget_report_requests",
    "r_id",
    "telemetry_reports",
]

log = logging.getLogger(__name__)

# Stable reportSpecifierIDs, so a VTN can recognise our reports across VEN restarts.
USAGE_REPORT_ID = "fleet-telemetry-usage"
STATUS_REPORT_ID = "fleet-telemetry-status"

Quantity = Literal["power_real", "online", "plugged"]
ReportSource = Callable[[str], Awaitable[float]]

_REPORT_NAME: dict[Quantity, str] = {
    "power_real": enums.REPORT_NAME.TELEMETRY_USAGE,
    "online": enums.REPORT_NAME.TELEMETRY_STATUS,
    "plugged": enums.REPORT_NAME.TELEMETRY_STATUS,
}
_REPORT_ID: dict[Quantity, str] = {
    "power_real": USAGE_REPORT_ID,
    "online": STATUS_REPORT_ID,
    "plugged": STATUS_REPORT_ID,
}


class TelemetrySource(Protocol):
    """Current values of a site (the aggregator's ``TelemetryReports``)."""

    async def power_kw(self, site_id: str) -> float:
        """Aggregate real power of the site's chargers. [kW, positive = charging]"""
        ...

    async def online(self, site_id: str) -> float:
        """1.0 when the site is online, else 0.0."""
        ...

    async def plugged(self, site_id: str) -> float:
        """Number of the site's chargers with a vehicle plugged in."""
        ...


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """One report data point: a quantity of one site, offered at ``min_sampling..max_sampling``.

    ``power_real`` goes into ``TELEMETRY_USAGE`` (item base ``powerReal``, kW); ``online`` and
    ``plugged`` into ``TELEMETRY_STATUS`` (report type ``x-resourceStatus``, a plain float, see
    the docs). ``report_duration`` is the history the VEN says it can buffer.
    """

    resource_id: str
    quantity: Quantity
    source: ReportSource
    min_sampling: timedelta = timedelta(seconds=10)
    max_sampling: timedelta = timedelta(hours=1)
    report_duration: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if not self.resource_id:
            raise ValueError("resource_id must not be empty")
        if self.quantity not in _REPORT_NAME:
            raise ValueError(f"quantity must be one of {sorted(_REPORT_NAME)}, got {self.quantity}")
        if not timedelta(0) < self.min_sampling <= self.max_sampling:
            raise ValueError(
                "need 0 < min_sampling <= max_sampling, "
                f"got {self.min_sampling}, {self.max_sampling}"
            )

    @property
    def report_name(self) -> str:
        return _REPORT_NAME[self.quantity]

    @property
    def r_id(self) -> str:
        return r_id(self.resource_id, self.quantity)


def r_id(resource_id: str, quantity: Quantity) -> str:
    """The stable rID of a data point: ``{resource_id}:{quantity}``."""
    return f"{resource_id}:{quantity}"


def telemetry_reports(
    site_ids: Iterable[str],
    source: TelemetrySource,
    *,
    min_sampling: timedelta = timedelta(seconds=10),
    max_sampling: timedelta = timedelta(hours=1),
) -> list[ReportSpec]:
    """Per site: ``power_real`` (TELEMETRY_USAGE), ``online`` and ``plugged`` (TELEMETRY_STATUS)."""
    sampling = {"min_sampling": min_sampling, "max_sampling": max_sampling}
    specs: list[ReportSpec] = []
    for site in sorted(set(site_ids)):
        specs.append(ReportSpec(site, "power_real", source.power_kw, **sampling))
        specs.append(ReportSpec(site, "online", source.online, **sampling))
        specs.append(ReportSpec(site, "plugged", source.plugged, **sampling))
    return specs


def add_reports(client: Any, specs: Sequence[ReportSpec]) -> None:
    """Offer ``specs`` through openleadr's ``OpenADRClient.add_report`` (before registering).

    openleadr samples each requested data point by calling its callback with no arguments
    (``data_collection_mode='incremental'``) and stamps the value with the current time.
    """
    seen: set[str] = set()
    for spec in specs:
        if spec.r_id in seen:
            raise ValueError(f"report data point {spec.r_id} offered twice")
        seen.add(spec.r_id)
        usage = spec.quantity == "power_real"
        client.add_report(
            callback=_callback(spec),
            resource_id=spec.resource_id,
            measurement=_power_real_kw() if usage else None,
            data_collection_mode="incremental",
            report_specifier_id=_REPORT_ID[spec.quantity],
            r_id=spec.r_id,
            report_name=spec.report_name,
            reading_type=enums.READING_TYPE.DIRECT_READ,
            report_type=(
                enums.REPORT_TYPE.READING if usage else enums.REPORT_TYPE.X_RESOURCE_STATUS
            ),
            report_duration=spec.report_duration,
            sampling_rate=objects.SamplingRate(
                min_period=spec.min_sampling, max_period=spec.max_sampling, on_change=False
            ),
            scale="k" if usage else "none",
            unit="W" if usage else None,
        )


def forget_report_requests(client: Any) -> None:
    """Drop the VTN's report requests (and their sampling jobs) before registering again.

    openleadr keeps a registration's report requests and their scheduler jobs forever; after a
    re-registration the VTN requests the reports anew, so the old jobs would keep sampling (and
    sending reports the VTN no longer knows) next to the new ones.
    """
    for request in client.report_requests or []:
        job = request.get("job")
        if job is not None:
            try:
                job.remove()
            except Exception:  # already gone from the scheduler (e.g. it was shut down)
                log.debug(
                    "report job of request %s already removed", request.get("report_request_id")
                )
    if client.report_requests is not None:
        client.report_requests.clear()
    if client.incomplete_reports is not None:
        client.incomplete_reports.clear()


def _power_real_kw() -> Any:
    # A copy: openleadr's add_report sets the scale on the measurement it is given, and
    # enums.MEASUREMENTS.POWER_REAL is shared by everything in the process.
    return dataclasses.replace(enums.MEASUREMENTS.POWER_REAL, scale="k")


def _callback(spec: ReportSpec) -> Callable[[], Awaitable[float]]:
    async def sample() -> float:
        try:
            return float(await spec.source(spec.resource_id))
        except Exception:
            # Raising drops this sample of the whole report (openleadr's job fails before it
            # adds any value), which keeps a report's data points aligned.
            log.exception("report value %s could not be read; sample dropped", spec.r_id)
            raise

    return sample
