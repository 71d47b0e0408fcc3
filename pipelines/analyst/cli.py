"""``medallion sql``: Spark SQL by logical table names, one query or an interactive prompt.

Registered in ``pipelines.cli.EXTENSIONS``; Spark is imported only when a query runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from pipelines.analyst.output import FORMATS, render
from pipelines.errors import MedallionError

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.lakehouse import Lakehouse

DEFAULT_TABLE_LIMIT = 1000
HISTORY_FILE = "sql_history"

SQL_EPILOG = """\
Tables are named <layer>.<table> as `medallion tables` lists them: gold.carrier_monthly_performance,
silver.flights, gold.dq_results, silver.weather_quarantine, ... Locally each becomes a temporary view over
its Delta table; on Databricks the same names map to <catalog>.<schema>.<table> in Unity Catalog.

Read-only: only SELECT / WITH / VALUES / DESCRIBE over the declared tables run. Refused before Spark starts
(QueryNotAllowedError): DDL, DML and commands, TRANSFORM ... USING (a shell command), java_method / reflect,
IDENTIFIER(), read_files and other table functions that read, file-path tables (csv.`/path`, delta.`...`),
${...} substitution. Time travel: gold.route_daily_stats@v3, ... VERSION AS OF 3, ... TIMESTAMP AS OF '...'.

examples:
  medallion sql "SELECT carrier, on_time_share FROM gold.carrier_monthly_performance WHERE month_start = '2013-01-01' ORDER BY 2 DESC"
  medallion sql --format csv "SELECT * FROM gold.route_daily_stats WHERE origin = 'JFK'" > jfk.csv
  medallion sql --format json --limit 5 "SELECT * FROM gold.dq_results WHERE NOT passed"
  medallion sql "SELECT count(*) FROM gold.route_daily_stats@v0"     # the table's first version
  medallion sql                          # interactive: end a statement with ';' (or an empty line),
                                         # .tables lists tables, .quit leaves; history is kept
"""


def register(subparsers: Any) -> None:
    sql = subparsers.add_parser(
        "sql",
        help="run Spark SQL against tables by their logical names (no query: interactive prompt)",
        description="Run one read-only Spark SQL query (SELECT, WITH ..., VALUES, DESCRIBE) against the "
        "lakehouse tables by their logical names and print the result; with no query, open an interactive "
        "prompt.",
        epilog=SQL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sql.add_argument("query", nargs="?", help="the SQL statement (quote it); omit for the interactive prompt")
    sql.add_argument(
        "--format", choices=FORMATS, default="table", help="output: table (default), csv, or json (an array)"
    )
    sql.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help=f"print at most N rows (default {DEFAULT_TABLE_LIMIT} for table, all for csv/json; 0 = all)",
    )
    sql.set_defaults(func=cmd_sql)


def _limit(args: argparse.Namespace) -> int | None:
    if args.limit is None:
        return DEFAULT_TABLE_LIMIT if args.format == "table" else None
    if args.limit < 0:
        from pipelines.errors import UsageError

        raise UsageError(f"--limit must be 0 (all rows) or more, not {args.limit}")
    return args.limit or None


def run_one(lh: Lakehouse, sql: str, fmt: str, limit: int | None, out: Any = None) -> int:
    """Run ``sql`` and print it in ``fmt``; returns the number of rows printed."""
    from pipelines.analyst.sql import fetch

    out = out or sys.stdout
    columns, rows, truncated = fetch(lh, sql, limit)
    print(render(fmt, columns, rows), file=out, flush=True)
    if fmt == "table":
        note = f"({len(rows):,} row{'s' if len(rows) != 1 else ''}"
        note += "; more not shown: --limit 0 for all)" if truncated else ")"
        print(note, file=out, flush=True)
    elif truncated:
        print(f"note: output cut at {limit} rows (--limit 0 for all)", file=sys.stderr, flush=True)
    return len(rows)


def cmd_sql(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.lakehouse import open_lakehouse

    limit = _limit(args)
    if args.query is not None:
        if not args.query.strip():
            from pipelines.errors import UsageError

            raise UsageError('empty query: give a SELECT statement, e.g. medallion sql "SELECT 1"')
        from pipelines.analyst.sql import check

        check(settings, args.query)  # syntax and names before Spark starts
        lh = open_lakehouse(settings)
        run_one(lh, args.query, args.format, limit)
        return 0
    return interactive(settings, args.format, limit)


def _print_tables(lh: Lakehouse) -> None:
    from pipelines.analyst.sql import known_tables

    for name in known_tables(lh):
        state = "" if lh.exists(name) else "  (not built yet)"
        print(f"  {name}{state}", flush=True)


def interactive(settings: Settings, fmt: str, limit: int | None, stdin: Any = None) -> int:
    """A prompt: statements end with ';' or an empty line; history in <state>/sql_history."""
    import contextlib

    try:
        import readline
    except ImportError:  # pragma: no cover (Windows without pyreadline)
        readline = None  # type: ignore[assignment]
    from pipelines.lakehouse import open_lakehouse

    history = settings.state_dir / HISTORY_FILE
    if readline is not None:
        history.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            readline.read_history_file(str(history))
        readline.set_history_length(2000)
    tty = (stdin or sys.stdin).isatty()
    print("medallion sql: end a statement with ';' (or an empty line); .tables lists tables, .quit leaves")
    print("starting Spark ...", flush=True)
    lh = open_lakehouse(settings)
    buffer: list[str] = []

    def read(prompt: str) -> str:
        if stdin is None:
            return input(prompt if tty else "")
        line = stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    try:
        while True:
            try:
                line = read("sql> " if not buffer else "...> ")
            except EOFError:
                if not buffer:
                    break
                line = ";"
            except KeyboardInterrupt:
                print()
                buffer = []
                continue
            stripped = line.strip()
            if not buffer and stripped.lower() in (".quit", ".exit", "quit", "exit", "\\q"):
                break
            if not buffer and stripped.lower() in (".tables", "\\dt"):
                _print_tables(lh)
                continue
            if not buffer and not stripped:
                continue
            if stripped and stripped != ";":
                buffer.append(line)
            if stripped.endswith(";") or not stripped:
                statement = "\n".join(buffer).strip()
                buffer = []
                if not statement:
                    continue
                try:
                    run_one(lh, statement, fmt, limit)
                except MedallionError as exc:
                    print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(str(history))
    return 0
