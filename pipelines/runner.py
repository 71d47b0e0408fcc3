"""Runs the declared tables in dependency order.

The order comes from each table's declared inputs (a graph, not a hard-coded sequence). A selection can
name a table (``bronze.flights``), a layer (``bronze``), or a table and everything downstream of it
(``bronze.flights+``).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.config import LAYERS, Settings, TableConf
from pipelines.errors import ConfigError, UsageError
from pipelines.faults import crash_point
from pipelines.fingerprint import KEY as FINGERPRINT_KEY
from pipelines.fingerprint import Fingerprint, fingerprint, load_transform
from pipelines.lakehouse import Lakehouse, MergeSpec, WriteResult
from pipelines.lakehouse.base import NON_DATA_OPERATIONS, with_comments
from pipelines.outputs import TableOutput

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipelines.dq.engine import TableChecks


@dataclass(frozen=True)
class StepResult:
    table: str
    status: str  # "ok" (written), "skipped" (nothing to do), "failed"
    rows_read: int | None
    rows_written: int
    seconds: float
    version: int | None
    detail: str = ""
    # Why the step ran (or was skipped): new input commits, transform changed, ... (the event log keeps it).
    reason: str = ""
    error: str = ""  # the error class of a failed step
    # Landed files this step did not ingest ("name: why"; bronze.rejected_files), and notes on those it did.
    rejected: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


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
    """The tables ``medallion run`` builds for ``selectors``, in dependency order. System tables (DQ results,
    event log, ...) are written by the parts that own them, never selected."""
    order = [n for n in topological_order(settings) if settings.tables[n].built_by_runner]
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
        elif sel in settings.tables and not settings.tables[sel].built_by_runner:
            raise UsageError(
                f"--select {sel!r}: a system table ({settings.tables[sel].system}), written by the pipeline "
                "itself, not built by a transform; select the tables that feed it"
            )
        elif sel in settings.tables:
            chosen.add(sel)
        else:
            from difflib import get_close_matches

            close = get_close_matches(sel, [*settings.tables, *LAYERS], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"--select {sel!r} names no table or layer{hint} (tables: {', '.join(order)})")
    return [n for n in order if n in chosen]


def _load_transform(path: str) -> Callable[..., object]:
    try:
        return load_transform(path)
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
RUN_KEY = "medallion.run_id"
# Marks the commit of a rebuild (changed fingerprint or schema): downstream tables then read all its rows.
REBUILT_KEY = "medallion.rebuilt"


@dataclass(frozen=True)
class LastBuild:
    """What the table's last pipeline build recorded in its commit."""

    version: int
    run_id: str
    inputs: dict[str, int] | None
    fingerprint: Fingerprint | None


def last_build(lh: Lakehouse, name: str) -> LastBuild | None:
    """The newest commit of a runner build (it carries the input versions); None: never built by the runner.

    Backfills and maintenance do not record input versions, so they never count as a build."""
    found = builds(lh, name, limit=1)
    return found[0] if found else None


def builds(lh: Lakehouse, name: str, limit: int = 2) -> list[LastBuild]:
    """The newest ``limit`` runner builds of the table, newest first (see :func:`last_build`)."""
    import json

    found: list[LastBuild] = []
    if not lh.exists(name):
        return found
    for commit in lh.history(name):
        raw = commit["custom"].get(INPUTS_KEY)
        if not raw:
            continue
        try:
            inputs: dict[str, int] | None = {str(k): int(v) for k, v in json.loads(raw).items()}
        except (ValueError, TypeError, AttributeError):
            inputs = None
        found.append(
            LastBuild(
                int(commit["version"]),
                str(commit["custom"].get(RUN_KEY, "")),
                inputs,
                Fingerprint.from_json(commit["custom"].get(FINGERPRINT_KEY)),
            )
        )
        if len(found) >= limit:
            break
    return found


