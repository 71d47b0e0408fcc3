"""The ML command group as a user meets it: help, argument errors before any work, the `run` post-step."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# The fast tier is the tests marked fast; the heavier ones here run in the full suite only.


def _medallion(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "MEDALLION_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.fast
def test_help_lists_the_ml_commands(tmp_path: Path) -> None:
    out = _medallion("--help", home=tmp_path)
    for word in ("train", "score", "serve", "ui"):
        assert word in out.stdout
    train = _medallion("train", "--help", home=tmp_path)
    assert train.returncode == 0 and "--search" in train.stdout and "DataQualityGateError" in train.stdout


@pytest.mark.fast
def test_bad_parameter_is_refused_before_spark_or_mlflow(tmp_path: Path) -> None:
    out = _medallion("train", "--param", "n_trees=5", home=tmp_path)
    assert out.returncode == 2 and "ConfigError" in out.stderr and "learning_rate" in out.stderr
    out = _medallion("train", "--param", "learning_rate", home=tmp_path)
    assert out.returncode == 2 and "UsageError" in out.stderr
    assert not (tmp_path / "state").exists() and not (tmp_path / "lakehouse").exists()


@pytest.mark.fast
def test_run_post_step_skips_ml_without_features_and_outside_gold(
    lakehouse: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.ml.cli import after_run

    settings = lakehouse.settings
    after_run(settings, argparse.Namespace(select=None, verbose=False), list(settings.tables), lakehouse)
    assert "train and score skipped: gold.flight_features does not exist" in capsys.readouterr().out
    bronze = [t for t in settings.tables if t.startswith("bronze.")]
    after_run(settings, argparse.Namespace(select=["bronze"], verbose=False), bronze, lakehouse)
    assert capsys.readouterr().out == ""


@pytest.mark.fast
def test_mlproject_train_entry_point_is_a_valid_medallion_command() -> None:
    """`mlflow run . -e train` runs this command (verified end to end by hand: see README); here its
    defaults must parse and be valid estimator parameters."""
    import shlex

    import yaml

    from pipelines.cli import _parser
    from pipelines.config import load_settings
    from pipelines.ml.cli import _parse_params
    from pipelines.ml.estimators import coerce_params

    project = yaml.safe_load((Path(__file__).resolve().parents[2] / "MLproject").read_text())
    entry = project["entry_points"]["train"]
    command = entry["command"].format(**{k: v["default"] for k, v in entry["parameters"].items()})
    argv = shlex.split(command)
    assert argv[0] == "medallion"
    args = _parser().parse_args(argv[1:])
    assert args.command == "train"
    settings = load_settings(args.env)
    params = _parse_params(args.param)
    assert coerce_params(settings.ml.model.kind, params)
    assert params == {k: float(v) for k, v in settings.ml.model.params.items()}


@pytest.mark.parametrize("case", ["one month", "one label value"])
def test_run_post_step_reports_a_degenerate_split_and_ends_the_run_successfully(
    settings: Any, spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    """One landed month (README's incremental example) or a validation month without a late flight: the data
    run succeeded, so training says why it cannot run, names the table version, and scoring is skipped."""
    from ml_support import make_home
    from pyspark.sql import functions as F

    from pipelines.errors import TrainingDataError
    from pipelines.ml.cli import after_run
    from pipelines.ml.features import check_split

    home = make_home(settings, spark, tmp_path, rows=400)
    lh, table = home.lh, home.settings.ml.features_table
    features = lh.read(table)
    if case == "one month":
        degenerate = features.where(F.month("flight_date") == 1)
    else:
        degenerate = features.withColumn(
            "label", F.when(F.month("flight_date") == 12, F.lit(0)).otherwise(F.col("label"))
        )
    version = lh.write(degenerate, table, "overwrite").version
    from pipelines.ml.synthetic import dq_rows

    lh.write(dq_rows(spark, table, version), home.settings.ml.dq_table, "append")  # checked: the gate passes
    with pytest.raises(TrainingDataError, match=f"v{version}"):
        check_split(lh.read(table, version), home.settings.ml, table, version)
    after_run(home.settings, argparse.Namespace(select=None, verbose=False, run_id="r1"), [table], lh)
    out = capsys.readouterr().out
    assert f"ml: train skipped: {table} v{version}" in out
    assert "ml: score skipped: no champion model yet" in out
    assert not lh.exists(home.settings.ml.predictions_table)


@pytest.mark.fast
def test_run_no_ml_never_trains(lakehouse: Any) -> None:
    """The Databricks layer tasks pass --no-ml: their run must not train and score (the job does, on the ML
    cluster); without it a gold run does."""
    from pipelines.cli import _parser
    from pipelines.ml.cli import trains_after_run

    settings = lakehouse.settings
    gold = [t for t in settings.tables if t.startswith("gold.")]
    args = _parser().parse_args(["run", "--select", "gold"])
    assert trains_after_run(settings, args, gold)
    args = _parser().parse_args(["run", "--select", "gold", "--no-ml"])
    assert not trains_after_run(settings, args, gold)


@pytest.mark.fast
def test_deploy_endpoint_refuses_before_the_first_training(tmp_path: Path) -> None:
    """A fresh registry has no champion: the serving step fails with one line and changes nothing."""
    out = _medallion("deploy-endpoint", "flight-delay", home=tmp_path)
    assert out.returncode == 1 and out.stderr.startswith("error: ModelError: "), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "state" / "serving").exists()
