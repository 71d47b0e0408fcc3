"""Spark SQL over logical table names (``gold.carrier_monthly_performance``), locally and on Databricks.

Why a parser: analysts write ``layer.table``. On Databricks that is ``<catalog>.<schema>.<table>`` in Unity
Catalog; locally the offline Delta engine has no catalog, and Spark's temporary views cannot carry a schema
prefix (``gold.x`` would be read as database ``gold``). Rewriting the text with a regex would also rewrite
string literals, comments, column references and CTE names that look like tables. So the query is parsed
with sqlglot (Spark dialect); every table reference ``layer.table`` is mapped to its physical name (a temp view
over ``Lakehouse.read`` locally, the Unity Catalog name on Databricks); CTE names are left alone; the SQL is
generated again in the Spark dialect and run by ``spark.sql``. A name that is not a table, or SQL that does
not parse, is refused before Spark sees it, with a one-line message (close matches, line and column).

Read-only for real: only query shapes, nodes, relations and functions that
:mod:`pipelines.analyst.readonly` allows pass (no commands, DDL/DML, shell ``TRANSFORM``, reflection,
``IDENTIFIER()``, file paths), and the query runs in an analyst session of its own with
``spark.sql.runSQLOnFiles`` and variable substitution off (:func:`pipelines.session.analyst_session`).

Time travel: ``<layer>.<table> VERSION AS OF n``, ``TIMESTAMP AS OF <constant>`` and Delta's ``@vN`` /
``@yyyyMMddHHmmssSSS`` suffixes read that version of the table through the engine's versioned read (a temp
view per version locally; on a catalog, Delta's own time travel). A timestamp picks the latest commit at or
before it, as Delta does; one before the first or after the latest commit is refused.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

from pipelines.analyst.readonly import check_constant, check_statement, refuse
from pipelines.errors import QueryNotAllowedError, TableNotFoundError, UsageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipelines.config import Settings
    from pipelines.lakehouse import Lakehouse

VIEW_SEPARATOR = "__"
#: Data source names Spark reads a path with (``csv.`/path```): never a table here.
FILE_FORMATS = frozenset(
    {"csv", "json", "parquet", "orc", "text", "avro", "delta", "binaryfile", "xml", "jdbc", "libsvm", "image"}
)
# Delta's suffixes on a table name: ``@v3`` (version) and ``@20240131235959000`` (yyyyMMddHHmmssSSS, UTC).
_AT_SUFFIX = re.compile(r"^(?P<name>.+)@(?:[vV](?P<version>[0-9]+)|(?P<stamp>[0-9]{17}))$")


@dataclass(frozen=True)
class TableRead:
    """A local temp view a query reads: ``logical`` at ``version`` or at the Spark SQL constant
    ``timestamp`` (neither: the current version)."""

    logical: str
    view: str
    version: int | None = None
    timestamp: str | None = None


@dataclass(frozen=True)
class Translation:
    sql: str
    tables: tuple[str, ...]  # logical names referenced, in order of first appearance
    reads: tuple[TableRead, ...] = ()  # the temp views the SQL reads (none for catalog tables)


def view_name(logical: str) -> str:
    """``gold.carrier_monthly_performance`` -> ``gold__carrier_monthly_performance`` (a local temp view)."""
    return logical.replace(".", VIEW_SEPARATOR)


def close_matches(name: str, known: Iterable[str]) -> list[str]:
    """Known names close to ``name``, comparing full names and the part after the layer."""
    known = sorted(set(known))
    found = get_close_matches(name, known, n=3, cutoff=0.6)
    short = name.rpartition(".")[2]
    by_short = {k.rpartition(".")[2]: k for k in known}
    for s in get_close_matches(short, list(by_short), n=3, cutoff=0.75):
        full = [k for k in known if k.rpartition(".")[2] == s]
        found += [k for k in full if k not in found]
    return found[:5]


def _unknown(name: str, known: Iterable[str]) -> UsageError:
    close = close_matches(name, known)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UsageError(f"unknown table {name!r}{hint} (`medallion tables` lists them all)")


def _syntax_error(exc: Exception, sql: str) -> UsageError:
    errors = getattr(exc, "errors", None) or [{}]
    first = errors[0]
    text = str(first.get("description") or exc).splitlines()[0]
    text = re.sub(r"<Token token_type: [^,]*, text: ([^,]*),[^>]*>", r"'\1'", text)
    line, col = first.get("line"), first.get("col")
    where = f" at line {line}, column {col}" if line is not None and col is not None else ""
    near = first.get("highlight")
    near_text = f" (near {near!r})" if near else ""
    return UsageError(f"SQL syntax error{where}: {text}{near_text}")


def _stamp_literal(digits: str) -> str:
    import datetime as dt

    try:
        moment = dt.datetime.strptime(digits, "%Y%m%d%H%M%S%f")
    except ValueError:
        raise UsageError(f"@{digits} is no timestamp: use @yyyyMMddHHmmssSSS (UTC) or @v<version>") from None
    return f"'{moment.isoformat(sep=' ', timespec='milliseconds')}Z'"


def at_syntax(text: str) -> str:
    """Delta's ``table@v3`` / ``table@yyyyMMddHHmmssSSS`` (no spaces) as ``table VERSION AS OF 3`` /
    ``table TIMESTAMP AS OF '...Z'``; only tokens are rewritten (never a string literal or comment)."""
    from sqlglot.dialects.spark import Spark
    from sqlglot.tokens import TokenType

    tokens = Spark().tokenize(text)
    edits: list[tuple[int, int, str]] = []
    for i in range(1, len(tokens) - 1):
        before, at, after = tokens[i - 1], tokens[i], tokens[i + 1]
        if at.token_type != TokenType.PARAMETER or at.text != "@":
            continue
        if before.end + 1 != at.start or at.end + 1 != after.start:
            continue
        if re.fullmatch(r"[vV][0-9]+", after.text):
            edits.append((at.start, after.end, f" VERSION AS OF {int(after.text[1:])}"))
        elif re.fullmatch(r"[0-9]{17}", after.text):
            edits.append((at.start, after.end, f" TIMESTAMP AS OF {_stamp_literal(after.text)}"))
    for start, end, replacement in reversed(edits):
        text = text[:start] + replacement + text[end + 1 :]
    return text


def parse(sql: str) -> Any:
    """One statement, parsed with the Spark dialect; UsageError for syntax errors or several statements,
    QueryNotAllowedError for anything but a read-only query (see :mod:`pipelines.analyst.readonly`)."""
    import logging

    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise UsageError(
            'empty query: give a SELECT statement, e.g. medallion sql "SELECT * FROM gold.route_daily_stats"'
        )
    try:
        statements = [s for s in sqlglot.parse(at_syntax(text), read="spark") if s is not None]
    except (ParseError, TokenError) as exc:
        raise _syntax_error(exc, text) from None
    if len(statements) != 1:
        raise UsageError(f"one statement at a time, found {len(statements)}")
    tree = statements[0]
    check_statement(tree)
    return tree


def _time_travel(table: Any, logical: str) -> tuple[int | None, str | None]:
    """(version, timestamp SQL) of a table reference's ``VERSION AS OF`` / ``TIMESTAMP AS OF`` / ``@...``."""
    from sqlglot import exp

    name = table.name
    at = _AT_SUFFIX.match(name)
    node = table.args.get("version")
    if at and node is not None:
        raise UsageError(f"{logical}: give one time travel, @... or AS OF, not both")
    if at:
        if at.group("version") is not None:
            return int(at.group("version")), None
        return None, _stamp_literal(at.group("stamp"))
    if node is None:
        return None, None
    kind = str(node.this).upper()
    value = node.expression
    if str(node.args.get("kind") or "").upper() != "AS OF" or kind not in ("VERSION", "TIMESTAMP"):
        raise UsageError(f"{logical}: time travel is VERSION AS OF <n> or TIMESTAMP AS OF <timestamp>")
    if kind == "VERSION":
        if not (isinstance(value, exp.Literal) and not value.is_string and value.is_int):
            raise UsageError(f"{logical}: VERSION AS OF takes a version number (0, 1, ...)")
        return int(value.name), None
    check_constant(value, f"{logical}: TIMESTAMP AS OF")
    return None, value.sql(dialect="spark", comments=False)