def incomplete_build(lh: Lakehouse, name: str, conf: TableConf) -> LastBuild | None:
    """The table's last build when its data-quality results never reached the DQ results table: the run
    died after the table's commit and before its quarantine rows and DQ results were all written (they are
    written after it, since they name the version it made). None: the last build is complete."""
    if not conf.expectations:
        return None
    newest = builds(lh, name, limit=1)
    if not newest:
        return None
    if (name, newest[0].version) in recorded_checks(lh):
        return None
    return newest[0]


# What a run knows of the DQ results table: the (table, version) pairs it holds results for, as of one of its
# versions. Kept on the Lakehouse, so the tables of a run ask it once per version of the DQ results table (a
# no-op run: once in all) instead of once per table; read again whenever that version is not the one known.
_CHECKS_MEMO = "_recorded_check_pairs"


@dataclass(frozen=True)
class _RecordedChecks:
    version: int
    pairs: frozenset[tuple[str, int]]


def recorded_checks(lh: Lakehouse) -> frozenset[tuple[str, int]]:
    """Every (table name, table version) the DQ results table holds a result for, at its current version."""
    dq_table = lh.settings.system_table("dq_results")
    version = lh.version(dq_table) if lh.exists(dq_table) else None
    if version is None:
        return frozenset()
    memo: _RecordedChecks | None = getattr(lh, _CHECKS_MEMO, None)
    if memo is not None and memo.version == version:
        return memo.pairs
    pairs = frozenset(
        (str(r[0]), int(r[1]))
        for r in lh.read_rows(dq_table, ("table_name", "table_version"), version)
        if r[0] is not None and r[1] is not None
    )
    setattr(lh, _CHECKS_MEMO, _RecordedChecks(version, pairs))
    return pairs


def _redo_incomplete(lh: Lakehouse, name: str, build: LastBuild) -> dict[str, int] | None:
    """Undo what the dead build left beside its table commit (its quarantine rows, found by its run id), and
    return the input versions of the build before it: the redo reads the dead build's batch again (a MERGE
    or a replaceWhere of the same rows changes nothing; the quarantine rows and DQ results are written)."""
    from pipelines.system import quarantine_name

    quarantine = quarantine_name(name)
    if build.run_id and lh.exists(quarantine):
        quoted = build.run_id.replace("\\", "\\\\").replace("'", "\\'")
        lh.delete(quarantine, f"run_id = '{quoted}'")
    before = builds(lh, name, limit=2)
    return before[1].inputs if len(before) > 1 else None


def _last_inputs(lh: Lakehouse, name: str) -> dict[str, int] | None:
    """Input versions recorded by the table's last pipeline write (None: never built, or unknown)."""
    build = last_build(lh, name)
    return None if build is None else build.inputs


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
    if any(c["custom"].get(REBUILT_KEY) for c in commits):
        return None  # a rebuild may have removed rows: the changed rows alone would not say which
    run_ids = sorted({str(c["custom"]["medallion.run_id"]) for c in commits})
    return df.where(F.col("_run_id").isin(run_ids))


def _input_changed(lh: Lakehouse, dep: str, since: int, now: int) -> bool:
    """Did anything but maintenance (OPTIMIZE, VACUUM, comments) commit to ``dep`` after version ``since``?"""
    return bool(_data_commits(lh, dep, since, now))


@dataclass(frozen=True)
class Decision:
    """What a run does with a table, and why.

    ``build``: the table does not exist; ``rebuild``: its transform, declaration or checks changed (or its
    output schema): every row is recomputed from all input rows and the whole table is replaced (schema too);
    ``reread``: ``--full-refresh``: all input rows are read, the table is written as declared (a MERGE still
    rewrites only rows that changed); ``update``: only input rows written since the last build are read;
    ``skip``: nothing changed."""

    action: str
    reasons: tuple[str, ...]

    @property
    def full(self) -> bool:
        return self.action in ("build", "rebuild", "reread")

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def table_fingerprint(settings: Settings, conf: TableConf) -> Fingerprint:
    from pipelines.sensitive import fingerprint_part

    name = next((n for n, t in settings.tables.items() if t is conf), None)
    sensitive = "" if name is None or conf.layer == "bronze" else fingerprint_part(settings, name)
    try:
        return fingerprint(conf, settings.sources.get(conf.source) if conf.source else None, sensitive)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"transform {conf.transform!r} cannot be imported: {exc}") from None


