"""The data-quality gate: training refuses table versions with a failed fail-level check, or with no DQ record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ml_support import DQ, FEATURES, make_home

from pipelines.errors import DataQualityGateError
from pipelines.ml.gate import check_gate, evaluate_gate


def _row(check: str, action: str, passed: bool, run: str = "r1") -> dict[str, Any]:
    return {
        "run_id": run,
        "check_name": check,
        "action": action,
        "passed": passed,
        "rows_failed": 0 if passed else 3,
    }


@pytest.mark.fast
def test_gate_rules_on_rows() -> None:
    ok = evaluate_gate(FEATURES, 4, [_row("unique", "fail", True), _row("temp", "warn", False)], DQ)
    assert ok.checks == 2 and ok.warnings == ("temp",) and ok.runs == ("r1",)
    with pytest.raises(DataQualityGateError):
        evaluate_gate(FEATURES, 4, [_row("unique", "fail", True), _row("label", "fail", False)], DQ)
    with pytest.raises(DataQualityGateError):
        evaluate_gate(FEATURES, 4, [], DQ)


@pytest.mark.fast
def test_gate_reads_results_of_the_exact_table_version(settings: Any, spark: Any, tmp_path: Path) -> None:
    from pipelines.ml.synthetic import dq_rows

    home = make_home(settings, spark, tmp_path, rows=200, dq=False)
    lh, v0 = home.lh, home.features_version
    with pytest.raises(DataQualityGateError, match="no data-quality results"):
        check_gate(lh, FEATURES, v0, DQ)  # no DQ table at all
    lh.write(dq_rows(spark, FEATURES, v0, failed={"label_not_null": "fail"}), DQ, "append")
    with pytest.raises(DataQualityGateError, match="label_not_null"):
        check_gate(lh, FEATURES, v0, DQ)
    # results for another version, or for another table, do not count for this one
    lh.write(dq_rows(spark, FEATURES, v0 + 1, run_id="r2"), DQ, "append")
    lh.write(dq_rows(spark, "gold.other", v0, run_id="r3"), DQ, "append")
    with pytest.raises(DataQualityGateError):
        check_gate(lh, FEATURES, v0, DQ)
    assert check_gate(lh, FEATURES, v0 + 1, DQ).runs == ("r2",)
    # failed warn/drop/quarantine checks do not block
    lh.write(
        dq_rows(spark, FEATURES, v0 + 2, run_id="r4", failed={"temp_range": "warn", "x": "quarantine"}),
        DQ,
        "append",
    )
    assert check_gate(lh, FEATURES, v0 + 2, DQ).warnings == ("temp_range", "x")


@pytest.mark.slow
def test_train_command_refuses_with_exit_3_and_one_line(settings: Any, spark: Any, tmp_path: Path) -> None:
    from pipelines.ml.synthetic import dq_rows

    home = make_home(settings, spark, tmp_path, rows=300, dq=False)
    home.lh.write(
        dq_rows(spark, FEATURES, home.features_version, failed={"flight_id_unique": "fail"}), DQ, "append"
    )
    out = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "train"],
        env=home.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 3, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: DataQualityGateError:")
    assert "flight_id_unique" in errors[0]
    # refused before any MLflow run was made
    assert not (Path(home.settings.state_dir) / "mlflow").exists() or not os.listdir(
        Path(home.settings.state_dir) / "mlflow" / "artifacts"
    )


@pytest.mark.fast
def test_a_comment_commit_after_the_checked_version_does_not_block_training(
    settings: Any, spark: Any, tmp_path: Path
) -> None:
    """delta-spark documents a new table in a commit after its data (and a changed column comment adds one):
    that version shows the checked rows, so the gate takes their results."""
    from pipelines.ml.synthetic import dq_rows

    home = make_home(settings, spark, tmp_path, rows=200, dq=False)
    lh, v0 = home.lh, home.features_version
    lh.write(dq_rows(spark, FEATURES, v0, run_id="r1"), DQ, "append")
    lh.set_comments(FEATURES, "features, documented again")
    latest = lh.version(FEATURES)
    assert latest == v0 + 1
    result = check_gate(lh, FEATURES, latest, DQ)
    assert result.runs == ("r1",)
    lh.write(
        spark.createDataFrame([], lh.read(FEATURES).schema), FEATURES, "append"
    )  # a data commit: unchecked
    with pytest.raises(DataQualityGateError):
        check_gate(lh, FEATURES, latest + 1, DQ)
