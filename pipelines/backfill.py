"""``medallion backfill --from DATE --to DATE [--select ...]``: rebuild one date range of tables.

A table can be backfilled when it declares ``backfill: {column, grain}`` and is written with ``overwrite``: its
transform is run on ALL input rows (so windows that look back before the range, such as the trailing delay
rates of the features, see what they need), its output is restricted to the range, checked like any build,
and written with ONE ``replaceWhere`` commit of that range. Rows outside the range are not touched, so a
backfill of a month equals a full rebuild restricted to that month, and backfilling twice gives the same
table. ``grain: month`` tables are dated by the first day of each month: the range replaces every month it
overlaps.

The selected tables and everything downstream of them are backfilled, in dependency order; when one of them
cannot be replayed by range (bronze ingests files exactly once, MERGE tables upsert by key, tables without a
``backfill`` declaration, tables whose transform, declaration or checks changed since their last build, which
the next run rebuilds whole, and tables the transform's output no longer fits), nothing is written and each
such table is named with the reason.

Bookkeeping: a backfill commit records the run id and the range, not input versions, so the next
``medallion run`` still compares inputs and fingerprints against the last full build (a backfill never makes
a table look up to date). Each step leaves an event row (command ``backfill``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from pipelines.config import Settings, TableConf
from pipelines.errors import ConfigError, UsageError
from pipelines.runner import (
    RUN_KEY,
    StepResult,
    _load_transform,
    call_transform,
    check_and_write,
    downstream,
    last_build,
    schema_change,
    select_tables,
    table_fingerprint,
    written_schema,
)

if TYPE_CHECKING:
    from pipelines.lakehouse import Lakehouse

BACKFILL_KEY = "medallion.backfill"


def parse_date(text: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected a date YYYY-MM-DD, e.g. 2013-03-01") from None


def backfill_tables(settings: Settings, selectors: Iterable[str] | None) -> list[str]:
    """The selected tables and everything downstream of them (no selection: every table that declares a
    backfill), in dependency order; system tables are never part of it."""
    selectors = [s for s in (selectors or []) if s]
    roots = (
        select_tables(settings, selectors)
        if selectors
        else [n for n in select_tables(settings, None) if settings.tables[n].backfill is not None]
    )
    chosen: set[str] = set()
    for root in roots:
        chosen |= downstream(settings, root)
    return [n for n in select_tables(settings, None) if n in chosen]


def refusal(lh: Lakehouse, name: str) -> str | None:
    """Why ``name`` cannot be backfilled by range (None: it can)."""
    conf = lh.settings.table(name)
    if conf.source is not None:
        return "a bronze table ingests each landed file exactly once; it cannot replay a date range"
    if conf.write.mode != "overwrite":
        return (
            f"it is written with {conf.write.mode} (by key), not replaced by a predicate; "
            "rebuild it with medallion run --full-refresh"
        )
    if conf.backfill is None:
        return "it declares no backfill column (backfill: {column: ..., grain: day|month} in conf/tables)"
    if not lh.exists(name):
        return f"it is not built yet: run `medallion run --select {name}` first"
    build = last_build(lh, name)
    changed = table_fingerprint(lh.settings, conf).changes(build.fingerprint if build else None)
    if changed:
        return (
            f"{', '.join(changed)} since its last build: `medallion run` rebuilds it whole (a backfill would "
            "mix two versions of it)"
        )
    return None


def schema_refusal(lh: Lakehouse, name: str) -> str | None:
    """Why the transform's output would not fit the stored table (analysis only, no data is read)."""
    conf = lh.settings.table(name)
    assert conf.transform is not None
    frames = {dep: lh.read_treated(dep) for dep in conf.inputs}
    df, _out = call_transform(_load_transform(conf.transform), conf, frames, None, lh.settings)
    from pyspark.sql import functions as F

    change = schema_change(lh.schema(name), written_schema(df.withColumn("_run_id", F.lit(""))))
    return (
        None
        if change is None
        else f"its output no longer fits the table ({change}): run `medallion run` first"
    )


def range_predicate(conf: TableConf, start: dt.date, end: dt.date) -> str:
    """SQL predicate of the rows of ``conf`` in [start, end] (month tables: the months it overlaps)."""
    assert conf.backfill is not None
    first = start.replace(day=1) if conf.backfill.grain == "month" else start
    return f"`{conf.backfill.column}` BETWEEN DATE'{first.isoformat()}' AND DATE'{end.isoformat()}'"


def run_backfill(
    lh: Lakehouse,
    tables: Sequence[str],
    start: dt.date,
    end: dt.date,
    run_id: str,
    on_step: Callable[[StepResult], None] | None = None,
) -> list[StepResult]:
    """Backfill ``tables`` (in order) over [start, end]; refuses before writing anything (UsageError)."""
    from pipelines import events

    if start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    refused = [(n, r) for n in tables if (r := refusal(lh, n)) is not None]
    if not refused:
        refused = [(n, r) for n in tables if (r := schema_refusal(lh, n)) is not None]
    if refused:
        raise UsageError(
            f"cannot backfill {len(refused)} table(s): "
            + "; ".join(f"{n}: {reason}" for n, reason in refused)
        )
    return events.EventLog(lh, run_id, "backfill").run(
        tables, lambda name: backfill_table(lh, name, start, end, run_id), on_step
    )


def backfill_table(lh: Lakehouse, name: str, start: dt.date, end: dt.date, run_id: str) -> StepResult:
    """One table: its transform over all input rows, restricted to the range, in one replaceWhere commit."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    conf = lh.settings.table(name)
    assert conf.transform is not None and conf.backfill is not None
    predicate = range_predicate(conf, start, end)
    versions = {dep: lh.version(dep) for dep in conf.inputs}
    frames = {dep: lh.read_treated(dep, versions[dep]) for dep in conf.inputs}
    df, _out = call_transform(_load_transform(conf.transform), conf, frames, None, lh.settings)
    if conf.backfill.column not in df.columns:
        raise ConfigError(
            f"{conf.declared_in or 'conf'}: table {name}: backfill.column {conf.backfill.column!r} is not a "
            "column of the transform's output"
        )
    df = df.where(F.expr(predicate)).withColumn("_run_id", F.lit(run_id))
    commit = {
        RUN_KEY: run_id,
        BACKFILL_KEY: json.dumps(
            {"from": start.isoformat(), "to": end.isoformat(), "predicate": predicate, "inputs": versions}
        ),
    }
    written = check_and_write(
        lh,
        name,
        conf,
        df,
        run_id,
        lambda rows: lh.write(
            rows,
            name,
            "overwrite",
            partition_by=conf.write.partition_by,
            replace_where=predicate,
            commit_info=commit,
        ),
    )
    return StepResult(
        name,
        "ok",
        None,
        written.rows(replaced=True),
        time.perf_counter() - started,
        written.result.version,
        f"{predicate}; {written.detail}".strip("; "),
        f"backfill {start.isoformat()}..{end.isoformat()}",
    )