def decide(
    lh: Lakehouse,
    name: str,
    *,
    full_refresh: bool = False,
    upstream: Iterable[str] | Mapping[str, str] = (),
    current: Fingerprint | None = None,
) -> Decision:
    """What ``medallion run`` would do with the transform table ``name`` now. ``upstream``: inputs that will
    change before it runs (the plan's view; a mapping gives each one's action); ``current``: the fingerprint,
    when already computed."""
    settings = lh.settings
    conf = settings.table(name)
    build = last_build(lh, name)
    if not lh.exists(name):
        return Decision("build", ("new table",))
    current = current or table_fingerprint(settings, conf)
    changed = current.changes(build.fingerprint if build else None)
    if build is None:
        changed = ["no build by the pipeline recorded (no input versions in its commits)"]
    if changed:
        return Decision("rebuild", tuple(changed))
    if full_refresh:
        return Decision("reread", ("--full-refresh",))
    assert build is not None
    reasons = []
    coming = upstream if isinstance(upstream, Mapping) else dict.fromkeys(upstream, "update")
    for dep in conf.inputs:
        if coming.get(dep) in ("build", "rebuild"):
            reasons.append(f"{dep} is rebuilt first: all its rows are read")
            continue
        if dep in coming:
            reasons.append(f"{dep} may change first")
            continue
        now = lh.version(dep)
        if now is None:
            continue
        if build.inputs is None or dep not in build.inputs:
            reasons.append(f"new input {dep}")
            continue
        commits = _data_commits(lh, dep, build.inputs[dep], now)
        if any(c["custom"].get(REBUILT_KEY) for c in commits):
            reasons.append(f"{dep} was rebuilt: all its rows are read")
        elif commits:
            reasons.append(f"{len(commits)} new commit(s) in {dep}")
    if reasons:
        return Decision("update", tuple(reasons))
    return Decision("skip", ("inputs unchanged",))


def written_schema(df: DataFrame) -> Any:
    """The schema a batch is written with: without the in-flight ``__`` columns."""
    from pyspark.sql.types import StructType

    return StructType([f for f in df.schema.fields if not f.name.startswith("__")])


@dataclass(frozen=True)
class SchemaChange:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    retyped: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "breaking" if self.removed or self.retyped else "additive"

    def __str__(self) -> str:
        parts = [f"+{c}" for c in self.added] + [f"-{c}" for c in self.removed] + list(self.retyped)
        return f"schema change ({self.kind}): {', '.join(parts)}"


def schema_change(stored: Any, new: Any) -> SchemaChange | None:
    """How ``new`` differs from ``stored`` (names and types; nullability and comments do not count)."""
    old = {f.name: f.dataType.simpleString() for f in stored.fields}
    now = {f.name: f.dataType.simpleString() for f in new.fields}
    added = tuple(c for c in now if c not in old)
    removed = tuple(c for c in old if c not in now)
    retyped = tuple(f"{c} {old[c]} -> {now[c]}" for c in now if c in old and old[c] != now[c])
    return SchemaChange(added, removed, retyped) if added or removed or retyped else None


