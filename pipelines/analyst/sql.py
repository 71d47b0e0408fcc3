"""Spark SQL over logical table names (``gold.carrier_monthly_performance``), locally and on Databricks.

Why a parser: analysts write ``layer.table``. On Databricks that is ``<catalog>.<schema>.<table>`` in Unity
Catalog; locally the offline Delta engine has no catalog, and Spark's temporary views cannot carry a schema
prefix (``gold.x`` would be read as database ``gold``). Rewriting the text with a regex would also rewrite
string literals, comments, column references and CTE names that look like tables. So the query is parsed
with sqlglot (Spark dialect); every table reference ``layer.table`` is mapped to its physical name (a temp view
over ``Lakehouse.read`` locally, the Unity Catalog name on Databricks); CTE names are left alone; the SQL is
generated again in the Spark dialect and run by ``spark.sql``. A name that is not a table, or SQL that does
not parse, is refused before Spark sees it, with a one-line message (close matches, line and column).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

from pipelines.errors import TableNotFoundError, UsageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipelines.config import Settings
    from pipelines.lakehouse import Lakehouse

VIEW_SEPARATOR = "__"


@dataclass(frozen=True)
class Translation:
    sql: str
    tables: tuple[str, ...]  # logical names referenced, in order of first appearance


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


def parse(sql: str) -> Any:
    """One statement, parsed with the Spark dialect; UsageError for syntax errors or several statements."""
    import logging

    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise UsageError(
            'empty query: give a SELECT statement, e.g. medallion sql "SELECT * FROM gold.route_daily_stats"'
        )
    try:
        statements = [s for s in sqlglot.parse(text, read="spark") if s is not None]
    except (ParseError, TokenError) as exc:
        raise _syntax_error(exc, text) from None
    if len(statements) != 1:
        raise UsageError(f"one statement at a time, found {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query | exp.Describe):
        kind = type(tree).__name__.upper()
        if isinstance(tree, exp.Command):
            kind = str(tree.this).upper()
        raise UsageError(
            f"medallion sql runs queries (SELECT, WITH, DESCRIBE), not {kind}: tables are written by the "
            "pipeline; `medallion tables` lists them"
        )
    return tree


def translate(sql: str, known: Sequence[str], physical: Callable[[str], str]) -> Translation:
    """Rewrite every ``layer.table`` in ``sql`` to ``physical(layer.table)``; CTE names stay as they are.

    ``known``: the logical names a query may use. Raises UsageError for syntax errors and unknown tables.
    """
    from sqlglot import exp

    tree = parse(sql)
    known_set = {k.lower() for k in known}
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    used: list[str] = []
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table-valued function such as range(10)
        name, db, catalog = table.name, table.db, table.catalog
        if not db and name.lower() in ctes:
            continue
        if catalog:
            raise UsageError(
                f"use logical names <layer>.<table>, not {catalog}.{db}.{name}: the catalog comes from the "
                "configuration (storage.catalog)"
            )
        if not db:
            raise _unknown(name, known)
        logical = f"{db}.{name}".lower()
        if logical not in known_set:
            raise _unknown(logical, known)
        if logical not in used:
            used.append(logical)
        parts = physical(logical).split(".")
        if not table.alias:
            # Keep `flights.carrier` working for a query that names the table without an alias.
            table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
        table.set("this", exp.to_identifier(parts[-1]))
        table.set("db", exp.to_identifier(parts[-2]) if len(parts) > 1 else None)
        table.set("catalog", exp.to_identifier(parts[-3]) if len(parts) > 2 else None)
    return Translation(tree.sql(dialect="spark"), tuple(used))


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
    """Syntax and table names of ``sql``, without Spark (so that a typo is reported at once)."""
    return translate(sql, known_names(settings), view_name)


def physical_name(lh: Lakehouse, logical: str) -> str:
    ref = lh.ref(logical)
    return ref.location if ref.kind == "catalog" else view_name(logical)


def quiet_spark_errors() -> None:
    """PySpark logs every analysis error with its JVM trace as JSON on stderr; the CLI prints one line."""
    import logging

    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def _spark_message(exc: Exception, tables: Sequence[str]) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for logical in tables:
        text = text.replace(f"`{view_name(logical)}`", f"`{logical}`").replace(view_name(logical), logical)
    return text


def query(lh: Lakehouse, sql: str) -> DataFrame:
    """The DataFrame of ``sql`` over logical names (analysed, not yet run)."""
    return _prepare(lh, sql)[0]


def _prepare(lh: Lakehouse, sql: str) -> tuple[DataFrame, Translation]:
    from pyspark.errors import PySparkException

    quiet_spark_errors()
    translation = translate(sql, known_names(lh.settings), lambda n: physical_name(lh, n))
    for logical in translation.tables:
        if lh.ref(logical).kind == "catalog":
            continue
        try:
            df = lh.read(logical)
        except TableNotFoundError:
            if lh.settings.tables[logical].system == "quarantine":
                raise UsageError(
                    f"table {logical} does not exist: no row of {logical.removesuffix('_quarantine')} "
                    "has been quarantined"
                ) from None
            raise UsageError(
                f"table {logical} is not built yet: run `medallion run --select {logical}` first"
            ) from None
        df.createOrReplaceTempView(view_name(logical))

    try:
        return lh.spark.sql(translation.sql), translation
    except PySparkException as exc:
        raise UsageError(f"query failed: {_spark_message(exc, translation.tables)}") from None


def fetch(lh: Lakehouse, sql: str, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """(columns, rows, truncated): at most ``limit`` rows (None: all)."""
    from pyspark.errors import PySparkException

    df, translation = _prepare(lh, sql)
    tables = translation.tables
    try:
        rows = [tuple(r) for r in (df.limit(limit + 1) if limit is not None else df).collect()]
    except PySparkException as exc:
        raise UsageError(f"query failed: {_spark_message(exc, tables)}") from None
    truncated = limit is not None and len(rows) > limit
    return list(df.columns), rows[:limit] if limit is not None else rows, truncated
