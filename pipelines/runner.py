"""Runs the declared tables in dependency order.

The order comes from each table's declared inputs (a graph, not a hard-coded sequence). A selection can
name a table (``bronze.flights``), a layer (``bronze``), or a table and everything downstream of it
(``bronze.flights+``).
"""

from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.config import LAYERS, Settings
from pipelines.errors import ConfigError, UsageError
from pipelines.lakehouse import Lakehouse, MergeSpec
from pipelines.lakehouse.base import NON_DATA_OPERATIONS
from pipelines.outputs import TableOutput

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class StepResult:
    table: str
    status: str  # "ok", "nothing new", "failed"
    rows_read: int | None
    rows_written: int
    seconds: float
    version: int | None
    detail: str = ""


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def topological_order(settings: Settings) -> list[str]:
    """All declared tables, every table after its inputs; ties broken by layer, then name."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ConfigError(f"tables form a cycle: {' -> '.join((*trail, name))}")
        state[name] = 1
        for dep in dependencies(settings, name):
            visit(dep, (*trail, name))
        state[name] = 2
        order.append(name)

    for name in sorted(settings.tables, key=lambda n: (LAYERS.index(settings.tables[n].layer), n)):
        visit(name, ())
    return order


def dependencies(settings: Settings, name: str) -> list[str]:
    """Tables that must be built before ``name``: its inputs and the reference tables of its checks."""
    table = settings.tables[name]
    refs = [c.ref_table for c in table.expectations if c.type == "foreign_key" and c.ref_table]
    return [*table.inputs, *(r for r in refs if r not in table.inputs and r != name)]


def downstream(settings: Settings, root: str) -> set[str]:
    found = {root}
    changed = True
    while changed:
        changed = False
        for name, table in settings.tables.items():
            if name not in found and found.intersection(table.inputs):
                found.add(name)
                changed = True
    return found


def select_tables(settings: Settings, selectors: Iterable[str] | None) -> list[str]:
    order = topological_order(settings)
    selectors = [s for s in (selectors or []) if s]
    if not selectors:
        return order
    chosen: set[str] = set()
    for sel in selectors:
        if sel in LAYERS:
            chosen |= {n for n in order if settings.tables[n].layer == sel}
        elif sel.endswith("+"):
            settings.table(sel[:-1])
            chosen |= downstream(settings, sel[:-1])
        elif sel in settings.tables:
            chosen.add(sel)
        else:
            from difflib import get_close_matches

            close = get_close_matches(sel, [*settings.tables, *LAYERS], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"--select {sel!r} names no table or layer{hint} (tables: {', '.join(order)})")
    return [n for n in order if n in chosen]


def _load_transform(path: str) -> Callable[..., object]:
    module_name, _, func = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, func)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"transform {path!r} cannot be imported: {exc}") from None


def replace_predicate(column: str, values: Iterable[object]) -> str:
    """SQL predicate ``column`` in ``values``; runs of consecutive dates are written as BETWEEN ranges."""
    import datetime as dt

    distinct = sorted({v for v in values if v is not None}, key=repr)
    if not distinct:
        return "false"
    col = f"`{column}`"
    if all(isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in distinct):
        days = sorted(distinct)  # type: ignore[type-var]
        runs: list[list[dt.date]] = []
        for day in days:
            if runs and (day - runs[-1][-1]).days == 1:  # type: ignore[operator]
                runs[-1].append(day)  # type: ignore[arg-type]
            else:
                runs.append([day])  # type: ignore[list-item]
        parts = [
            f"{col} = DATE'{r[0]}'" if len(r) == 1 else f"{col} BETWEEN DATE'{r[0]}' AND DATE'{r[-1]}'"
            for r in runs
        ]
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def literal(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"

    return f"{col} IN ({', '.join(literal(v) for v in distinct)})"


INPUTS_KEY = "medallion.inputs"


def _last_inputs(lh: Lakehouse, name: str) -> dict[str, int] | None:
    """Input versions recorded by the table's last pipeline write (None: never built, or unknown)."""
    import json

    if not lh.exists(name):
        return None
    for commit in lh.history(name):
        raw = commit["custom"].get(INPUTS_KEY)
        if raw:
            try:
                return {str(k): int(v) for k, v in json.loads(raw).items()}
            except (ValueError, TypeError, AttributeError):
                return None
    return None


def _data_commits(lh: Lakehouse, dep: str, since: int, now: int) -> list[dict[str, Any]]:
    return [
        c
        for c in lh.history(dep)
        if since < c["version"] <= now and (c.get("operation") or "").upper() not in NON_DATA_OPERATIONS
    ]


def _changes_since(lh: Lakehouse, dep: str, since: int, now: int, df: DataFrame) -> DataFrame | None:
    """Rows of ``dep`` written by the runs that committed versions (since, now]; None (= read everything)
    when a data commit carries no run id (a write from outside the pipeline) or rows carry none."""
    from pyspark.sql import functions as F

    commits = _data_commits(lh, dep, since, now)
    if "_run_id" not in df.columns or any(not c["custom"].get("medallion.run_id") for c in commits):
        return None
    run_ids = sorted({str(c["custom"]["medallion.run_id"]) for c in commits})
    return df.where(F.col("_run_id").isin(run_ids))


def _input_changed(lh: Lakehouse, dep: str, since: int, now: int) -> bool:
    """Did anything but maintenance (OPTIMIZE, VACUUM, comments) commit to ``dep`` after version ``since``?"""
    return bool(_data_commits(lh, dep, since, now))