def call_transform(
    transform: Callable[..., object],
    conf: TableConf,
    frames: Mapping[str, DataFrame],
    changes: Mapping[str, DataFrame | None] | None,
    settings: Settings | None = None,
) -> tuple[DataFrame, TableOutput | None]:
    """Call ``transform`` with one keyword per input (and ``changes`` when it takes it); (df, TableOutput).
    The table's own sensitive columns (``sensitive:`` of its declaration) are treated in the result."""
    import inspect

    from pipelines.sensitive import treat

    kwargs: dict[str, object] = {dep.partition(".")[2]: frames[dep] for dep in conf.inputs}
    if "changes" in inspect.signature(transform).parameters:
        kwargs["changes"] = changes
    out = transform(**kwargs)
    df: DataFrame = out.df if isinstance(out, TableOutput) else out  # type: ignore[assignment]
    if conf.sensitive:
        if settings is None:
            raise TypeError("call_transform: a table with sensitive columns needs the settings (for the key)")
        df = treat(df, conf.sensitive, settings)
        if isinstance(out, TableOutput):
            out = dataclasses.replace(out, df=df)
    return (df, out) if isinstance(out, TableOutput) else (df, None)


def _replace_where(out: TableOutput | None) -> str | None:
    if out is None:
        return None
    if out.replace_values is not None:
        column = out.replace_column or out.replace_values.columns[0]
        values = [r[0] for r in out.replace_values.distinct().collect()]
        return replace_predicate(column, values)
    return out.replace_where


def run_table(lh: Lakehouse, name: str, run_id: str, full_refresh: bool = False) -> StepResult:
    """Build one table: ingest for bronze, otherwise read inputs -> transform -> checks -> write as declared.

    A transform is called with one DataFrame per input (keyword = the input's short name, each read at the
    version current when the step starts). If it also takes a ``changes`` argument, it gets, per input, only
    the rows written since this table was last built (by ``_run_id``), or None when every row is to be read
    (new table, ``full_refresh``, changed fingerprint): incremental tables transform what is new and MERGE
    or replace it. A table whose inputs and fingerprint did not change since its last build is skipped.
    See :class:`Decision` for what each case writes.
    """
    import json

    settings = lh.settings
    conf = settings.table(name)
    started = time.perf_counter()
    if not conf.built_by_runner:
        raise UsageError(f"{name} is a system table ({conf.system}): medallion run does not build it")
    if conf.source is not None:
        return _ingest(lh, name, conf, run_id, started)
    assert conf.transform is not None
    transform = _load_transform(conf.transform)
    missing = [dep for dep in conf.inputs if not lh.exists(dep)]
    if missing:
        raise UsageError(
            f"{name}: input table(s) {', '.join(missing)} not built yet; "
            f"run `medallion run --select {missing[0]}+` first"
        )
    versions = {dep: lh.version(dep) for dep in conf.inputs}
    current = table_fingerprint(settings, conf)
    decision = decide(lh, name, full_refresh=full_refresh, current=current)
    dead = incomplete_build(lh, name, conf) if decision.action in ("skip", "update") else None
    redo_inputs: dict[str, int] | None = None
    if dead is not None:
        redo_inputs = _redo_incomplete(lh, name, dead)
        why = f"run {dead.run_id} wrote version {dead.version} but not its data-quality results: redone"
        decision = Decision("reread" if redo_inputs is None else "update", (*decision.reasons, why))
    if decision.action == "skip":
        update_comments(lh, name, conf)
        return StepResult(
            name, "skipped", 0, 0, time.perf_counter() - started, lh.version(name), "inputs unchanged",
            decision.reason,
        )  # fmt: skip
    frames = {dep: lh.read_treated(dep, versions[dep]) for dep in conf.inputs}
    last = None if decision.full else (redo_inputs if dead is not None else _last_inputs(lh, name))
    changes = None
    if last is not None:
        changes = {
            dep.partition(".")[2]: (
                None
                if dep not in last or versions[dep] is None
                else _changes_since(lh, dep, last[dep], versions[dep] or 0, frames[dep])
            )
            for dep in conf.inputs
        }
    from pyspark.sql import functions as F

    df, out = call_transform(transform, conf, frames, changes, settings)
    # Every table row carries the run that last wrote it: downstream tables read their changes by it.
    df = df.withColumn("_run_id", F.lit(run_id))
    if decision.action in ("update", "reread"):
        change = schema_change(lh.schema(name), written_schema(df))
        if change is not None:  # the output no longer fits the table: rebuild it whole
            decision = Decision("rebuild", (*decision.reasons, str(change)))
            df, out = call_transform(transform, conf, frames, None, settings)
            df = df.withColumn("_run_id", F.lit(run_id))
    replace_where = None if decision.action == "rebuild" else _replace_where(out)
    commit = {
        RUN_KEY: run_id,
        INPUTS_KEY: json.dumps(versions, sort_keys=True),
        FINGERPRINT_KEY: current.as_json(),
    }
    if decision.action == "rebuild":
        commit[REBUILT_KEY] = decision.reason

    def write(to_write: DataFrame) -> WriteResult:
        if decision.action == "rebuild":  # whole table, schema and all, whatever the declared write mode
            return lh.write(
                to_write, name, "overwrite", partition_by=conf.write.partition_by, overwrite_schema=True,
                description=conf.description, commit_info=commit,
            )  # fmt: skip
        if conf.write.mode == "merge" and lh.exists(name):
            spec = MergeSpec(keys=conf.write.keys, update_condition=conf.write.update_condition)
            return lh.merge(to_write, name, spec, commit_info=commit)
        return lh.write(
            to_write,
            name,
            "overwrite" if conf.write.mode == "merge" else conf.write.mode,
            partition_by=conf.write.partition_by,
            replace_where=replace_where,
            description=conf.description,
            commit_info=commit,
        )

    written = check_and_write(lh, name, conf, df, run_id, write)
    detail = written.detail
    if decision.action == "rebuild":
        detail = f"rebuilt ({decision.reason}); {detail}"
    return StepResult(
        name,
        "ok",
        None,
        written.rows(replaced=replace_where is not None),
        time.perf_counter() - started,
        written.result.version,
        detail.strip("; "),
        decision.reason,
    )


