"""The pipeline's event log: one row per table per run (or backfill), in the table declared with
``system: pipeline_events`` (``gold.pipeline_events``), queryable with ``medallion sql``.

Crash safety. A step's own table commit is what marks it done (the next run decides "inputs unchanged" from
that commit's metadata), and its event row is written after it, in another table. So a run that dies between
the two leaves a built table without its event row: at the start of every run the log looks at the last
step commit of each table it is about to run and, when no event row records that version, writes one with
status ``recovered`` from the commit (run id, version, time). Nothing the tables depend on is read from the
event log: losing a row never changes what a run does.

A run's rows are held back and written in one commit at its end, or at once when a step fails (or the run is
interrupted), so the log costs one small commit per run, not one per table. A run killed outright writes none
of its rows: the next run's reconcile writes a ``recovered`` row for each step it committed (its run id,
version and time; the row counts and seconds of such a step are not known).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.system import append_rows

if TYPE_CHECKING:
    from pipelines.lakehouse import Lakehouse
    from pipelines.runner import StepResult

ROLE = "pipeline_events"
RUN_KEY = "medallion.run_id"
# Commit keys that mark a step's own commit: a build (input versions), an ingestion (files), a backfill.
STEP_KEYS = ("medallion.inputs", "medallion.files", "medallion.backfill")


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:1000]


def _now() -> datetime:
    return datetime.now(UTC)


class EventLog:
    """The event rows of one run or backfill (``command``)."""

    def __init__(self, lh: Lakehouse, run_id: str, command: str) -> None:
        self.lh = lh
        self.run_id = run_id
        self.command = command
        self.pending: list[tuple[Any, ...]] = []

    def start(self) -> datetime:
        return _now()

    def _row(
        self,
        table: str,
        status: str,
        reason: str,
        rows_read: int | None,
        rows_written: int | None,
        seconds: float | None,
        version: int | None,
        started: datetime,
        finished: datetime,
        error: tuple[str, str] | None = None,
    ) -> tuple[Any, ...]:
        return (
            self.run_id,
            self.command,
            table,
            status,
            reason or None,
            rows_read,
            rows_written,
            seconds,
            version,
            self.lh.engine,
            error[0] if error else None,
            error[1] if error else None,
            started,
            finished,
        )

    def finished(self, result: StepResult, started: datetime, flush: bool = True) -> None:
        self.pending.append(
            self._row(
                result.table,
                result.status,
                result.reason,
                result.rows_read,
                result.rows_written,
                round(result.seconds, 3),
                result.version,
                started,
                _now(),
            )
        )
        if flush:
            self.flush()

    def failed(self, table: str, exc: BaseException, started: datetime) -> None:
        """Record a failed step; the step's own error is what the caller raises, so a failure to write the
        event row must not replace it."""
        finished = _now()
        version = None
        with contextlib.suppress(Exception):
            version = self.lh.version(table)
        self.pending.append(
            self._row(
                table,
                "failed",
                "",
                None,
                0,
                round((finished - started).total_seconds(), 3),
                version,
                started,
                finished,
                (type(exc).__name__, first_line(exc)),
            )
        )
        with contextlib.suppress(Exception):
            self.flush()

    def step(self, table: str, work: Callable[[], StepResult], flush: bool = True) -> StepResult:
        """Run one step and record its row: the result's, or a failed row before the error propagates.
        ``flush=False`` holds a successful step's row back for the next flush."""
        started = self.start()
        try:
            result = work()
        except Exception as exc:
            self.failed(table, exc, started)
            raise
        self.finished(result, started, flush=flush)
        return result

    def run(
        self,
        tables: Sequence[str],
        work: Callable[[str], StepResult],
        on_step: Callable[[StepResult], None] | None = None,
    ) -> list[StepResult]:
        """``work`` for every table in order, after reconciling; stops at the first failure."""
        self.reconcile(tables)
        results = []
        try:
            for name in tables:
                result = self.step(name, lambda name=name: work(name), flush=False)  # type: ignore[misc]
                results.append(result)
                if on_step:
                    on_step(result)
        except BaseException:
            # A failed step flushed already; an interrupt (Ctrl-C) still records the steps that ran.
            with contextlib.suppress(Exception):
                self.flush()
            raise
        self.flush()
        return results

    def flush(self) -> None:
        if not self.pending:
            return
        steps = [[row[2], row[8]] for row in self.pending]
        append_rows(self.lh, ROLE, self.pending, {RUN_KEY: self.run_id, "medallion.steps": json.dumps(steps)})
        self.pending = []

    # ---- crash recovery -----------------------------------------------------------------------------

    def reconcile(self, tables: Iterable[str]) -> int:
        """Write a ``recovered`` row for every table whose last step commit has no event row."""
        lh = self.lh
        steps: dict[str, dict[str, Any]] = {}
        for name in tables:
            if lh.exists(name):
                commit = last_step_commit(lh, name)
                if commit is not None:
                    steps[name] = commit
        if not steps:
            return 0
        recorded: set[tuple[str, int]] = set()
        log = lh.settings.system_table(ROLE)
        if lh.exists(log):
            wanted = [{"table_name": n, "table_version": int(c["version"])} for n, c in steps.items()]
            recorded = {
                (r[0], int(r[1]))
                for r in lh.read_rows(log, ("table_name", "table_version", "status"), where=wanted)
                if r[0] in steps and r[1] is not None and r[2] in ("ok", "recovered")
            }
        recovered = []
        for name, commit in steps.items():
            version = int(commit["version"])
            if (name, version) in recorded:
                continue
            when = datetime.fromtimestamp((commit["timestamp"] or 0) / 1000, tz=UTC)
            run_id = str(commit["custom"].get(RUN_KEY, ""))
            recovered.append(
                (
                    run_id,
                    "backfill" if "medallion.backfill" in commit["custom"] else "run",
                    name,
                    "recovered",
                    "the run stopped after this commit, before its event row was written",
                    None,
                    None,
                    None,
                    version,
                    lh.engine,
                    None,
                    None,
                    when,
                    when,
                )
            )
        if recovered:
            append_rows(lh, ROLE, recovered, {RUN_KEY: self.run_id, "medallion.recovered": len(recovered)})
        return len(recovered)


def last_step_commit(lh: Lakehouse, name: str) -> dict[str, Any] | None:
    """The newest commit of ``name`` made by a pipeline step (it carries the run id and a step key)."""
    for commit in lh.history(name):
        custom = commit["custom"]
        if custom.get(RUN_KEY) and any(custom.get(k) for k in STEP_KEYS):
            return commit
    return None
