"""``medallion plan`` (and ``medallion run --dry-run``): what a run would do, and why, without running it.

Analysis only: no table data is read and, on the offline engine, no Spark job runs. Table state comes from
the Delta logs (versions, commit metadata, schemas); every transform is applied to EMPTY DataFrames with the
schemas its inputs will have (the stored schema of a bronze table, else the schema its declaration and the
bronze transformation give; for later layers, the output of their own transform's analysis), so a change
that breaks a downstream transform shows up here.

Validated, all problems at once: the graph (cycles), that every transform imports and analyses, that the
incremental and the full call of a transform give the same columns, that the output matches the declared
columns, and that the checks apply to it (columns exist, expressions analyse, foreign-key columns exist).

Then, per table in run order: ``build`` (new), ``rebuild`` (transform, declaration or checks changed: the
fingerprint in its last commit differs; or its schema changes), ``update`` (new input commits, or an input
that changes earlier in the same run), ``ingest`` (bronze: new or re-delivered landed files), ``skip``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.config import Settings, TableConf
from pipelines.errors import ConfigError
from pipelines.runner import (
    call_transform,
    decide,
    dependencies,
    schema_change,
    select_tables,
    table_fingerprint,
    written_schema,
)
from pipelines.sensitive import protect

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from pipelines.lakehouse import Lakehouse

PLAN_RUN_ID = "plan"


@dataclass(frozen=True)
class TablePlan:
    table: str
    action: str  # build, rebuild, update, reread, ingest, skip, score (the ML step)
    reasons: tuple[str, ...]

    @property
    def changes(self) -> bool:
        return self.action != "skip"


@dataclass(frozen=True)
class Plan:
    tables: tuple[TablePlan, ...]
    problems: tuple[str, ...]
    seconds: float

    @property
    def valid(self) -> bool:
        return not self.problems

    def action(self, table: str) -> str:
        return next(t.action for t in self.tables if t.table == table)


def graph_problems(settings: Settings) -> list[str]:
    """Every cycle among the declared tables (inputs and foreign-key references), once each."""
    found: list[str] = []
    state: dict[str, int] = {}
    seen_cycles: set[frozenset[str]] = set()

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2 or name not in settings.tables:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name) :]
            if frozenset(cycle) not in seen_cycles:
                seen_cycles.add(frozenset(cycle))
                found.append(f"tables form a cycle: {' -> '.join([*cycle, name])}")
            return
        state[name] = 1
        for dep in dependencies(settings, name):
            visit(dep, [*trail, name])
        state[name] = 2

    for name in settings.tables:
        visit(name, [])
    return found


# ---- schemas without data ----------------------------------------------------------------------------


def _empty(lh: Lakehouse, schema: StructType) -> DataFrame:
    return lh.spark.createDataFrame([], schema)


def declared_bronze_schema(lh: Lakehouse, conf: TableConf) -> StructType:
    """The schema bronze ingestion gives a source's table: the bronze transformation over an empty read."""
    from pyspark.sql.types import StringType, StructField, StructType, TimestampType

    from pipelines.bronze.records import CORRUPT_COLUMN, bronze_records

    assert conf.source is not None
    source = lh.settings.sources[conf.source]
    metadata = StructType(
        [StructField("file_path", StringType()), StructField("file_modification_time", TimestampType())]
    )
    raw = StructType(
        [StructField(c, StringType()) for c in source.columns]
        + [StructField(CORRUPT_COLUMN, StringType()), StructField("_metadata", metadata)]
    )
    return bronze_records(_empty(lh, raw), source.columns, source.format, PLAN_RUN_ID).schema