def _ingest(lh: Lakehouse, name: str, conf: TableConf, run_id: str, started: float) -> StepResult:
    from pipelines.lakehouse.ingest import ingest_function

    settings = lh.settings
    assert conf.source is not None
    ingest = ingest_function(settings)  # storage.ingest: manifest (anywhere) or autoloader (Databricks)
    res = ingest(lh, name, conf, conf.source, settings.sources[conf.source], run_id)
    files = res.files_new + res.files_redelivered
    detail = f"{files} file(s) ingested, {res.files_skipped} already in"
    if res.files_redelivered:
        detail += f", {res.files_redelivered} re-delivered"
    if res.rejected:
        detail += f", {len(res.rejected)} rejected"
    return StepResult(
        name,
        "ok" if files else "skipped",
        res.rows_written,
        res.rows_written,
        time.perf_counter() - started,
        res.version,
        detail,
        f"{files} landed file(s) new or re-delivered" if files else "no new landed file",
        rejected=res.rejected,
        notes=res.notes,
    )


@dataclass(frozen=True)
class Written:
    """What :func:`check_and_write` did: the write's result, the one-line check summary, and the rows of the
    batch that were written (known when the table has checks: a replaceWhere write on the offline engine
    also rewrites the other rows of the files it touches, which its own count includes)."""

    result: WriteResult
    detail: str
    batch_rows: int | None

    def rows(self, replaced: bool) -> int:
        if replaced and self.batch_rows is not None:
            return self.batch_rows
        return self.result.rows_written + self.result.rows_updated


def check_and_write(
    lh: Lakehouse,
    name: str,
    conf: TableConf,
    df: DataFrame,
    run_id: str,
    write: Callable[[DataFrame], WriteResult],
) -> Written:
    """The table's checks on ``df``, then ``write`` (the rows that passed), quarantine and DQ results, then
    the declared comments."""
    from pipelines.dq.engine import TableChecks

    checks = TableChecks(lh, name, conf, run_id)
    try:
        return _check_and_write(lh, name, conf, df, write, checks)
    finally:
        checks.release()


