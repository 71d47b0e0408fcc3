"""The data-quality gate in front of training.

Training reads ``ml.features_table`` at one Delta version. It proceeds only when ``ml.dq_table`` holds DQ results
for exactly that table version and none of them is a failed ``fail``-level check. No record at all is also a
refusal: an unchecked table version is not evidence of good data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import DataQualityGateError

if TYPE_CHECKING:
    from pipelines.lakehouse import Lakehouse


@dataclass(frozen=True)
class GateResult:
    table: str
    version: int
    checks: int
    runs: tuple[str, ...]
    warnings: tuple[str, ...]  # failed checks whose action is not fail (warn, drop, quarantine)


def evaluate_gate(table: str, version: int, rows: Iterable[Mapping[str, Any]], dq_table: str) -> GateResult:
    """Decide on the DQ rows of (table, version); raise DataQualityGateError to refuse."""
    rows = list(rows)
    if not rows:
        raise DataQualityGateError(
            f"no data-quality results for {table} version {version} in {dq_table}: run the DQ checks of that "
            "table version before training (an unchecked version is refused)"
        )
    failed = [r for r in rows if r["action"] == "fail" and not r["passed"]]
    if failed:
        names = ", ".join(
            sorted({f"{r['check_name']} ({r['rows_failed']} row(s), run {r['run_id']})" for r in failed})
        )
        raise DataQualityGateError(
            f"{table} version {version} failed fail-level data-quality check(s): {names}; fix the data and "
            "rebuild the table, then train on the new version"
        )
    warnings = tuple(sorted({str(r["check_name"]) for r in rows if not r["passed"]}))
    return GateResult(table, version, len(rows), tuple(sorted({str(r["run_id"]) for r in rows})), warnings)


def check_gate(lh: Lakehouse, table: str, version: int, dq_table: str) -> GateResult:
    """Read the DQ results of (table, version) from ``dq_table`` and evaluate the gate. A version made by a
    comment, property or maintenance commit shows the rows of the data commit before it: those were checked."""
    from pyspark.sql import functions as F

    from pipelines.lakehouse.base import data_version

    if not lh.exists(dq_table):
        return evaluate_gate(table, version, [], dq_table)
    if lh.exists(table):
        version = data_version(lh.history(table), version)
    rows = (
        lh.read(dq_table)
        .where((F.col("table_name") == table) & (F.col("table_version") == version))
        .select("run_id", "check_name", "action", "passed", "rows_failed")
        .collect()
    )
    return evaluate_gate(table, version, [r.asDict() for r in rows], dq_table)