def run_table(lh: Lakehouse, name: str, run_id: str, full_refresh: bool = False) -> StepResult:
    """Build one table: ingest for bronze, otherwise read inputs -> transform -> checks -> write as declared.

    A transform is called with one DataFrame per input (keyword = the input's short name, each read at the
    version current when the step starts). If it also takes a ``changes`` argument, it gets, per input, only
    the rows written since this table was last built (by ``_run_id``), or None when the table is new or
    ``full_refresh`` is set: incremental tables transform what is new and MERGE or replace it.
    A table whose inputs did not change since its last build is skipped ("nothing new").
    """
    import inspect
    import json

    from pipelines.dq.engine import IN_FLIGHT_PREFIX, TableChecks, describe

    settings = lh.settings
    conf = settings.table(name)
    started = time.perf_counter()
    if conf.source is not None:
        from pipelines.lakehouse.ingest import ingest_function

        ingest = ingest_function(settings)  # storage.ingest: manifest (anywhere) or autoloader (Databricks)
        res = ingest(lh, name, conf, conf.source, settings.sources[conf.source], run_id)
        files = res.files_new + res.files_redelivered
        detail = f"{files} file(s) ingested, {res.files_skipped} already in"
        if res.files_redelivered:
            detail += f", {res.files_redelivered} re-delivered"
        return StepResult(
            name,
            "ok" if files else "nothing new",
            res.rows_written,
            res.rows_written,
            time.perf_counter() - started,
            res.version,
            detail,
        )
    assert conf.transform is not None
    transform = _load_transform(conf.transform)
    missing = [dep for dep in conf.inputs if not lh.exists(dep)]
    if missing:
        raise UsageError(
            f"{name}: input table(s) {', '.join(missing)} not built yet; "
            f"run `medallion run --select {missing[0]}+` first"
        )
    versions = {dep: lh.version(dep) for dep in conf.inputs}
    last = None if full_refresh else _last_inputs(lh, name)
    if last is not None and all(
        dep in last and not _input_changed(lh, dep, last[dep], v)
        for dep, v in versions.items()
        if v is not None
    ):
        return StepResult(
            name, "nothing new", 0, 0, time.perf_counter() - started, lh.version(name), "inputs unchanged"
        )
    frames = {dep: lh.read(dep, versions[dep]) for dep in conf.inputs}
    kwargs: dict[str, object] = {dep.partition(".")[2]: frames[dep] for dep in conf.inputs}
    if "changes" in inspect.signature(transform).parameters:
        kwargs["changes"] = {
            dep.partition(".")[2]: (
                None
                if last is None or dep not in last or versions[dep] is None
                else _changes_since(lh, dep, last[dep], versions[dep] or 0, frames[dep])
            )
            for dep in conf.inputs
        }
    out = transform(**kwargs)
    replace_where = None
    if isinstance(out, TableOutput):
        if out.replace_values is not None:
            column = out.replace_column or out.replace_values.columns[0]
            values = [r[0] for r in out.replace_values.distinct().collect()]
            out = TableOutput(out.df, replace_where=replace_predicate(column, values))
        out, replace_where = out.df, out.replace_where
    from pyspark.sql import functions as F

    # Every table row carries the run that last wrote it: downstream tables read their changes by it.
    df = out.withColumn("_run_id", F.lit(run_id))
    commit = {"medallion.run_id": run_id, INPUTS_KEY: json.dumps(versions, sort_keys=True)}

    checks = TableChecks(lh, name, conf, run_id)
    prepared = checks.prepare(df)
    checks.run_dataset_checks(df)
    to_write = prepared.kept
    in_flight = [c for c in to_write.columns if c.startswith(IN_FLIGHT_PREFIX)]
    if in_flight:
        to_write = to_write.drop(*in_flight)
    # Column comments travel in the schema, so a new table is created documented in one commit.
    for column, comment in conf.columns.items():
        if column in to_write.columns:
            to_write = to_write.withMetadata(column, {"comment": comment})
    try:
        if conf.write.mode == "merge" and lh.exists(name):
            result = lh.merge(
                to_write,
                name,
                MergeSpec(keys=conf.write.keys, update_condition=conf.write.update_condition),
                commit_info=commit,
            )
        else:
            result = lh.write(
                to_write,
                name,
                "overwrite" if conf.write.mode == "merge" else conf.write.mode,
                partition_by=conf.write.partition_by,
                replace_where=replace_where,
                description=conf.description,
                commit_info=commit,
            )
    except Exception as exc:
        dq_error = checks.failed_write(exc)
        if dq_error is not None:
            raise dq_error from None
        raise
    outcomes = checks.finish(result.version)
    if conf.columns or conf.description:
        lh.set_comments(name, conf.description, conf.columns or None)
    detail = describe([*outcomes, *checks.dataset_outcomes])
    if checks.quarantined:
        detail += f"; {checks.quarantined:,} quarantined"
    if result.rows_updated:
        detail = f"{result.rows_updated:,} updated; " + detail
    return StepResult(
        name,
        "ok",
        None,
        result.rows_written + result.rows_updated,
        time.perf_counter() - started,
        result.version,
        detail.strip("; "),
    )


def run_pipeline(
    lh: Lakehouse,
    tables: Sequence[str],
    run_id: str,
    on_step: Callable[[StepResult], None] | None = None,
    full_refresh: bool = False,
) -> list[StepResult]:
    """Run ``tables`` in order; stops at the first failure (its exception propagates)."""
    results = []
    for name in tables:
        result = run_table(lh, name, run_id, full_refresh=full_refresh)
        results.append(result)
        if on_step:
            on_step(result)
    return results


def identity(**inputs: DataFrame) -> DataFrame:
    """A transform that passes its single input through (checks and write settings still apply)."""
    if len(inputs) != 1:
        raise ConfigError(
            f"the identity transform takes exactly one input, got {', '.join(inputs) or 'none'}"
        )
    return next(iter(inputs.values()))