def _is_file_path(db: str, name: str) -> bool:
    return db.lower() in FILE_FORMATS or "/" in name or ":" in name or "\\" in name


def translate(
    sql: str, known: Sequence[str], catalog: Callable[[str], str | None] | None = None
) -> Translation:
    """Rewrite every ``layer.table`` in ``sql`` to a local temp view (:class:`TableRead`, one per version
    read) or, where ``catalog(layer.table)`` gives a name, to that catalog name; CTE names stay as they are.

    ``known``: the logical names a query may use. Raises UsageError for syntax errors and unknown tables,
    QueryNotAllowedError for anything a read-only query may not do.
    """
    from sqlglot import exp

    tree = parse(sql)
    known_set = {k.lower() for k in known}
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    used: list[str] = []
    reads: dict[tuple[str, int | None, str | None], TableRead] = {}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            continue  # a generator table function such as range(10), allowed by the read-only check
        if table.find_ancestor(exp.Hint) is not None:
            continue  # /*+ BROADCAST(r) */ names an alias, not a table
        name, db, catalog_part = table.name, table.db, table.catalog
        if not db and name.lower() in ctes:
            if table.args.get("version") is not None or _AT_SUFFIX.match(name):
                raise UsageError(f"time travel applies to tables, not to the CTE {name}")
            continue
        if _is_file_path(db, name):
            raise refuse(f"the file-path table {table.sql(dialect='spark', comments=False)[:80]}")
        if catalog_part:
            raise UsageError(
                f"use logical names <layer>.<table>, not {catalog_part}.{db}.{name}: the catalog comes from "
                "the configuration (storage.catalog)"
            )
        at = _AT_SUFFIX.match(name)
        short = at.group("name") if at else name
        if not db:
            raise _unknown(short, known)
        logical = f"{db}.{short}".lower()
        if logical not in known_set:
            raise _unknown(logical, known)
        version, timestamp = _time_travel(table, logical)
        if logical not in used:
            used.append(logical)
        if not table.alias and not isinstance(table.parent, exp.Describe):
            # Keep `flights.carrier` working for a query that names the table without an alias.
            table.set("alias", exp.TableAlias(this=exp.to_identifier(short)))
        target = catalog(logical) if catalog else None
        if target:
            parts = target.split(".")
            if timestamp is not None and at:
                table.set(
                    "version",
                    exp.Version(this="TIMESTAMP", kind="AS OF", expression=exp.maybe_parse(timestamp)),
                )
            elif version is not None and at:
                table.set(
                    "version",
                    exp.Version(this="VERSION", kind="AS OF", expression=exp.Literal.number(version)),
                )
        else:
            key = (logical, version, timestamp)
            if key not in reads:
                suffix = (
                    ""
                    if version is None and timestamp is None
                    else (
                        f"{VIEW_SEPARATOR}v{version}"
                        if version is not None
                        else f"{VIEW_SEPARATOR}t{sum(1 for k in reads if k[0] == logical and k[2] is not None) + 1}"
                    )
                )
                reads[key] = TableRead(logical, view_name(logical) + suffix, version, timestamp)
            parts = [reads[key].view]
            table.set("version", None)
        table.set("this", exp.to_identifier(parts[-1]))
        table.set("db", exp.to_identifier(parts[-2]) if len(parts) > 1 else None)
        table.set("catalog", exp.to_identifier(parts[-3]) if len(parts) > 2 else None)
    clash = sorted(ctes & {r.view.lower() for r in reads.values()})
    if clash:
        raise UsageError(f"the CTE name {clash[0]} is taken by a table's view: rename the CTE")
    text = tree.sql(dialect="spark", comments=False)
    # What Spark gets is checked again as Spark would read it: the generated text, parsed afresh.
    check_statement(parse_generated(text))
    return Translation(text, tuple(used), tuple(reads.values()))