def _check_and_write(
    lh: Lakehouse,
    name: str,
    conf: TableConf,
    df: DataFrame,
    write: Callable[[DataFrame], WriteResult],
    checks: TableChecks,
) -> Written:
    from pipelines.dq.engine import IN_FLIGHT_PREFIX, describe

    prepared = checks.prepare(df)
    checks.run_dataset_checks(df)
    to_write = prepared.kept
    in_flight = [c for c in to_write.columns if c.startswith(IN_FLIGHT_PREFIX)]
    if in_flight:
        to_write = to_write.drop(*in_flight)
    # Column comments travel in the schema, so a new table is created documented in one commit.
    to_write = with_comments(to_write, conf.columns)
    # A table this write creates gets its description and column comments in its first commit.
    documented_by_create = not lh.exists(name) and all(c in to_write.columns for c in conf.columns)
    try:
        result = write(to_write)
    except Exception as exc:
        dq_error = checks.failed_write(exc)
        if dq_error is not None:
            raise dq_error from None
        raise
    crash_point("table.committed")
    outcomes = checks.finish(result.version)
    if not documented_by_create:  # a commit only where the table's comments differ from the declared ones
        update_comments(lh, name, conf)
    detail = describe([*outcomes, *checks.dataset_outcomes])
    if checks.quarantined:
        detail += f"; {checks.quarantined:,} quarantined"
    if result.rows_updated:
        detail = f"{result.rows_updated:,} updated; " + detail
    checked = max((o.rows_checked for o in [*outcomes, *checks.dataset_outcomes]), default=None)
    kept = None if checked is None else checked - checks.quarantined - checks.dropped
    return Written(result, detail, kept)


def update_comments(lh: Lakehouse, name: str, conf: TableConf) -> bool:
    """Apply the declared description and column comments when the table's differ (no data is written)."""
    if not (conf.columns or conf.description):
        return False
    fields = {f.name: f.metadata.get("comment") for f in lh.schema(name).fields}
    stale = {c: text for c, text in conf.columns.items() if c in fields and fields[c] != text}
    described = lh.properties(name).get("comment", "") == conf.description
    if not stale and described:
        return False
    lh.set_comments(name, None if described else conf.description, stale or None)
    return True


def run_pipeline(
    lh: Lakehouse,
    tables: Sequence[str],
    run_id: str,
    on_step: Callable[[StepResult], None] | None = None,
    full_refresh: bool = False,
) -> list[StepResult]:
    """Run ``tables`` in order; stops at the first failure (its exception propagates). Every step leaves a
    row in the event log (``system: pipeline_events``), the failed one too."""
    from pipelines.events import EventLog

    return EventLog(lh, run_id, "run").run(
        tables, lambda name: run_table_retrying(lh, name, run_id, full_refresh=full_refresh), on_step
    )


def run_table_retrying(
    lh: Lakehouse, name: str, run_id: str, full_refresh: bool = False, attempts: int = 3
) -> StepResult:
    """:func:`run_table`, again when another writer's commit conflicted with this one's (nothing of it was
    committed, and a step reads its inputs afresh: safe to redo). Other failures propagate at once."""
    from pipelines.errors import ConcurrentCommitError

    for attempt in range(1, attempts + 1):
        try:
            return run_table(lh, name, run_id, full_refresh=full_refresh)
        except ConcurrentCommitError:
            if attempt == attempts:
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def identity(**inputs: DataFrame) -> DataFrame:
    """A transform that passes its single input through (checks and write settings still apply)."""
    if len(inputs) != 1:
        raise ConfigError(
            f"the identity transform takes exactly one input, got {', '.join(inputs) or 'none'}"
        )
    return next(iter(inputs.values()))