def _columns_problems(name: str, conf: TableConf, schema: StructType) -> list[str]:
    if not conf.columns:
        return []
    where = f"{conf.declared_in or 'conf'}: table {name}"
    produced = [f.name for f in schema.fields]
    found = [
        f"{where}: declares column {c!r}, which the transform does not produce"
        for c in conf.columns
        if c not in produced
    ]
    found += [
        f"{where}: the transform produces column {c!r}, which is not declared (add it under columns: with a comment)"
        for c in produced
        if c not in conf.columns
    ]
    return found


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def analyse_table(
    lh: Lakehouse, name: str, conf: TableConf, inputs: dict[str, StructType]
) -> tuple[StructType | None, list[str]]:
    """(the schema ``name`` will be written with, problems): its transform applied to empty inputs."""
    from pyspark.sql import functions as F

    from pipelines.dq.engine import static_problems
    from pipelines.runner import _load_transform

    where = f"{conf.declared_in or 'conf'}: table {name}"
    assert conf.transform is not None
    try:
        transform = _load_transform(conf.transform)
    except ConfigError as exc:
        return None, [f"{where}: {exc}"]
    frames = {dep: protect(lh.settings, dep, _empty(lh, inputs[dep])) for dep in conf.inputs}
    try:
        df, _out = call_transform(transform, conf, frames, None, lh.settings)
        df = df.withColumn("_run_id", F.lit(PLAN_RUN_ID))
        schema = written_schema(df)
    except Exception as exc:
        return None, [f"{where}: transform {conf.transform} fails on empty inputs: {_first_line(exc)}"]
    return schema, _columns_problems(name, conf, schema) + static_problems(df, name, conf)


def incremental_problems(
    lh: Lakehouse, name: str, conf: TableConf, inputs: dict[str, StructType], schema: StructType
) -> list[str]:
    """The transform called as an incremental run calls it (empty ``changes``): it must give the columns of
    the full call (``schema``), and its replace column must be one of them."""
    import inspect

    from pyspark.sql import functions as F

    from pipelines.runner import _load_transform

    assert conf.transform is not None
    transform = _load_transform(conf.transform)
    if "changes" not in inspect.signature(transform).parameters:
        return []
    where = f"{conf.declared_in or 'conf'}: table {name}"
    frames = {dep: protect(lh.settings, dep, _empty(lh, inputs[dep])) for dep in conf.inputs}
    changes = {dep.partition(".")[2]: frames[dep] for dep in conf.inputs}
    try:
        inc, out = call_transform(transform, conf, frames, changes, lh.settings)
        incremental = written_schema(inc.withColumn("_run_id", F.lit(PLAN_RUN_ID)))
    except Exception as exc:
        return [f"{where}: transform {conf.transform} fails on empty changes: {_first_line(exc)}"]
    found = []
    change = schema_change(schema, incremental)
    if change is not None:
        found.append(f"{where}: the incremental call of {conf.transform} gives other columns: {change}")
    if out is not None and out.replace_values is not None:
        column = out.replace_column or out.replace_values.columns[0]
        if column not in schema.fieldNames():
            found.append(f"{where}: replace_column {column!r} is not an output column")
    return found


def _foreign_key_problems(settings: Settings, name: str, schemas: dict[str, StructType]) -> list[str]:
    conf = settings.tables[name]
    found = []
    for check in conf.expectations:
        ref = schemas.get(check.ref_table or "")
        if check.type == "foreign_key" and ref is not None and check.ref_column not in ref.fieldNames():
            found.append(
                f"{conf.declared_in or 'conf'}: table {name}, check {check.name!r}: "
                f"{check.ref_table} will have no column {check.ref_column!r}"
            )
    return found


# ---- bronze: landed files against what the bronze commits recorded ------------------------------------


def pending_files(lh: Lakehouse, name: str, conf: TableConf) -> tuple[int, int]:
    """(new, re-delivered) landed files of a bronze table, from its commits' file lists (no data read)."""
    import json

    from pipelines.lakehouse.ingest import FILES_KEY, list_landed

    assert conf.source is not None
    source = lh.settings.sources[conf.source]
    recorded: dict[str, set[tuple[int, int]]] = {}
    if lh.exists(name):
        for commit in lh.history(name):
            files = commit["custom"].get(FILES_KEY) or []
            for f in json.loads(files) if isinstance(files, str) else files:
                recorded.setdefault(f["name"], set()).add((int(f["size"]), int(f["modified_ms"])))
    new = redelivered = 0
    for f in list_landed(lh.settings.landing_dir, source):
        if f.name not in recorded:
            new += 1
        elif (f.size, f.modified_ms) not in recorded[f.name] and source.redelivery != "skip":
            redelivered += 1
    return new, redelivered


def _bronze_plan(lh: Lakehouse, name: str, conf: TableConf) -> TablePlan:
    if lh.settings.storage.ingest == "autoloader":
        return TablePlan(name, "ingest", ("Auto Loader finds the new landed files when the run starts",))
    if not lh.exists(name):
        new, _ = pending_files(lh, name, conf)
        return TablePlan(name, "build", (f"new table; {new} landed file(s)",))
    new, again = pending_files(lh, name, conf)
    if not new and not again:
        return TablePlan(name, "skip", ("no new landed file",))
    reasons = [f"{new} new landed file(s)"] if new else []
    reasons += [f"{again} re-delivered file(s)"] if again else []
    return TablePlan(name, "ingest", tuple(reasons))