def parse_generated(text: str) -> Any:
    import sqlglot

    try:
        return sqlglot.parse_one(text, read="spark")
    except Exception:  # pragma: no cover - sqlglot regenerates what it parsed
        raise QueryNotAllowedError("the query could not be checked after translation") from None


# ---- against a Lakehouse ------------------------------------------------------------------------------


def known_names(settings: Settings) -> list[str]:
    """Every name a query may use: the declared tables (system tables too: DQ results, the ingest manifest,
    the event log, the predictions, the quarantine tables), bronze, silver, then gold."""
    from pipelines.config import LAYERS

    rank = {layer: i for i, layer in enumerate(LAYERS)}
    return sorted(settings.tables, key=lambda n: rank.get(n.partition(".")[0], len(rank)))


def known_tables(lh: Lakehouse) -> list[str]:
    """The names of :func:`known_names`, without the quarantine tables that do not exist."""
    return [
        n for n in known_names(lh.settings) if lh.settings.tables[n].system != "quarantine" or lh.exists(n)
    ]


def check(settings: Settings, sql: str) -> Translation:
    """Syntax, table names and the read-only rules of ``sql``, without Spark (a typo is reported at once)."""
    return translate(sql, known_names(settings))


def catalog_name(lh: Lakehouse, logical: str) -> str | None:
    """The metastore name of a catalog table (Unity Catalog), None for a table read through a temp view."""
    from pipelines.sensitive import needs_protection

    ref = lh.ref(logical)
    if needs_protection(lh.settings, logical):  # a temp view of the treated read: never the raw columns
        return None
    return ref.location if ref.kind == "catalog" else None


def quiet_spark_errors() -> None:
    """PySpark logs every analysis error with its JVM trace as JSON on stderr; the CLI prints one line."""
    import logging

    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def _spark_message(exc: Exception, translation: Translation) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    names = [(r.view, _label(r)) for r in translation.reads]
    names += [(view_name(t), t) for t in translation.tables]
    for view, logical in sorted(names, key=lambda pair: -len(pair[0])):
        text = text.replace(f"`{view}`", f"`{logical}`").replace(view, logical)
    return text


def _label(read: TableRead) -> str:
    if read.version is not None:
        return f"{read.logical}@v{read.version}"
    return f"{read.logical} TIMESTAMP AS OF {read.timestamp}" if read.timestamp else read.logical


