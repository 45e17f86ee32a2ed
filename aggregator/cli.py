"""The ``aggregator`` command line: plan a scenario file and write the plan's outputs.

Bad input (scenario, output folder) exits with code 2 and one line on stderr, no traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aggregator.report import summary_json, write_outputs
from aggregator.report.console import print_summary
from aggregator.scenario import ScenarioError, load_scenario

EXIT_BAD_INPUT = 2

app = typer.Typer(
    name="aggregator",
    help="EV fleet flexibility aggregator.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """EV fleet flexibility aggregator: plan charging and V2G for a fleet."""
    # A callback keeps `plan` a subcommand even while it is the only one.


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    typer.echo(" ".join(message.split()), err=True)
    return typer.Exit(code)


def _prepare_out_dir(out: Path) -> None:
    """Create ``out`` and prove it is writable before spending time on a solve."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise _fail(f"{out}: cannot write output folder: {err.strerror or err}") from None


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout, by Python or by a solver's C code, to stderr.

    With ``--json`` stdout must carry the summary and nothing else; solver logs go to fd 1.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@app.command()
def plan(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for schedule.csv, summary.json and plan.png."),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the summary JSON on stdout.")
    ] = False,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit",
            help="Solver time limit in seconds, > 0 (default: the planner's).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Plan a fleet scenario and write schedule.csv, summary.json and plan.png to --out."""
    if time_limit is not None and not time_limit > 0:
        raise _fail(f"--time-limit: must be a positive number of seconds, got {time_limit:g}")
    try:
        problem = load_scenario(scenario)
    except ScenarioError as err:
        raise _fail(str(err)) from None
    _prepare_out_dir(out)

    # Imported here: loading Pyomo takes seconds, and checking a scenario or --help does not
    # need it.
    from aggregator.app import PlanningSettings, run_plan

    settings = (
        PlanningSettings() if time_limit is None else PlanningSettings(time_limit_s=time_limit)
    )
    quiet = _stdout_to_stderr() if as_json else contextlib.nullcontext()
    with quiet:
        result = run_plan(problem, settings)
    try:
        summary = write_outputs(out, problem, result.plan, result.envelope)
    except OSError as err:
        raise _fail(f"{out}: cannot write outputs: {err.strerror or err}", code=1) from None

    if as_json:
        sys.stdout.write(summary_json(summary))
    else:
        console = Console()
        print_summary(summary, console)
        console.print(f"wrote {out / 'schedule.csv'}, summary.json, plan.png", highlight=False)


DEFAULT_DEMO = Path("config/scenarios/depot_v2g_dr.yaml")

accounts = typer.Typer(help="API accounts (docs/api.md).", no_args_is_help=True)
app.add_typer(accounts, name="accounts")


