"""``medallion dq``: data-quality results and the Great Expectations report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipelines.config import Settings

HELP = """\
examples:
  medallion dq results                      # the checks of the latest run, failures first
  medallion dq results --table silver.flights --all-runs
  medallion dq report                       # GE Data Docs for every checked silver/gold table
  medallion dq report --out /tmp/dq --table silver.weather
  medallion dq profile silver.weather       # null rates, ranges, value sets, keys -> candidate checks (YAML)
"""


def register(sub: Any) -> None:
    dq = sub.add_parser(
        "dq",
        help="data-quality results and the Great Expectations report",
        description="Data-quality results (gold.dq_results) and Great Expectations Data Docs.",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dq_sub = dq.add_subparsers(dest="dq_command", metavar="SUBCOMMAND", required=True)
    report = dq_sub.add_parser(
        "report",
        help="validate the current silver/gold tables with Great Expectations and write Data Docs (HTML)",
        description="Build GE suites from the checks in conf/tables/*.yml, validate the current version of "
        "each checked table, and write Data Docs that render offline. Prints the path of index.html.",
    )
    report.add_argument(
        "--out",
        help="output folder (default: <state>/dq-report): a new or empty folder, or one an earlier report "
        "wrote (replaced); a folder with other files in it is refused and left as it is",
    )
    report.add_argument("--table", action="append", metavar="NAME", help="only this table; repeatable")
    report.set_defaults(func=cmd_report)
    prof = dq_sub.add_parser(
        "profile",
        help="profile a table and print candidate checks as YAML (the form of conf/tables/*.yml)",
        description="Profile a table in two aggregate passes (null rates, numeric ranges, distinct counts, "
        "exact value sets of low-cardinality columns, unique columns) and print candidate checks, all with "
        "action warn, as an expectations: block to review and paste into conf/tables/*.yml.",
    )
    prof.add_argument("table", help="logical table name, e.g. silver.weather")
    prof.add_argument("--version", type=int, help="Delta version to profile (default: the latest)")
    prof.add_argument(
        "--max-distinct",
        type=int,
        default=20,
        help="propose in_set for at most this many values (default 20)",
    )
    prof.set_defaults(func=cmd_profile)
    results = dq_sub.add_parser("results", help="print the recorded check results (gold.dq_results)")
    results.add_argument("--table", metavar="NAME", help="only this table")
    results.add_argument("--run-id", help="this run (default: the latest run)")
    results.add_argument("--all-runs", action="store_true", help="every run, newest first")
    results.add_argument("--limit", type=int, default=100, help="at most this many rows (default 100)")
    results.set_defaults(func=cmd_results)


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.dq.report import build_report
    from pipelines.lakehouse import open_lakehouse

    out = Path(args.out) if args.out else settings.state_dir / "dq-report"
    print("starting Spark ...", flush=True)
    lh = open_lakehouse(settings)

    def show(t: Any) -> None:
        status = "passed" if t.success else f"FAILED {', '.join(t.failed)}"
        skipped = f" ({len(t.skipped)} in-flight check(s) not in the suite)" if t.skipped else ""
        print(
            f"  {t.table:<28} v{t.version:<5} {t.rows:>10,} rows  {t.expectations:>3} expectations  {status}{skipped}",
            flush=True,
        )

    print(f"validating with Great Expectations into {out}", flush=True)
    report = build_report(lh, out.absolute(), args.table, progress=show)
    failed = sum(1 for t in report.tables if not t.success)
    print(
        f"{len(report.tables)} table(s) validated in {report.seconds:.1f} s, {failed} with failed expectations"
    )
    print(f"report: {report.index}")
    return 0


def cmd_profile(settings: Settings, args: argparse.Namespace) -> int:
    import sys

    from pipelines.dq.profile import profile, render
    from pipelines.lakehouse import open_lakehouse

    settings.table(args.table)  # a typo lists close matches before Spark starts
    print("# starting Spark ...", file=sys.stderr, flush=True)
    lh = open_lakehouse(settings)
    version = args.version if args.version is not None else lh.version(args.table)
    df = lh.read_treated(args.table, version)
    print(render(profile(df, args.table, version, args.max_distinct)), end="", flush=True)
    return 0


def cmd_results(settings: Settings, args: argparse.Namespace) -> int:
    from pyspark.sql import functions as F

    from pipelines.errors import UsageError
    from pipelines.lakehouse import open_lakehouse

    lh = open_lakehouse(settings)
    results = settings.system_table("dq_results")
    if not lh.exists(results):
        raise UsageError("no data-quality results yet: run `medallion run` first")
    df = lh.read(results)
    if args.table:
        settings.table(args.table)
        df = df.where(F.col("table_name") == args.table)
    if args.run_id:
        df = df.where(F.col("run_id") == args.run_id)
    elif not args.all_runs:
        latest = df.agg(F.max("checked_at")).first()
        run = (
            df.where(F.col("checked_at") == latest[0]).select("run_id").first()
            if latest and latest[0]
            else None
        )
        if run is None:
            print("no results")
            return 0
        df = df.where(F.col("run_id") == run[0])
    rows = (
        df.orderBy(F.col("checked_at").desc(), F.col("passed"), "table_name", "check_name")
        .limit(args.limit)
        .collect()
    )
    print(
        f"{'run id':<26} {'table':<20} {'check':<26} {'action':<10} {'failed':>9} {'checked':>10} {'version':>7}  details"
    )
    for r in rows:
        version = "-" if r["table_version"] is None else str(r["table_version"])
        mark = "" if r["passed"] else " !"
        print(
            f"{r['run_id']:<26} {r['table_name']:<20} {r['check_name']:<26} {r['action']:<10} "
            f"{r['rows_failed']:>9,} {r['rows_checked']:>10,} {version:>7}  {(r['details'] or '')}{mark}"
        )
    return 0
