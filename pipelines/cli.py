"""The ``medallion`` command.

    medallion run                 land the sample if nothing is landed, then build every table
    medallion plan                what a run would do per table and why (no data read)
    medallion backfill --from D --to D   rebuild one date range of tables and what is downstream
    medallion land --month 1      deliver one month of the sample into the landing folder
    medallion tables              every table: layer, rows, version, last update, description
    medallion sql "SELECT ..."    Spark SQL by logical table names (no query: interactive prompt)
    medallion history TABLE       the Delta commits of a table
    medallion maintain            OPTIMIZE and VACUUM every table
    medallion docs                the pipeline's documentation site (static, offline)

Failures print one line (``error: <Type>: <what and what to do>``) and exit non-zero; ``--verbose`` adds the
full trace.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pipelines import __version__
from pipelines.config import Settings, load_settings
from pipelines.errors import InvalidPipelineError, MedallionError, Terminated, UsageError

EPILOG = """\
environment variables:
  MEDALLION_ENV        environment when --env is not given (local, dev, prod; default local)
  MEDALLION_HOME       base folder of local state (default ./.medallion): landing/, lakehouse/, state/
  MEDALLION_ENGINE     force the Delta engine: auto, native, offline
  MEDALLION_DELTA_JARS folder of Delta jars to use instead of the `medallion setup` cache
  MEDALLION_DELTA_CACHE where `medallion setup` keeps the jars (default ~/.cache/medallion/delta)
  MEDALLION_MAVEN_REPO Maven repository for `medallion setup` (default Maven Central)

exit codes:
  0 done; 1 a step failed; 2 bad configuration or arguments; 3 training refused by the data-quality gate;
  4 run completed, but landed files were not ingested (see bronze.rejected_files);
  5 another run holds this home's run lock

examples:
  medallion setup                        # once, at install: fetch Delta's jars for the native engine
  medallion run                          # land the sample (first time), build all tables
  medallion land --month 1 --month 2     # deliver January and February only
  medallion run --select bronze.flights  # one table; 'bronze' = a layer; 'bronze.flights+' = and downstream
  medallion plan                         # what a run would do and why, without running it
  medallion history bronze.flights
  medallion sql "SELECT * FROM gold.carrier_monthly_performance LIMIT 5"
"""


PLAN_EPILOG = """\
what it compares: each build records in its Delta commit the input versions it read and a fingerprint of
its transform's code (the function and the package code it uses), its declaration (inputs, write mode,
keys) and its checks. Comments and descriptions do not count: they are applied without a rebuild.

examples:
  medallion plan                              # every table
  medallion plan --select gold                # the gold tables only
  medallion run --dry-run --select silver.flights+
"""


BACKFILL_EPILOG = """\
which tables: those that declare `backfill: {column: <date column>, grain: day|month}` in conf/tables and
are written with overwrite (the gold tables). A month table replaces every month the range overlaps.

