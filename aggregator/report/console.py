"""The plan summary as rich tables, for terminals and notebooks."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from aggregator.report.summary import JsonDict

_MAX_ISSUES = 10


# Square brackets are rich markup, so units go in parentheses here.


def _when(iso: str | None) -> str:
    """``2024-05-14T17:00:00Z`` -> ``05-14 17:00`` (UTC) to keep event rows narrow."""
    return iso[5:16].replace("T", " ") if iso else "?"


def _kw(value: float) -> str:
    return f"{value:,.1f}"


def _overview(summary: JsonDict) -> Table:
    totals = summary["totals"]
    table = Table(title="plan", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    ok = summary["status"] == "ok"
    table.add_row("status", Text(summary["status"], style="green" if ok else "yellow"))
    table.add_row("solver", Text(f"{summary['solver_path']} ({summary['solver_status']})"))
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in summary["timings_s"].items())
    table.add_row("timings (s)", timings or "-")
    table.add_row("horizon", f"{summary['horizon']['start']} to {summary['horizon']['end']}")
    table.add_row("sessions", f"{totals['sessions']} ({totals['sessions_short']} short)")
    table.add_row(
        "energy (kWh)",
        f"delivered {totals['delivered_kwh']:,.1f}, shortfall {totals['shortfall_kwh']:,.1f}",
    )
    return table


def _objective(summary: JsonDict) -> Table:
    table = Table(title="objective (currency)", title_justify="left")
    table.add_column("part")
    table.add_column("value", justify="right")
    for part, value in summary["objective"].items():
        table.add_row(part, f"{value:,.2f}", style="bold" if part == "total" else None)
    return table


def _sites(summary: JsonDict) -> Table:
    table = Table(title="sites (kW)", title_justify="left")
    for name in ("site", "peak import", "import limit", "peak export", "export limit"):
        table.add_column(name, justify="left" if name == "site" else "right")
    for s in summary["sites"]:
        over = s["import_excess_kw"] > 0 or s["export_excess_kw"] > 0
        table.add_row(
            Text(s["site_id"]),
            _kw(s["peak_import_kw"]),
            _kw(s["import_limit_kw"]),
            _kw(s["peak_export_kw"]),
            _kw(s["export_limit_kw"]),
            style="yellow" if over else None,
        )
    return table


def _events(summary: JsonDict) -> Table:
    table = Table(title="events", title_justify="left")
    for name in ("event", "kind", "start (UTC)", "end (UTC)", "violation (kWh)"):
        table.add_column(name, justify="right" if name.startswith("violation") else "left")
    for e in summary["events"]:
        table.add_row(
            Text(e["event_id"]),
            e["kind"] or "?",
            _when(e["start"]),
            _when(e["end"]),
            f"{e['violation_kwh']:,.2f}",
        )
    return table


def summary_renderable(summary: JsonDict) -> Group:
    """Overview, objective parts, per-site peaks vs limits, events and the first issues."""
    parts: list[Table | Text] = [_overview(summary), _objective(summary), _sites(summary)]
    if summary["events"]:
        parts.append(_events(summary))
    issues: list[str] = summary["issues"]
    for issue in issues[:_MAX_ISSUES]:
        parts.append(Text(f"! {issue}", style="yellow"))
    if len(issues) > _MAX_ISSUES:
        parts.append(Text(f"... and {len(issues) - _MAX_ISSUES} more in summary.json"))
    return Group(*parts)


def print_summary(summary: JsonDict, console: Console | None = None) -> None:
    (console or Console()).print(summary_renderable(summary))