_ANALYST: weakref.WeakKeyDictionary[Lakehouse, Lakehouse] = weakref.WeakKeyDictionary()


def analyst_lakehouse(lh: Lakehouse) -> Lakehouse:
    """``lh`` on the analyst session (:func:`pipelines.session.analyst_session`): same engine and tables,
    file-path SQL and variable substitution off, temp views of its own. Made once per ``lh``."""
    from pipelines.lakehouse import Lakehouse, make_store
    from pipelines.session import analyst_session, check_analyst_session

    if lh in _ANALYST.values():
        check_analyst_session(lh.spark)
        return lh
    analyst = _ANALYST.get(lh)
    if analyst is None:
        session = analyst_session(lh.spark)
        analyst = Lakehouse(lh.settings, make_store(session, lh.engine, lh.settings))
        _ANALYST[lh] = analyst
    check_analyst_session(analyst.spark)
    return analyst


def version_at(lh: Lakehouse, logical: str, timestamp_sql: str) -> int:
    """The version of ``logical`` a ``TIMESTAMP AS OF`` reads: the latest commit at or before it (Delta's
    rule; before the first commit or after the latest one is a UsageError)."""
    import datetime as dt

    row = lh.spark.sql(f"SELECT unix_micros(CAST(({timestamp_sql}) AS TIMESTAMP)) AS t").first()
    if row is None or row[0] is None:
        raise UsageError(f"{logical}: TIMESTAMP AS OF {timestamp_sql} is not a timestamp")
    at_ms = int(row[0]) / 1000
    commits = sorted(lh.history(logical), key=lambda c: int(c["version"]))
    when = dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).isoformat(timespec="milliseconds")

    def stamp(commit: dict[str, Any]) -> str:
        return dt.datetime.fromtimestamp(int(commit["timestamp"]) / 1000, dt.UTC).isoformat(
            timespec="milliseconds"
        )

    if not commits or at_ms < int(commits[0]["timestamp"]):
        first = f" (its first commit is at {stamp(commits[0])})" if commits else ""
        raise UsageError(f"{logical} has no version at {when}{first}")
    if at_ms > int(commits[-1]["timestamp"]):
        raise UsageError(
            f"{logical}: {when} is after its latest commit (version {commits[-1]['version']} at "
            f"{stamp(commits[-1])}); drop TIMESTAMP AS OF to read the current version"
        )
    return max(int(c["version"]) for c in commits if int(c["timestamp"]) <= at_ms)


def _register(lh: Lakehouse, read: TableRead) -> None:
    """The temp view of one :class:`TableRead`, from the engine's (versioned) read."""
    version = read.version
    if read.timestamp is not None:
        version = version_at(lh, read.logical, read.timestamp)
    try:
        latest = lh.version(read.logical)
        if latest is None:
            raise TableNotFoundError(read.logical)
        if version is not None and version > latest:
            raise UsageError(f"{read.logical} has no version {version}: its versions are 0 to {latest}")
        df = lh.read_treated(read.logical, version)
    except TableNotFoundError:
        if lh.settings.tables[read.logical].system == "quarantine":
            raise UsageError(
                f"table {read.logical} does not exist: no row of "
                f"{read.logical.removesuffix('_quarantine')} has been quarantined"
            ) from None
        raise UsageError(
            f"table {read.logical} is not built yet: run `medallion run --select {read.logical}` first"
        ) from None
    df.createOrReplaceTempView(read.view)


def query(lh: Lakehouse, sql: str) -> DataFrame:
    """The DataFrame of ``sql`` over logical names (analysed, not yet run), on the analyst session."""
    return _prepare(lh, sql)[0]


def _prepare(lh: Lakehouse, sql: str) -> tuple[DataFrame, Translation]:
    from pyspark.errors import PySparkException

    quiet_spark_errors()
    analyst = analyst_lakehouse(lh)
    translation = translate(sql, known_names(analyst.settings), lambda n: catalog_name(analyst, n))
    for read in translation.reads:
        _register(analyst, read)
    try:
        return analyst.spark.sql(translation.sql), translation
    except PySparkException as exc:
        raise UsageError(f"query failed: {_spark_message(exc, translation)}") from None


def fetch(lh: Lakehouse, sql: str, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """(columns, rows, truncated): at most ``limit`` rows (None: all)."""
    from pyspark.errors import PySparkException

    df, translation = _prepare(lh, sql)
    try:
        rows = [tuple(r) for r in (df.limit(limit + 1) if limit is not None else df).collect()]
    except PySparkException as exc:
        raise UsageError(f"query failed: {_spark_message(exc, translation)}") from None
    truncated = limit is not None and len(rows) > limit
    return list(df.columns), rows[:limit] if limit is not None else rows, truncated