examples:
  medallion backfill --from 2013-03-01 --to 2013-03-31                       # every backfillable table
  medallion backfill --from 2013-03-01 --to 2013-03-31 --select gold.route_daily_stats
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medallion",
        description="Spark/Delta medallion pipeline: landing files -> bronze -> silver -> gold, "
        "locally (offline Delta) or on Databricks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"medallion {__version__}")
    parser.add_argument(
        "--env", help="configuration environment: conf/<env>.yml (default: $MEDALLION_ENV or local)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print full traces on failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="build tables in dependency order (lands the sample first if nothing is landed)",
        description="Build the declared tables in dependency order, one line per table.",
    )
    run.add_argument(
        "--select",
        action="append",
        metavar="SEL",
        help="a table (bronze.flights), a layer (bronze), or TABLE+ for it and everything downstream; repeatable",
    )
    run.add_argument(
        "--no-land", action="store_true", help="do not land the sample even if the landing folder is empty"
    )
    run.add_argument(
        "--no-ml",
        action="store_true",
        help="build the tables only: no training or scoring after them (the Databricks jobs do that in their "
        "own ML tasks)",
    )
    run.add_argument("--run-id", help="identifier recorded with every write (default: time + random suffix)")
    run.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when another run holds this home's run lock, wait up to SECONDS for it (default: stop at once, "
        "exit code 5)",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild from all input rows instead of only those new since the last build (unchanged rows "
        "are still not rewritten)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="do not run: print what the run would do and why (the same as `medallion plan`)",
    )

    plan = sub.add_parser(
        "plan",
        help="what `medallion run` would do per table, and why, without running it (exit 2: invalid pipeline)",
        description="Analyse the pipeline without reading data: apply every transform to empty DataFrames of "
        "its inputs' schemas, check outputs against the declared columns and checks, then list per table "
        "what a run would do and why: build (new), rebuild (transform, declaration or checks changed since "
        "its last build, or its schema changes), update (new input commits), ingest (new landed files), "
        "skip. Exit 0, or 2 with every problem listed when the pipeline is invalid.",
        epilog=PLAN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("--select", action="append", metavar="SEL", help="as for run; repeatable")
    plan.add_argument("--full-refresh", action="store_true", help="plan a run with --full-refresh")

    land = sub.add_parser(
        "land",
        help="deliver the embedded NYC flights 2013 sample into the landing folder",
        description="Deliver the sample like a source system: flights CSV and weather JSON lines "
        "per month, airlines/airports/planes CSV snapshots. Unchanged files are left alone.",
    )
    land.add_argument(
        "--month",
        type=int,
        action="append",
        metavar="N",
        help="only month N (1-12) of flights and weather; repeatable",
    )
    land.add_argument(
        "--source",
        action="append",
        metavar="NAME",
        help="only this source (flights, weather, airlines, airports, planes); repeatable",
    )
    land.add_argument(
        "--force", action="store_true", help="re-deliver files even when unchanged (new modification time)"
    )

    setup = sub.add_parser(
        "setup",
        help="once, at install: fetch Delta Lake's jars (native Delta locally) and create this machine's "
        "pseudonymisation key",
        description="Resolve io.delta:delta-spark_<spark>_2.13:<delta-spark> and its dependencies from Maven "
        "Central (Spark's own resolver, or mvn) into a cache folder the session factory looks in. Runs "
        "download nothing afterwards. Without network access this prints one line and exits 0: the offline "
        "engine (delta-rs) is then used. Also creates a random pseudonymisation key for the sensitive columns "
        "in ~/.config/medallion/pseudonym.key (mode 0600; an existing key is never replaced), used when "
        "MEDALLION_PSEUDONYM_KEY and MEDALLION_PSEUDONYM_KEY_FILE are unset.",
    )
    setup.add_argument("--dest", help="put the jars in this folder (then set MEDALLION_DELTA_JARS to it)")
    setup.add_argument(
        "--via", choices=["auto", "spark", "mvn"], default="auto", help="resolver (default: spark, then mvn)"
    )
    setup.add_argument("--force", action="store_true", help="resolve again even if the jars are present")

    backfill = sub.add_parser(
        "backfill",
        help="rebuild one date range of tables and everything downstream (one replaceWhere commit each)",
        description="Recompute the rows of a date range from all input rows and replace exactly that range "
        "(one replaceWhere commit per table); rows outside it are not touched, and running it twice gives the "
        "same tables. The selected tables and everything downstream are backfilled; a table that cannot be "
        "replayed by range (bronze, MERGE tables, tables without a backfill declaration) is refused, with why, "
        "before anything is written.",
        epilog=BACKFILL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backfill.add_argument(
        "--from", dest="date_from", required=True, metavar="DATE", help="first day, YYYY-MM-DD"
    )
    backfill.add_argument("--to", dest="date_to", required=True, metavar="DATE", help="last day, YYYY-MM-DD")
    backfill.add_argument(
        "--select",
        action="append",
        metavar="SEL",
        help="a table, a layer or TABLE+ (downstream is always included); default: every table that "
        "declares a backfill; repeatable",
    )
    backfill.add_argument(
        "--run-id", help="identifier recorded with every write (default: time + random suffix)"
    )

    sub.add_parser(
        "audit",
        help="account for every landed row: file -> bronze -> silver, quarantine, superseded or rejected",
        description="Per landed file and delivery: the records in the file, the rows bronze holds, and where "
        "each bronze row went (silver, the quarantine, superseded by another delivery, or a rejected file). "
        "Exits 1 (AuditError) when any row is unaccounted.",
    )

    tables = sub.add_parser("tables", help="list every declared table with its rows, version and last update")
    tables.add_argument("--layer", choices=["bronze", "silver", "gold"], help="only this layer")

    hist = sub.add_parser("history", help="show a table's Delta commits, newest first")
    hist.add_argument("table", help="logical table name, e.g. bronze.flights")
    hist.add_argument("--limit", type=int, default=20, help="how many commits (default 20)")

    docs = sub.add_parser(
        "docs",
        help="write the pipeline's documentation site (graph, tables, checks, history, model): static, offline",
        description="Write a static HTML site that needs no network: the table graph (bronze, silver, gold, "
        "ML) as a picture, a page per table (description, columns and comments, checks with their latest "
        "result and a chart of failures per run, Delta history, quarantine counts, upstream and downstream "
        "links) and a page for the model (versions, training table version, metrics, plots, champions). "
        "Prints the path of index.html.",
    )
    docs.add_argument(
        "--out",
        help="output folder (default: <state>/docs): a new or empty folder, or one an earlier build wrote "
        "(replaced); a folder with other files in it is refused and left as it is",
    )

    maintain = sub.add_parser(
        "maintain",
        help="OPTIMIZE (compact small files) and VACUUM every existing table",
        description="OPTIMIZE (compact small files) and VACUUM (delete files no version within the retention "
        "references) every existing table, or those given with --table. VACUUM keeps at least each table's "
        "retention (its delta.deletedFileRetentionDuration, default 7 days = 168 hours): a shorter "
        "--retention-hours is refused before anything runs, since it would delete files that time travel and "
        "writes in flight still need. To keep less history, lower the table's property first. The offline "
        "engine's staging folders of writes in flight are never removed; those of writes that died are.",
    )
    maintain.add_argument("--table", action="append", metavar="NAME", help="only this table; repeatable")
    maintain.add_argument(
        "--retention-hours",
        type=float,
        default=None,
        metavar="H",
        help="VACUUM retention in hours, at least each table's own (default: each table's "
        "delta.deletedFileRetentionDuration, 168 when unset)",
    )
    for module in _extensions():
        module.register(sub)
    return parser


# Command groups that live beside their feature (data quality, analyst SQL, ML). Each module has
# ``register(subparsers)``, which adds its sub-commands and sets ``func`` on them (a callable taking
# ``(settings, args)`` and returning the exit code). Import them lazily: no Spark or MLflow at import time.
EXTENSIONS: tuple[str, ...] = (
    "pipelines.dq.cli",
    "pipelines.analyst.cli",
    "pipelines.ml.cli",
    "pipelines.bundle.cli",
)

# Steps after a successful ``medallion run``: "module:function" called with (settings, args, tables, lakehouse);
# each decides from the selection whether it applies (ML: train -> score when the run covers gold).
POST_RUN_HOOKS: tuple[str, ...] = ("pipelines.ml.cli:after_run",)


def _extensions() -> list[Any]:
    import importlib

    return [importlib.import_module(name) for name in EXTENSIONS]


def _post_run_hooks() -> list[Any]:
    import importlib

    return [getattr(importlib.import_module(m), f) for m, _, f in (h.partition(":") for h in POST_RUN_HOOKS)]


def _print(line: str = "") -> None:
    print(line, flush=True)


def _fmt_rows(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def cmd_land(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.landing import land_sample

    started = time.perf_counter()

    def show(item: Any) -> None:
        _print(f"  {item.status:<11} {item.source:<9} {item.path}  ({item.rows:,} rows)")

    _print(f"landing the sample into {settings.landing_dir}")
    landed = land_sample(settings, months=args.month, sources=args.source, force=args.force, progress=show)
    changed = sum(1 for f in landed if f.status != "unchanged")
    _print(
        f"{changed} file(s) delivered, {len(landed) - changed} unchanged, in {time.perf_counter() - started:.1f} s"
    )
    return 0


def cmd_setup(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipelines import delta_jars
    from pipelines.sensitive import create_key_file

    key_file, created = create_key_file()
    _print(
        f"setup: {'created' if created else 'kept'} this machine's pseudonymisation key {key_file} "
        "(MEDALLION_PSEUDONYM_KEY overrides it)"
    )
    started = time.perf_counter()
    result = delta_jars.fetch(
        Path(args.dest).expanduser() if args.dest else None, via=args.via, force=args.force, progress=_print
    )
    if result.status == "unreachable":
        _print(f"setup: {result.message}")
        return 0
    _print(f"setup: {result.message} ({time.perf_counter() - started:.1f} s)")
    if args.dest:
        _print(f"setup: export MEDALLION_DELTA_JARS={result.jar_set.folder if result.jar_set else args.dest}")
    return 0


def _nothing_landed(settings: Settings) -> bool:
    from pipelines.lakehouse.ingest import list_landed

    return not any(list_landed(settings.landing_dir, s) for s in settings.sources.values())


def cmd_plan(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.lakehouse import open_lakehouse
    from pipelines.plan import make_plan, plan_lines
    from pipelines.runner import select_tables
    from pipelines.session import decide_engine

    select_tables(settings, args.select)  # a bad selection fails before Spark starts
    info = decide_engine(settings)
    _print(
        f"plan  env={settings.env}  engine={info.engine} ({info.where})  lakehouse={settings.lakehouse_dir}"
    )
    if _nothing_landed(settings):
        _print("nothing is landed yet: `medallion run` would deliver the embedded sample first")
    _print("starting Spark (no data is read) ...")
    plan = make_plan(open_lakehouse(settings), args.select, full_refresh=args.full_refresh)
    for line in plan_lines(plan):
        _print(line)
    return 0 if plan.valid else 2


def _starting_spark() -> None:
    _print("starting Spark ...")
    if os.environ.get("MEDALLION_TRACE_SPARK_START"):
        traceback.print_stack(limit=12)


def _step_table() -> Any:
    """The function that prints one line per step (the header before the first)."""
    header: list[str] = [
        f"{'table':<32} {'rows read':>12} {'rows written':>13} {'seconds':>8} {'version':>8}  detail"
    ]

    def show(r: Any) -> None:
        while header:
            _print(header.pop())
        version = "-" if r.version is None else str(r.version)
        _print(
            f"{r.table:<32} {_fmt_rows(r.rows_read):>12} {_fmt_rows(r.rows_written):>13} {r.seconds:>8.1f} {version:>8}  {r.detail}"
        )

    return show


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.backfill import backfill_tables, parse_date, refusal, run_backfill
    from pipelines.lakehouse import open_lakehouse
    from pipelines.runner import new_run_id

    start, end = parse_date(args.date_from, "--from"), parse_date(args.date_to, "--to")
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    tables = backfill_tables(settings, args.select)
    run_id = args.run_id or new_run_id()
    started = time.perf_counter()
    _print(f"backfill {run_id}  {start}..{end}  {len(tables)} table(s): {', '.join(tables)}")
    _print("starting Spark ...")
    lh = open_lakehouse(settings)
    refused = [(n, r) for n in tables if (r := refusal(lh, n)) is not None]
    if refused:
        for name, reason in refused:
            _print(f"  refused {name}: {reason}")
    with _one_run_at_a_time(settings, run_id, args):
        results = run_backfill(lh, tables, start, end, run_id, on_step=_step_table())
    _print(
        f"done: {len(results)} table(s), {sum(r.rows_written for r in results):,} rows written in "
        f"{time.perf_counter() - started:.1f} s (backfill {run_id})"
    )
    if settings.ml.features_table in tables:
        _print(f"note: predictions are not rescored by a backfill: medallion score --since {start}")
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.runner import new_run_id, select_tables

    if args.dry_run:
        return cmd_plan(settings, args)
    tables = select_tables(settings, args.select)
    run_id = args.run_id or new_run_id()
    started = time.perf_counter()
    with _one_run_at_a_time(settings, run_id, args):  # landing the sample included
        return _run_locked(settings, args, tables, run_id, started)


def _one_run_at_a_time(settings: Settings, run_id: str, args: argparse.Namespace) -> Any:
    """The home's run lock (see :mod:`pipelines.runlock`); none on Databricks (jobs run one at a time)."""
    import contextlib

    from pipelines.runlock import run_lock
    from pipelines.session import on_databricks

    if on_databricks():
        return contextlib.nullcontext()
    return run_lock(settings.state_dir, run_id, getattr(args, "wait", 0.0) or 0.0)


def _run_locked(
    settings: Settings, args: argparse.Namespace, tables: list[str], run_id: str, started: float
) -> int:
    from pipelines.lakehouse import open_lakehouse
    from pipelines.runner import run_pipeline
    from pipelines.session import decide_engine

    if not args.no_land and _nothing_landed(settings):
        _print("nothing is landed yet: delivering the embedded sample first")
        cmd_land(settings, argparse.Namespace(month=None, source=None, force=False))
    info = decide_engine(settings)
    _print(
        f"run {run_id}  env={settings.env}  engine={info.engine} ({info.where})  lakehouse={settings.lakehouse_dir}"
    )
    _print(f"engine: {info.engine}, because {info.reason}")
    lh = open_lakehouse(settings, lazy=True, on_start=_starting_spark)
    show = _step_table()
    results = run_pipeline(lh, tables, run_id, on_step=show, full_refresh=args.full_refresh)
    written = sum(r.rows_written for r in results)
    built = sum(1 for r in results if r.status == "ok")
    _print(
        f"done: {len(results)} table(s), {built} changed, {written:,} rows written in "
        f"{time.perf_counter() - started:.1f} s (run {run_id})"
    )
    problems = _landing_report(lh, results, tables, run_id)
    args.run_id = run_id  # the post-run steps record it too
    for hook in _post_run_hooks():
        hook(settings, args, tables, lh)
    if problems:
        _print(
            f"completed with {problems} landed file(s) not ingested (exit code {EXIT_REJECTIONS}): they stay in "
            f'landing, see bronze.rejected_files (medallion sql "SELECT * FROM bronze.rejected_files")'
        )
        return EXIT_REJECTIONS
    return 0


#: ``medallion run`` finished, but some landed files were not ingested (rejected, or matching no source).
EXIT_REJECTIONS = 4


def _landing_report(lh: Any, results: Sequence[Any], tables: Sequence[str], run_id: str) -> int:
    """Print what bronze noticed in the landed files; returns how many files were not ingested."""
    from pipelines.lakehouse.ingest import report_unmatched

    for r in results:
        for note in r.notes:
            _print(f"  note {r.table}: {note}")
        for why in r.rejected:
            _print(f"  REJECTED {r.table}: {why}")
    count = sum(len(r.rejected) for r in results)
    if any(lh.settings.tables[t].layer == "bronze" for t in tables):
        for info, why in report_unmatched(lh, run_id):
            _print(f"  NOT INGESTED {info.name}: {why}")
            count += 1
    return count


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.audit import audit, check
    from pipelines.lakehouse import open_lakehouse

    lh = open_lakehouse(settings)
    accounts = audit(lh)
    _print(
        f"{'table':<16} {'landed file':<40} {'file rows':>9} {'bronze':>8} {'silver':>8} {'quarant.':>8} "
        f"{'supersed.':>9} {'rejected':>8} {'unaccounted':>11}"
    )
    for a in sorted(accounts, key=lambda a: (a.table, a.file, str(a.delivered_at))):
        rows = "-" if a.file_rows is None else f"{a.file_rows:,}"
        _print(
            f"{a.table:<16} {a.file:<40} {rows:>9} {a.bronze:>8,} {a.silver:>8,} {a.quarantine:>8,} "
            f"{a.superseded:>9,} {a.rejected:>8} {a.unaccounted:>11,}"
            + (f"  ({'; '.join(a.notes)})" if a.notes else "")
        )
    check(accounts)
    _print(
        f"every row accounted for: {len(accounts)} delivery(ies), {sum(a.bronze for a in accounts):,} bronze rows"
    )
    return 0


def cmd_tables(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.analyst.catalog import description as table_description
    from pipelines.analyst.catalog import listed_tables, row_count
    from pipelines.lakehouse import open_lakehouse

    lh = open_lakehouse(settings)
    # Every declared table (system tables too), quarantine tables once they exist.
    _print(f"{'table':<32} {'layer':<7} {'rows':>10} {'version':>8}  {'last update (UTC)':<20} description")
    for name in listed_tables(lh, args.layer):
        description = table_description(lh, name)
        layer = name.partition(".")[0]
        if not lh.exists(name):
            _print(f"{name:<32} {layer:<7} {'-':>10} {'-':>8}  {'(not built yet)':<20} {description}")
            continue
        last = lh.history(name, limit=1)[0]
        when = datetime.fromtimestamp(last["timestamp"] / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows = row_count(lh, name)
        _print(f"{name:<32} {layer:<7} {rows:>10,} {last['version']:>8}  {when:<20} {description}")
    return 0


def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.lakehouse import open_lakehouse

    lh = open_lakehouse(settings)
    settings.table(args.table)  # every table is declared, system tables too: a typo lists close matches
    _print(f"{'version':>7}  {'time (UTC)':<19}  {'operation':<14} {'run id':<26} metrics")
    for c in lh.history(args.table, limit=args.limit):
        when = datetime.fromtimestamp((c["timestamp"] or 0) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        run_id = str(c["custom"].get("medallion.run_id", ""))
        metrics = ", ".join(f"{k}={v}" for k, v in list(c["operationMetrics"].items())[:4])
        _print(f"{c['version']:>7}  {when:<19}  {c['operation'] or '':<14} {run_id:<26} {metrics}")
    return 0


def cmd_docs(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipelines.docs.site import build_site
    from pipelines.lakehouse import open_lakehouse

    out = Path(args.out).absolute() if args.out else settings.state_dir / "docs"
    _print("starting Spark ...")
    lh = open_lakehouse(settings)
    site = build_site(lh, out)
    _print(f"{len(site.pages)} page(s) written in {site.seconds:.1f} s")
    _print(f"docs: {site.index}")
    return 0


def cmd_maintain(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.analyst.catalog import listed_tables
    from pipelines.lakehouse import open_lakehouse
    from pipelines.lakehouse.base import check_retention

    if args.retention_hours is not None and args.retention_hours < 0:
        raise UsageError(f"--retention-hours must be 0 or more, not {args.retention_hours:g}")
    lh = open_lakehouse(settings)
    every = listed_tables(lh)  # every declared table (system tables too), existing quarantines
    names = args.table or every
    for name in names:
        if name not in every:
            settings.table(name)  # an unknown name: the error lists close matches
    existing = [n for n in names if lh.exists(n)]
    for name in existing:  # every retention is checked before any table is touched
        check_retention(lh.ref(name), args.retention_hours, lh.retention_hours(name))
    for name in names:
        if name not in existing:
            _print(f"{name:<28} not built yet, skipped")
            continue
        started = time.perf_counter()
        metrics = lh.optimize(name)
        from pipelines.faults import crash_point

        crash_point("maintain.optimized")
        removed = lh.vacuum(name, args.retention_hours)
        added = metrics.get("numFilesAdded", metrics.get("num_files_added", "?"))
        dropped = metrics.get("numFilesRemoved", metrics.get("num_files_removed", "?"))
        _print(
            f"{name:<28} optimize: {dropped} file(s) -> {added}; vacuum: {len(removed)} file(s) deleted "
            f"({time.perf_counter() - started:.1f} s)"
        )
    return 0


COMMANDS = {
    "run": cmd_run,
    "plan": cmd_plan,
    "backfill": cmd_backfill,
    "docs": cmd_docs,
    "land": cmd_land,
    "setup": cmd_setup,
    "audit": cmd_audit,
    "tables": cmd_tables,
    "history": cmd_history,
    "maintain": cmd_maintain,
}


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, return the exit code (never raises for expected failures)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    previous = _terminate_as_interrupt()
    try:
        settings = load_settings(args.env)
        func = getattr(args, "func", None) or COMMANDS[args.command]
        return int(func(settings, args))
    except InvalidPipelineError as exc:
        if args.verbose:
            traceback.print_exc()
        if args.command == "plan" or getattr(args, "dry_run", False):  # the plan lists every problem
            _print(f"the pipeline is invalid: {len(exc.problems)} problem(s)")
            for problem in exc.problems:
                _print(f"  - {problem}")
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except MedallionError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except Terminated:
        print("error: terminated (SIGTERM)", file=sys.stderr, flush=True)
        return 143
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # an unexpected failure: still one line unless --verbose
        if args.verbose:
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        print(
            f"error: unexpected {type(exc).__name__}: {first} (run with --verbose for the trace)",
            file=sys.stderr,
            flush=True,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate_as_interrupt() -> Any:
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main thread, after what Ctrl-C does
    first (pyspark's handler cancels the running Spark jobs), so that every ``finally`` and interrupt path
    runs: Python's default for SIGTERM is to die on the spot. Returns the handler it replaced (None off the
    main thread, where no handler can be installed)."""

    def on_term(signum: int, frame: Any) -> None:
        interrupt = signal.getsignal(signal.SIGINT)
        if callable(interrupt) and interrupt is not signal.default_int_handler:
            with contextlib.suppress(KeyboardInterrupt):
                interrupt(signal.SIGINT, frame)
        raise Terminated

    try:
        return signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        return None


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point. Exits through os._exit so that deltalake's runtime cannot turn a clean exit
    code into an abort at interpreter shutdown."""
    exit_process(run_cli(argv))


def exit_process(code: int) -> None:
    """Stop Spark, flush, and leave with ``code`` through os._exit (deltalake's runtime can otherwise abort
    at interpreter shutdown and replace a clean exit code)."""
    try:
        from pipelines.session import stop_session

        stop_session()
    except Exception:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
