"""The SQL ``SettlementStore``: event baselines and settlements, durable across restarts.

A settlement's totals are columns (for queries and dashboards); the intervals, the
alternative baseline's figures, the X-of-Y days and the per-site figures are one JSON body.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, get_args

from sqlalchemy import select

from aggregator.domain import (
    BaselineFigures,
    BaselineKind,
    EventBaseline,
    MeterBaseline,
    Settlement,
    SettlementInterval,
    SettlementRecord,
    SettlementStatus,
    SiteSettlement,
    TimeGrid,
)
from connectors.sql.repository import SqlRepository, upsert
from connectors.sql.schema import EventBaselineRow, EventSettlementRow


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _choice(value: str, allowed: tuple[str, ...], what: str, event_id: str) -> str:
    if value not in allowed:
        raise ValueError(f"settlement of event {event_id} {what}: unknown value {value!r}")
    return value


# ---------------------------------------------------------------------- settlement body


def _figures_json(f: BaselineFigures) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "baseline_kw": list(f.baseline_kw),
        "committed_kw": list(f.committed_kw),
        "delivered_kw": list(f.delivered_kw),
        "compliance": list(f.compliance),
        "delivered_kwh": f.delivered_kwh,
        "committed_kwh": f.committed_kwh,
        "total_compliance": f.total_compliance,
    }


def _figures(d: dict[str, Any], event_id: str) -> BaselineFigures:
    kind = _choice(d["kind"], get_args(BaselineKind), "baseline", event_id)
    return BaselineFigures(
        kind=kind,  # type: ignore[arg-type]
        baseline_kw=_floats(d["baseline_kw"]),
        committed_kw=_floats(d["committed_kw"]),
        delivered_kw=_floats(d["delivered_kw"]),
        compliance=_floats(d["compliance"]),
        delivered_kwh=d["delivered_kwh"],
        committed_kwh=d["committed_kwh"],
        total_compliance=d["total_compliance"],
    )


def _meter_json(m: MeterBaseline) -> dict[str, Any]:
    return {
        "baseline_kw": list(m.baseline_kw),
        "unadjusted_kw": list(m.unadjusted_kw),
        "days": [d.isoformat() for d in m.days],
        "eligible_days": [d.isoformat() for d in m.eligible_days],
        "adjustment_kw": m.adjustment_kw,
        "skipped": {d.isoformat(): why for d, why in m.skipped.items()},
    }


def _meter(d: dict[str, Any]) -> MeterBaseline:
    return MeterBaseline(
        baseline_kw=_floats(d["baseline_kw"]),
        unadjusted_kw=_floats(d["unadjusted_kw"]),
        days=tuple(date.fromisoformat(x) for x in d["days"]),
        eligible_days=tuple(date.fromisoformat(x) for x in d["eligible_days"]),
        adjustment_kw=d["adjustment_kw"],
        skipped={date.fromisoformat(k): v for k, v in d["skipped"].items()},
    )


def settlement_to_json(s: Settlement, sites: tuple[SiteSettlement, ...]) -> dict[str, Any]:
    return {
        "site_ids": list(s.site_ids),
        "caps_met": s.caps_met,
        "intervals": [
            {
                "start": i.start.isoformat(),
                "end": i.end.isoformat(),
                "cap_kw": i.cap_kw,
                "shed_kw": i.shed_kw,
                "baseline_kw": i.baseline_kw,
                "metered_kw": i.metered_kw,
                "committed_kw": i.committed_kw,
                "delivered_kw": i.delivered_kw,
                "compliance": i.compliance,
                "cap_met": i.cap_met,
            }
            for i in s.intervals
        ],
        "alternative": _figures_json(s.alternative) if s.alternative else None,
        "meter_baselines": {k: _meter_json(v) for k, v in s.meter_baselines.items()},
        "sites": [
            {
                "site_id": x.site_id,
                "baseline_kw": list(x.baseline_kw),
                "metered_kw": list(x.metered_kw),
                "delivered_kw": list(x.delivered_kw),
                "delivered_kwh": x.delivered_kwh,
            }
            for x in sites
        ],
    }


def record_from(row: EventSettlementRow) -> SettlementRecord:
    status = _choice(row.status, get_args(SettlementStatus), "status", row.event_id)
    if status == "failed":
        return SettlementRecord(
            row.event_id, row.modification_number, row.settled_at, "failed", row.reason
        )
    d = row.body_json
    kind = _choice(row.baseline or "", get_args(BaselineKind), "baseline", row.event_id)
    assert row.delivered_kwh is not None and row.committed_kwh is not None
    assert row.compliance is not None
    settlement = Settlement(
        event_id=row.event_id,
        site_ids=tuple(d["site_ids"]),
        baseline=kind,  # type: ignore[arg-type]
        intervals=tuple(
            SettlementInterval(
                start=_t(i["start"]),
                end=_t(i["end"]),
                cap_kw=i["cap_kw"],
                shed_kw=i["shed_kw"],
                baseline_kw=i["baseline_kw"],
                metered_kw=i["metered_kw"],
                committed_kw=i["committed_kw"],
                delivered_kw=i["delivered_kw"],
                compliance=i["compliance"],
                cap_met=i["cap_met"],
            )
            for i in d["intervals"]
        ),
        delivered_kwh=row.delivered_kwh,
        committed_kwh=row.committed_kwh,
        compliance=row.compliance,
        caps_met=d["caps_met"],
        alternative=_figures(d["alternative"], row.event_id) if d["alternative"] else None,
        meter_baselines={k: _meter(v) for k, v in d["meter_baselines"].items()},
    )
    sites = tuple(
        SiteSettlement(
            site_id=x["site_id"],
            baseline_kw=_floats(x["baseline_kw"]),
            metered_kw=_floats(x["metered_kw"]),
            delivered_kw=_floats(x["delivered_kw"]),
            delivered_kwh=x["delivered_kwh"],
        )
        for x in d["sites"]
    )
    return SettlementRecord(
        row.event_id,
        row.modification_number,
        row.settled_at,
        "settled",
        row.reason,
        settlement=settlement,
        sites=sites,
    )


class SqlSettlementStore:
    """Implements the ``SettlementStore`` port on the repository's database."""

    def __init__(self, repo: SqlRepository) -> None:
        self._repo = repo

    def save_baseline(self, baseline: EventBaseline) -> None:
        row = {
            "event_id": baseline.event_id,
            "modification_number": baseline.modification_number,
            "captured_at": baseline.captured_at,
            "grid_start": baseline.grid.start,
            "step_s": int(baseline.grid.step.total_seconds()),
            "n_slots": baseline.grid.n_slots,
            "site_power_json": {k: list(v) for k, v in baseline.site_power_kw.items()},
        }
        with self._repo.writer.begin() as s:
            upsert(s, EventBaselineRow, [row], "event_id")

    def baseline(self, event_id: str) -> EventBaseline | None:
        with self._repo.reader.begin() as s:
            row = s.get(EventBaselineRow, event_id)
            if row is None:
                return None
            return EventBaseline(
                event_id=row.event_id,
                modification_number=row.modification_number,
                captured_at=row.captured_at,
                grid=TimeGrid(row.grid_start, timedelta(seconds=row.step_s), row.n_slots),
                site_power_kw={k: _floats(v) for k, v in row.site_power_json.items()},
            )

    def save_settlement(self, record: SettlementRecord) -> None:
        s = record.settlement
        row = {
            "event_id": record.event_id,
            "modification_number": record.modification_number,
            "settled_at": record.settled_at,
            "status": record.status,
            "reason": record.reason,
            "baseline": s.baseline if s else None,
            "delivered_kwh": s.delivered_kwh if s else None,
            "committed_kwh": s.committed_kwh if s else None,
            "compliance": s.compliance if s else None,
            "body_json": settlement_to_json(s, record.sites) if s else {},
        }
        with self._repo.writer.begin() as session:
            upsert(session, EventSettlementRow, [row], "event_id")

    def settlement(self, event_id: str) -> SettlementRecord | None:
        with self._repo.reader.begin() as s:
            row = s.get(EventSettlementRow, event_id)
            return record_from(row) if row is not None else None

    def settlements(self) -> list[SettlementRecord]:
        with self._repo.reader.begin() as s:
            rows = s.scalars(select(EventSettlementRow).order_by(EventSettlementRow.event_id))
            return [record_from(r) for r in rows]