@accounts.command("create-operator")
def create_operator_command(
    account_id: Annotated[str, typer.Option("--id", help="Account id, e.g. alice.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Settings YAML (its database_url is used)."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
) -> None:
    """Create an operator account and print its API key once (only its hash is stored)."""
    from aggregator.app import create_operator
    from aggregator.domain import ValidationError
    from aggregator.settings import SettingsError, load_settings

    try:
        settings = load_settings(config)
        token = create_operator(settings.database_url, account_id, name)
    except SettingsError as err:
        raise _fail(str(err)) from None
    except ValidationError as err:
        raise _fail(f"--id: {err.reason}") from None
    except ValueError as err:  # the id is taken
        raise _fail(f"--id: {err}") from None
    typer.echo(token)
    typer.echo(f"operator {account_id} created; keep this API key, it is not shown again", err=True)


@app.command()
def run(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Settings YAML (environment AGGREGATOR_* wins)."),
    ] = None,
) -> None:
    """Run the aggregator service until interrupted (SIGINT/SIGTERM)."""
    from aggregator.settings import SettingsError, load_settings

    try:
        settings = load_settings(config)
    except SettingsError as err:
        raise _fail(str(err)) from None
    if settings.fleet is not None:
        try:
            load_scenario(settings.fleet)
        except ScenarioError as err:
            raise _fail(f"fleet: {err}") from None
    from aggregator.service_main import serve

    raise typer.Exit(serve(settings))


@app.command()
def demo(
    scenario: Annotated[
        Path, typer.Argument(help="Scenario YAML whose sessions the simulator plays.")
    ] = DEFAULT_DEMO,
    speed: Annotated[
        float, typer.Option("--speed", help="Simulated seconds per wall second, > 0.")
    ] = 240.0,
    hours: Annotated[
        float,
        typer.Option("--hours", help="Simulated hours to run; 0 = the scenario's whole horizon."),
    ] = 8.0,
    db: Annotated[Path, typer.Option("--db", help="SQLite file (reset at start).")] = Path(
        "var/demo.db"
    ),
    no_live: Annotated[bool, typer.Option("--no-live", help="No live table.")] = False,
) -> None:
    """Run the whole loop on this machine: embedded broker, SQLite, simulated sites."""
    if not speed > 0:
        raise _fail(f"--speed: must be a positive number, got {speed:g}")
    if hours < 0:
        raise _fail(f"--hours: must be >= 0, got {hours:g}")
    try:
        load_scenario(scenario)
    except ScenarioError as err:
        raise _fail(str(err)) from None
    import asyncio

    from aggregator.demo import run_demo

    console = Console()
    result = asyncio.run(
        run_demo(
            scenario, speed=speed, hours=hours or None, db=db, console=console, live=not no_live
        )
    )
    console.print(
        f"sessions ended {result.sessions}, reached their target {result.reached}; "
        f"plans {result.plans}, setpoints {result.setpoints}, telemetry rejected "
        f"{result.rejected}",
        highlight=False,
    )
    for line in result.missed:
        console.print(f"  missed: {line}", highlight=False)
    for site, over in result.peak_over_limit_kw.items():
        verdict = "within" if over <= 1e-6 else f"OVER by {over:.1f} kW"
        console.print(f"site {site}: peak {verdict} its import limit", highlight=False)
    for event_id, opt, reason in result.events:
        heard = result.vtn_answers.get(event_id, "no answer")
        console.print(
            f"event {event_id} (over OpenADR): {opt}, {reason}; the VTN got {heard}",
            highlight=False,
        )
        effect = result.event_effects.get(event_id)
        if effect is not None and effect.after_kw is not None:
            before = "?" if effect.before_kw is None else f"{effect.before_kw:.1f}"
            measure = "peak" if effect.limit.startswith("cap") else "mean"
            console.print(
                f"  plan: {', '.join(effect.sites)} {measure} import over the event "
                f"{before} kW before it, {effect.after_kw:.1f} kW with it ({effect.limit})",
                highlight=False,
            )
    for event_id, line in result.settlements.items():
        console.print(f"settlement {event_id}: {line}", highlight=False)
    for event_id in result.events_not_sent:
        console.print(
            f"event {event_id}: not sent, its notice time is after the run (--hours)",
            highlight=False,
        )


def _day(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


@app.command()
def backtest(
    prices: Annotated[
        Path, typer.Option("--prices", help="Hourly price CSV (start,price_eur_per_mwh).")
    ] = Path("../shared/data/nl_day_ahead_prices_2015-2024.csv"),
    sessions: Annotated[
        Path, typer.Option("--sessions", help="Sessions CSV in the ACN layout.")
    ] = Path("bench/data/acn_caltech_2019-03_sessions.csv"),
    no_prices: Annotated[bool, typer.Option("--no-prices", help="Skip the prices.")] = False,
    no_sessions: Annotated[bool, typer.Option("--no-sessions", help="Skip the sessions.")] = False,
    start: Annotated[
        str | None, typer.Option("--start", help="First price origin day, YYYY-MM-DD (UTC).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Last price origin day, YYYY-MM-DD (UTC).")
    ] = None,
    session_start: Annotated[
        str | None, typer.Option("--session-start", help="First session day (local).")
    ] = None,
    session_end: Annotated[
        str | None, typer.Option("--session-end", help="Last session day (local).")
    ] = None,
    horizon_hours: Annotated[
        int, typer.Option("--horizon-hours", help="Hours forecast from each origin, 1 to 336.")
    ] = 48,
    window_weeks: Annotated[
        int, typer.Option("--window-weeks", help="Weeks each price regression is fitted on.")
    ] = 8,
    price_timezone: Annotated[
        str, typer.Option("--price-timezone", help="The market's zone.")
    ] = "Europe/Amsterdam",
    session_timezone: Annotated[
        str, typer.Option("--session-timezone", help="The fleet's zone.")
    ] = "America/Los_Angeles",
    quantiles: Annotated[
        str, typer.Option("--quantiles", help="Comma-separated levels in (0, 1).")
    ] = "0.1,0.5,0.9",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSON results file.")] = Path(
        "var/backtest.json"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON on stdout.")] = False,
) -> None:
    """Backtest the price and session forecasts against seasonal naive baselines (MAE, pinball).

    Rolling origin: prices every day at 00:00 UTC for the next --horizon-hours, sessions every
    local day; see docs/forecasting.md.
    """
    from aggregator.backtest import BacktestError, BacktestOptions, run_backtests, tables

    try:
        levels = tuple(float(q) for q in quantiles.split(","))
    except ValueError:
        raise _fail(
            f"--quantiles: {quantiles!r} is not a comma-separated list of numbers"
        ) from None
    if any(not 0 < q < 1 for q in levels):
        raise _fail(f"--quantiles: every level must lie strictly between 0 and 1, got {quantiles}")
    if no_prices and no_sessions:
        raise _fail("--no-prices and --no-sessions: nothing left to backtest")
    for option, path, skipped in (
        ("--prices", prices, no_prices),
        ("--sessions", sessions, no_sessions),
    ):
        if not skipped and not path.is_file():
            raise _fail(f"{option}: {path}: no such file")
    options = BacktestOptions(
        prices=None if no_prices else prices,
        sessions=None if no_sessions else sessions,
        start=_day("--start", start),
        end=_day("--end", end),
        session_start=_day("--session-start", session_start),
        session_end=_day("--session-end", session_end),
        horizon_hours=horizon_hours,
        window_weeks=window_weeks,
        price_timezone=price_timezone,
        session_timezone=session_timezone,
        quantiles=levels,
    )
    if out is not None:
        _prepare_out_dir(out.parent)
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True, disable=as_json) as bar:
        task = bar.add_task("price origins", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = run_backtests(options, progress)
        except BacktestError as err:
            raise _fail(str(err)) from None
    text = report.to_json(options)
    if out is not None:
        try:
            out.write_text(text)
        except OSError as err:
            raise _fail(f"{out}: cannot write: {err.strerror or err}", code=1) from None
    if as_json:
        sys.stdout.write(text)
        return
    console = Console()
    for table in tables(report):
        console.print(table)
    for note in report.price_notes:
        console.print(f"prices normalised: {note}", highlight=False)
    if out is not None:
        console.print(f"wrote {out}", highlight=False)


def main() -> None:
    """Console-script entry point (``aggregator``)."""
    app()