# ---- the plan ------------------------------------------------------------------------------------------


def make_plan(lh: Lakehouse, selectors: Iterable[str] | None = None, full_refresh: bool = False) -> Plan:
    """Validate the whole graph and say what ``medallion run`` (with ``selectors``) would do per table."""
    started = time.perf_counter()
    settings = lh.settings
    problems = graph_problems(settings)
    if problems:
        return Plan((), tuple(problems), time.perf_counter() - started)
    chosen = select_tables(settings, selectors)
    everything = select_tables(settings, None)
    schemas: dict[str, StructType] = {}
    for name in everything:
        conf = settings.tables[name]
        if conf.source is not None:
            schemas[name] = lh.schema(name) if lh.exists(name) else declared_bronze_schema(lh, conf)
            continue
        if any(dep not in schemas for dep in conf.inputs):
            continue  # an input could not be analysed: its problem is already listed
        schema, found = analyse_table(lh, name, conf, {dep: schemas[dep] for dep in conf.inputs})
        problems += found
        if schema is not None:
            schemas[name] = schema
    for name in everything:
        problems += _foreign_key_problems(settings, name, schemas)

    plans: list[TablePlan] = []
    changing: dict[str, str] = {}  # table -> its action, for the tables that change before the next ones
    for name in chosen:
        conf = settings.tables[name]
        if conf.source is not None:
            plan = _bronze_plan(lh, name, conf)
        else:
            plan = _transform_plan(lh, name, conf, schemas.get(name), changing, full_refresh)
            if plan.action == "update" and name in schemas:
                # The incremental code path runs: analyse it too (its columns must be the full path's).
                inputs = {dep: schemas[dep] for dep in conf.inputs}
                problems += incremental_problems(lh, name, conf, inputs, schemas[name])
        if plan.changes:
            changing[name] = plan.action
        plans.append(plan)
    plans += _ml_plan(settings, chosen, changing, selectors)
    return Plan(tuple(plans), tuple(problems), time.perf_counter() - started)


def _transform_plan(
    lh: Lakehouse,
    name: str,
    conf: TableConf,
    schema: StructType | None,
    changing: dict[str, str],
    full_refresh: bool,
) -> TablePlan:
    try:
        current = table_fingerprint(lh.settings, conf)
    except ConfigError:
        return TablePlan(name, "skip", ("cannot be analysed (see problems)",))
    decision = decide(lh, name, full_refresh=full_refresh, upstream=changing, current=current)
    reasons = list(decision.reasons)
    action = decision.action
    if action != "build" and schema is not None:
        change = schema_change(lh.schema(name), schema)
        if change is not None:  # the run rebuilds a table whose output no longer fits it
            reasons.append(str(change))
            action = "rebuild"
    return TablePlan(name, action, tuple(reasons))


def _ml_plan(
    settings: Settings, chosen: Sequence[str], changing: dict[str, str], selectors: Iterable[str] | None
) -> list[TablePlan]:
    """The ML step of ``medallion run``: train and score follow when the feature table changes."""
    covers_gold = not list(selectors or []) or any(settings.tables[t].layer == "gold" for t in chosen)
    features, predictions = settings.ml.features_table, settings.ml.predictions_table
    if not covers_gold or predictions not in settings.tables:
        return []
    if features in changing:
        return [
            TablePlan(predictions, "score", (f"{features} changes: train on the new version, then score",))
        ]
    return [TablePlan(predictions, "skip", (f"{features} unchanged: train and score only if never done",))]


def plan_lines(plan: Plan) -> list[str]:
    """The plan as the CLI prints it."""
    lines = [f"{'table':<34} {'action':<8} why"]
    for t in plan.tables:
        lines.append(f"{t.table:<34} {t.action:<8} {'; '.join(t.reasons)}")
    todo = sum(1 for t in plan.tables if t.changes)
    lines.append(
        f"{todo} of {len(plan.tables)} table(s) would change; analysed without reading data in {plan.seconds:.1f} s"
    )
    if plan.problems:
        lines.append(f"the pipeline is invalid: {len(plan.problems)} problem(s)")
        lines += [f"  - {p}" for p in plan.problems]
    return lines
