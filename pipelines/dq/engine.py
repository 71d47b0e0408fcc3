"""The data-quality engine: a table's checks applied to the batch it is about to write.

How a batch goes through (see :func:`pipelines.runner.run_table`):

1. :meth:`TableChecks.prepare` compiles every row check to one boolean Column (``foreign_key`` becomes a
   broadcast lookup of the reference keys), adds ``_dq_failed`` (the names of the checks a row failed) in ONE
   projection, turns a ``fail`` check into ``raise_error`` inside that projection, and attaches an
   ``Observation`` that counts the failures of every check while the write runs. Nothing is read here: column
   names and SQL expressions are checked by Spark's analyser only.
2. Dataset checks (unique, row_count, row_count_drift, freshness) are judged in the same pass: a unique check
   is a ``row_number`` over its key (copies after the first are its surplus; a ``fail``-level one aborts the
   write job like a fail row check), counts and freshness come from the Observation. Only a ``fail``-level
   row_count, row_count_drift or freshness check needs its verdict before anything is committed: then
   :meth:`TableChecks.run_dataset_checks` judges every dataset check in one aggregate over the batch, which is
   kept (memory, spilling to disk) for the write, and a failed ``fail`` check stops there.
3. The runner writes :attr:`Prepared.kept` (rows that failed no ``drop`` or ``quarantine`` check). The same
   pass feeds the Observation, so the row checks cost no extra scan of the data.
4. :meth:`TableChecks.finish` writes the quarantined rows (only when there are some) to
   ``<layer>.<table>_quarantine`` and appends one row per check to the DQ results table.

A ``fail`` check that trips during the write aborts the write job (nothing is committed; the table stays at its
previous version); :meth:`TableChecks.failed_write` then counts the failures, records them and raises
:class:`~pipelines.errors.DataQualityError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.dq.spec import CHECK_TYPES, check_columns
from pipelines.errors import ConfigError, DataQualityError
from pipelines.faults import crash_point
from pipelines.lakehouse.base import with_comments
from pipelines.system import quarantine_name

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from pipelines.config import ExpectationConf, TableConf
    from pipelines.lakehouse import Lakehouse

FAILED_COLUMN = "_dq_failed"
# Quarantined rows as JSON keep timestamps to the microsecond (Spark's default format stops at the millisecond,
# and the audit matches a quarantined row to its bronze row by value).
JSON_OPTIONS = {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"}

# In-flight columns (names starting with "__") are visible to checks and never written. __source_record, a
# struct a transform may keep with the row as it arrived, is written to quarantine only.
IN_FLIGHT_PREFIX = "__"
SOURCE_RECORD = "__source_record"
# A foreign key whose reference has at most this many keys is checked against a literal set (no join).
FK_LITERAL_MAX = 100_000
FAIL_MARKER = "[medallion-dq-fail]"


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _in_list(column: str, values: list[Any]) -> str:
    if not values:
        return "false"
    return f"`{column}` IN ({', '.join(_sql_literal(v) for v in values)})"


@dataclass
class Outcome:
    check: ExpectationConf
    rows_checked: int
    rows_failed: int
    details: str = ""

    @property
    def passed(self) -> bool:
        return self.rows_failed == 0


@dataclass
class Prepared:
    """The batch split for writing: ``kept`` goes to the table."""

    kept: DataFrame
    flagged: DataFrame | None
    observation: Any = None
    outcomes: list[Outcome] = field(default_factory=list)


def static_problems(
    df: DataFrame, table_name: str, conf: TableConf, columns: list[str] | None = None
) -> list[str]:
    """What stops the table's checks from applying to batches shaped like ``df``: a column a check names is
    missing, an expression does not analyse. Analysis only (no data is read; ``df`` may be empty)."""
    from pyspark.sql import functions as F

    columns = df.columns if columns is None else columns
    where = f"{conf.declared_in or 'conf'}: table {table_name}"
    found = []
    for check in conf.expectations:
        missing = [c for c in check_columns(check) if c not in columns]
        if missing:
            found.append(
                f"{where}, check {check.name!r}: the batch has no column {missing[0]!r} "
                f"(columns: {', '.join(c for c in columns if not c.startswith('__'))})"
            )
    exprs = [c for c in conf.expectations if c.type == "expression"]
    try:  # all at once; one by one only to name the culprits
        df.select(*[F.expr(c.expr or "") for c in exprs])
        return found
    except Exception:
        pass
    for check in exprs:
        try:
            df.select(F.expr(check.expr or ""))
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            found.append(f"{where}, check {check.name!r}: expr {check.expr!r} does not apply: {first}")
    return found


class TableChecks:
    """The checks of one table for one run."""

    def __init__(self, lh: Lakehouse, table_name: str, conf: TableConf, run_id: str) -> None:
        self.lh = lh
        self.table_name = table_name
        self.conf = conf
        self.run_id = run_id
        self.row_checks = [c for c in conf.expectations if CHECK_TYPES[c.type].row_level]
        self.dataset_checks = [c for c in conf.expectations if not CHECK_TYPES[c.type].row_level]
        # Dataset checks judged in the write pass, from its Observation: unique (a row_number over the key
        # marks the surplus copies; a fail-level one aborts the write job like a fail row check) and
        # warn-level counts and freshness (judged once the pass is done). A fail-level row_count,
        # row_count_drift or freshness must be judged before anything is committed: then every dataset
        # check runs as one aggregate over the batch, kept for the write (see :meth:`run_dataset_checks`).
        before = [c for c in self.dataset_checks if c.type != "unique" and c.action == "fail"]
        self.in_pass = [] if before else list(self.dataset_checks)
        self.prepared: Prepared | None = None
        self._batch: DataFrame | None = None
        self._persisted: DataFrame | None = None
        self.dataset_outcomes: list[Outcome] = []
        self.quarantined = 0
        self.dropped = 0

    def _where(self, check: ExpectationConf) -> str:
        return f"{self.conf.declared_in or 'conf'}: table {self.table_name}, check {check.name!r}"

    # ---- compile ------------------------------------------------------------------------------------

    def _passes(self, df: DataFrame, check: ExpectationConf) -> tuple[DataFrame, Column]:
        """(df, Column true when a row passes ``check``); foreign keys add a lookup column to df."""
        from pyspark.sql import functions as F

        col = F.col(check.column) if check.column else None
        if check.type == "not_null":
            assert col is not None
            return df, col.isNotNull()
        if check.type == "between":
            assert col is not None
            cond = F.lit(True)
            if check.min is not None:
                cond = cond & (col >= F.lit(check.min))
            if check.max is not None:
                cond = cond & (col <= F.lit(check.max))
            return df, col.isNull() | cond
        if check.type == "in_set":
            assert col is not None
            return df, col.isNull() | col.isin(list(check.values))
        if check.type == "regex":
            assert col is not None
            return df, col.isNull() | col.cast("string").rlike(check.pattern or "")
        if check.type == "expression":
            # A null result counts as a failure: the expression could not vouch for the row.
            return df, F.coalesce(F.expr(check.expr or "").cast("boolean"), F.lit(False))
        if check.type == "foreign_key":
            assert col is not None and check.ref_table and check.ref_column
            if not self.lh.exists(check.ref_table):
                raise DataQualityError(
                    f"{self._where(check)}: the reference table {check.ref_table} is not built yet; "
                    f"build it first (medallion run --select {check.ref_table})"
                )
            small = self.lh.distinct_values(check.ref_table, check.ref_column, FK_LITERAL_MAX)
            if small is not None:
                # A hash-set lookup inside the projection: no join, no extra pass over the batch. Built as one
                # SQL expression: Column.isin() would cost one JVM round trip per value.
                return df, col.isNull() | F.expr(_in_list(check.column or "", small))
            found = f"__fk_{check.name}"
            keys = (
                self.lh.read_treated(check.ref_table)
                .select(F.col(check.ref_column).alias(found))
                .where(F.col(found).isNotNull())
                .distinct()
            )
            joined = df.join(F.broadcast(keys), col == F.col(found), "left")
            return joined, col.isNull() | F.col(found).isNotNull()
        raise AssertionError(check.type)  # pragma: no cover (spec validation rejects other types)

    def prepare(self, df: DataFrame) -> Prepared:
        """Flag every row with the checks it fails (one projection) and split off the rows to keep."""
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        columns = df.columns  # analyses the plan: once (each df.columns call costs an analysis)
        problems = static_problems(df, self.table_name, self.conf, columns)
        if problems:
            raise ConfigError(problems[0])
        self._input_df = df
        original_columns = [c for c in columns if not c.startswith(IN_FLIGHT_PREFIX)]
        # The write pass never touches __source_record, so Spark prunes it; the quarantine pass (only when a
        # row is quarantined) computes the same flags over the batch with it.
        with_source = df
        df = df.drop(SOURCE_RECORD) if SOURCE_RECORD in columns else df
        if self.dataset_checks and not self.in_pass:
            # The dataset checks aggregate over the batch before the write, and the write computes it again:
            # kept once (memory, spilling to disk), the transform (joins, UDFs, deduplication) runs once, and
            # the checks judge exactly the rows the write then writes. Released by :meth:`release`.
            from pyspark import StorageLevel

            df = df.persist(StorageLevel.MEMORY_AND_DISK)
            self._persisted = df
        self._batch = df
        if not self.row_checks and not self.in_pass:
            self.prepared = Prepared(kept=df.select(*original_columns), flagged=None)
            return self.prepared
        df, surplus = self._surplus_flags(df)

        # One boolean column per check; the write pass needs no arrays: counts are sums in an Observation on
        # this pass, and the filter is an OR of the removing checks.
        oks = []
        for i, check in enumerate(self.row_checks):
            df, passes = self._passes(df, check)
            oks.append(F.coalesce(passes, F.lit(False)).alias(f"__ok{i}"))
        # An in-flight column a freshness check judges stays for the Observation (it is never written).
        judged = [
            c.column
            for c in self.in_pass
            if c.type == "freshness" and c.column and c.column not in original_columns
        ]
        flagged = df.select(*original_columns, *judged, *oks, *[F.col(c) for c in surplus.values()])
        ok = {c.name: F.col(f"__ok{i}") for i, c in enumerate(self.row_checks)}

        def any_failed(names: list[str]) -> Column:
            cond = F.lit(False)
            for n in names:
                cond = cond | ~ok[n]
            return cond

        removing = [c.name for c in self.row_checks if c.action in ("drop", "quarantine")]
        quarantining = [c.name for c in self.row_checks if c.action == "quarantine"]
        dropping = [c.name for c in self.row_checks if c.action == "drop"]
        fail_names = [c.name for c in self.row_checks if c.action == "fail"]
        fail_unique = [c.name for c in self.in_pass if c.type == "unique" and c.action == "fail"]

        observation = Observation(f"dq_{self.table_name}_{int(time.time() * 1000)}")
        metrics = [F.count(F.lit(1)).alias("__rows")]
        metrics += [F.sum((~ok[c.name]).cast("long")).alias(c.name) for c in self.row_checks]
        metrics.append(F.sum(any_failed(quarantining).cast("long")).alias("__quarantined"))
        metrics.append(
            F.sum((any_failed(dropping) & ~any_failed(quarantining)).cast("long")).alias("__dropped")
        )
        for check in self.in_pass:
            if check.type == "unique":
                metrics.append(
                    F.sum(F.col(surplus[check.name]).cast("long")).alias(f"__surplus_{check.name}")
                )
            elif check.type == "freshness":
                metrics.append(F.max(F.col(check.column or "")).alias(f"__newest_{check.name}"))
        if fail_names or fail_unique:
            # Evaluated for every row by the Observation: the first row failing a fail check (or repeating a
            # key a fail-level unique check guards) aborts the job, so nothing is committed.
            tripped = any_failed(fail_names)
            for name in fail_unique:
                tripped = tripped | F.col(surplus[name])
            message = F.concat(
                F.lit(f"{FAIL_MARKER} {self.table_name}: a row failed "),
                F.concat_ws(
                    ", ",
                    *[F.when(~ok[n], F.lit(n)) for n in fail_names],
                    *[F.when(F.col(surplus[n]), F.lit(n)) for n in fail_unique],
                ),
            )
            guard = F.when(tripped, F.raise_error(message)).otherwise(F.lit(0)).cast("long")
            metrics.append(F.sum(guard).alias("__guard"))
        observed = flagged.observe(observation, *metrics)
        kept = observed.where(~any_failed(removing)).select(*original_columns)
        self._quarantine_source = with_source
        self._quarantine_filter = (
            F.arrays_overlap(F.col(FAILED_COLUMN), F.array(*[F.lit(n) for n in quarantining]))
            if quarantining
            else F.lit(False)
        )
        self.prepared = Prepared(kept=kept, flagged=flagged, observation=observation)
        return self.prepared

    def _surplus_flags(self, df: DataFrame) -> tuple[DataFrame, dict[str, str]]:
        """``df`` with a boolean column per in-pass unique check, true on every copy of a complete key after
        its first (so their sum is the check's surplus); {check name: column}."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        columns = {}
        for i, check in enumerate(c for c in self.in_pass if c.type == "unique"):
            complete = F.lit(True)
            for c in check.columns:
                complete = complete & F.col(c).isNotNull()
            window = Window.partitionBy(*check.columns).orderBy(*check.columns)
            name = f"__dq_surplus{i}"
            df = df.withColumn(name, complete & (F.row_number().over(window) > 1))
            columns[check.name] = name
        return df, columns

    # ---- dataset checks (before the write) ----------------------------------------------------------

    def _previous_rows(self, check: ExpectationConf) -> int | None:
        results = self.lh.settings.system_table("dq_results")
        if not self.lh.exists(results):
            return None
        rows = [
            r
            for r in self.lh.read_rows(
                results,
                ("run_id", "checked_at", "rows_checked"),
                where=[{"table_name": self.table_name, "check_name": check.name}],
            )
            if r[0] != self.run_id and r[1] is not None and r[2] is not None
        ]
        return None if not rows else int(max(rows, key=lambda r: r[1])[2])  # the latest other run's

    def _aggregate_dataset_checks(self, source: DataFrame) -> list[Outcome]:
        """Every dataset check judged by one aggregate over ``source``."""
        from pyspark.sql import functions as F

        aggs = [F.count(F.lit(1)).alias("__rows")]
        for check in self.dataset_checks:
            if check.type == "unique":
                # Like SQL UNIQUE, rows with a null in the key are not compared (not_null checks judge them).
                complete = F.lit(True)
                for c in check.columns:
                    complete = complete & F.col(c).isNotNull()
                aggs.append(F.count(F.when(complete, 1)).alias(f"__n_{check.name}"))
                aggs.append(F.count_distinct(F.when(complete, F.struct(*check.columns))).alias(check.name))
            elif check.type == "freshness":
                aggs.append(F.max(F.col(check.column or "")).alias(check.name))
        stats = source.agg(*aggs).first()
        assert stats is not None
        return self._dataset_outcomes(
            int(stats["__rows"]),
            {
                c.name: int(stats[f"__n_{c.name}"]) - int(stats[c.name])
                for c in self.dataset_checks
                if c.type == "unique"
            },
            {c.name: stats[c.name] for c in self.dataset_checks if c.type == "freshness"},
        )

    def run_dataset_checks(self, df: DataFrame) -> list[Outcome]:
        """Dataset checks that must be judged before the write (see ``in_pass``): one aggregate over the
        batch; raises on a failed ``fail`` check. Nothing to do when they are all judged in the write pass."""
        if not self.dataset_checks or self.in_pass:
            return []
        source = self._batch if self._batch is not None else df.drop(SOURCE_RECORD)
        outcomes = self._aggregate_dataset_checks(source)
        self.dataset_outcomes = outcomes
        failed = [o for o in outcomes if not o.passed and o.check.action == "fail"]
        if failed:
            self.record([*outcomes], None)
            raise DataQualityError(
                f"{self.table_name}: {len(failed)} fail-level check(s) failed, nothing written: "
                + "; ".join(f"{o.check.name}: {o.details}" for o in failed)
            )
        return outcomes

    def _dataset_outcomes(
        self, rows: int, surpluses: dict[str, int], newest_values: dict[str, Any]
    ) -> list[Outcome]:
        """The dataset checks' outcomes from the batch's row count, each unique check's surplus copies and
        each freshness check's newest value."""
        outcomes = []
        for check in self.dataset_checks:
            if check.type == "unique":
                surplus = surpluses[check.name]
                outcomes.append(
                    Outcome(
                        check, rows, surplus, f"{surplus} row(s) repeat a key of ({', '.join(check.columns)})"
                    )
                )
            elif check.type == "row_count":
                ok = (check.min is None or rows >= check.min) and (check.max is None or rows <= check.max)
                bounds = f"[{check.min if check.min is not None else '-inf'}, {check.max if check.max is not None else 'inf'}]"
                outcomes.append(
                    Outcome(check, rows, 0 if ok else 1, f"{rows} rows, expected within {bounds}")
                )
            elif check.type == "row_count_drift":
                previous = self._previous_rows(check)
                if previous is None:
                    outcomes.append(Outcome(check, rows, 0, "no previous run to compare with"))
                else:
                    change = (
                        100.0 * (rows - previous) / previous if previous else (0.0 if rows == 0 else 100.0)
                    )
                    ok = abs(change) <= float(check.max_change_pct)
                    outcomes.append(
                        Outcome(
                            check,
                            rows,
                            0 if ok else 1,
                            f"{rows} rows against {previous} in the previous run ({change:+.1f}%, "
                            f"allowed ±{check.max_change_pct}%)",
                        )
                    )
            elif check.type == "freshness":
                newest = newest_values[check.name]
                if newest is None:
                    outcomes.append(Outcome(check, rows, 1 if rows else 0, "no value to judge freshness by"))
                    continue
                if newest.tzinfo is None:
                    newest = newest.replace(tzinfo=UTC)
                age_h = (datetime.now(UTC) - newest).total_seconds() / 3600
                ok = age_h <= float(check.max_age_hours)
                outcomes.append(
                    Outcome(
                        check,
                        rows,
                        0 if ok else 1,
                        f"newest {check.column} {newest.isoformat()} is {age_h:.1f} h old "
                        f"(allowed {check.max_age_hours} h)",
                    )
                )
        return outcomes

    def _in_pass_outcomes(self, metrics: dict[str, Any]) -> list[Outcome]:
        if not self.in_pass:
            return []
        return self._dataset_outcomes(
            int(metrics.get("__rows") or 0),
            {
                c.name: int(metrics.get(f"__surplus_{c.name}") or 0)
                for c in self.in_pass
                if c.type == "unique"
            },
            {c.name: metrics.get(f"__newest_{c.name}") for c in self.in_pass if c.type == "freshness"},
        )

    def release(self) -> None:
        """Free the batch kept for the dataset checks and the write (once both are done)."""
        if self._persisted is not None:
            self._persisted.unpersist(blocking=False)
            self._persisted = None

    # ---- after the write ----------------------------------------------------------------------------

    def _row_outcomes(self, metrics: dict[str, Any]) -> list[Outcome]:
        rows = int(metrics.get("__rows") or 0)
        return [Outcome(c, rows, int(metrics.get(c.name) or 0)) for c in self.row_checks]

    def failed_write(self, exc: BaseException) -> DataQualityError | None:
        """If ``exc`` is a tripped ``fail`` check: count, record, and return the error to raise."""
        if FAIL_MARKER not in str(exc) or self.prepared is None or self.prepared.flagged is None:
            return None
        from pyspark.sql import functions as F

        # Count every row check again, without the raise_error (only on this failure path).
        flags_df = self._flags_without_fail(self._input_df)
        aggs = [F.count(F.lit(1)).alias("__rows")] + [
            F.sum(F.array_contains(F.col(FAILED_COLUMN), c.name).cast("long")).alias(c.name)
            for c in self.row_checks
        ]
        first = flags_df.agg(*aggs).first() if self.row_checks else None
        metrics = first.asDict() if first is not None else {}
        outcomes = self._row_outcomes(metrics)
        if self.in_pass:
            self.dataset_outcomes = self._aggregate_dataset_checks(self._input_df.drop(SOURCE_RECORD))
        self.record([*outcomes, *self.dataset_outcomes], None)
        failed = [o for o in outcomes if not o.passed and o.check.action == "fail"]
        failed_sets = [o for o in self.dataset_outcomes if not o.passed and o.check.action == "fail"]
        return DataQualityError(
            f"{self.table_name}: {len(failed) + len(failed_sets)} fail-level check(s) failed, nothing written "
            "(the table stays at its previous version): "
            + "; ".join(
                [f"{o.check.name}: {o.rows_failed:,} of {o.rows_checked:,} rows" for o in failed]
                + [f"{o.check.name}: {o.details}" for o in failed_sets]
            )
        )

    def _flag_for_quarantine(self) -> DataFrame:
        """The batch with __source_record and the failed-check names, without the fail-check raise (the
        write already passed them)."""
        from pyspark.sql import functions as F

        df = self._quarantine_source
        flags = []
        for check in self.row_checks:
            df, passes = self._passes(df, check)
            flags.append(F.when(~passes, F.lit(check.name)))
        failed = F.filter(F.array(*flags), lambda x: x.isNotNull()).alias(FAILED_COLUMN)
        keep = [c for c in df.columns if not c.startswith("__fk_")]
        return df.select(*keep, failed)

    def _flags_without_fail(self, df: DataFrame) -> DataFrame:
        from pyspark.sql import functions as F

        flags = []
        for check in self.row_checks:
            df, passes = self._passes(df, check)
            flags.append(F.when(~passes, F.lit(check.name)))
        return df.select(F.filter(F.array(*flags), lambda x: x.isNotNull()).alias(FAILED_COLUMN))

    def finish(self, version: int | None) -> list[Outcome]:
        """Quarantine what failed a quarantine check, then record every check's outcome."""
        outcomes: list[Outcome] = []
        prepared = self.prepared
        if prepared is not None and prepared.observation is not None:
            metrics = prepared.observation.get
            outcomes = self._row_outcomes(metrics)
            if self.in_pass:
                self.dataset_outcomes = self._in_pass_outcomes(metrics)
            self.quarantined = int(metrics.get("__quarantined") or 0)
            self.dropped = int(metrics.get("__dropped") or 0)
            if self.quarantined and prepared.flagged is not None:
                self._write_quarantine(self._flag_for_quarantine())
                crash_point("quarantine.committed")
        self.record([*outcomes, *self.dataset_outcomes], version)
        return outcomes

    def _write_quarantine(self, flagged: DataFrame) -> None:
        from pyspark.sql import functions as F

        rows = flagged.where(self._quarantine_filter)
        typed = [c for c in rows.columns if c != FAILED_COLUMN and not c.startswith(IN_FLIGHT_PREFIX)]
        extras = [
            F.col(c).alias(c.lstrip("_"))
            for c in rows.columns
            if c.startswith(IN_FLIGHT_PREFIX) and c != SOURCE_RECORD and not c.startswith("__fk_")
        ]
        source = (
            F.to_json(F.struct(F.col(f"{SOURCE_RECORD}.*"), *extras), JSON_OPTIONS)
            if SOURCE_RECORD in rows.columns
            else F.lit(None).cast("string")
        )
        out = rows.select(
            F.col(FAILED_COLUMN).alias("failed_checks"),
            F.lit(self.run_id).alias("run_id"),
            F.current_timestamp().alias("quarantined_at"),
            F.to_json(F.struct(*typed), JSON_OPTIONS).alias("record"),
            source.alias("source_record"),
        )
        template = self.lh.settings.quarantine
        out = with_comments(out, template.columns)  # documented from the first commit
        self.lh.write(
            out,
            quarantine_name(self.table_name),
            "append",
            description=template.description.format(table=self.table_name),
            commit_info={"medallion.run_id": self.run_id},
        )

    def record(self, outcomes: list[Outcome], version: int | None) -> None:
        record_results(self.lh, self.table_name, self.run_id, outcomes, version)


def record_results(
    lh: Lakehouse, table_name: str, run_id: str, outcomes: list[Outcome], version: int | None
) -> None:
    """Append one row per outcome to the DQ results table (created on first use)."""
    if not outcomes:
        return
    now = datetime.now(UTC)
    rows = [
        (
            run_id,
            table_name,
            version,
            o.check.name,
            o.check.type,
            o.check.action,
            ", ".join(check_columns(o.check)) or None,
            o.rows_checked,
            o.rows_failed,
            o.passed,
            o.details or None,
            now,
        )
        for o in outcomes
    ]
    from pipelines.system import append_rows

    append_rows(lh, "dq_results", rows, {"medallion.run_id": run_id, "medallion.table": table_name})


def describe(outcomes: list[Outcome]) -> str:
    """One short line for the run output: the checks that found something."""
    found = [o for o in outcomes if not o.passed]
    if not found:
        return f"{len(outcomes)} check(s) passed" if outcomes else ""
    return "; ".join(f"{o.check.name} ({o.check.action}) {o.rows_failed:,}" for o in found)
