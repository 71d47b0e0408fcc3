"""The README's first command on the full embedded sample: every bronze table, exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from deltalake import DeltaTable

pytestmark = pytest.mark.slow

EXPECTED = {"flights": 336_776, "weather": 26_115, "planes": 3_322, "airports": 1_458, "airlines": 16}


def test_full_run_builds_bronze_and_a_rerun_adds_nothing(full_run: tuple[Path, Any], cli: Any) -> None:
    tmp_path, _first = full_run
    lakehouse = tmp_path / "lakehouse" / "bronze"
    for table, rows in EXPECTED.items():
        dt = DeltaTable(str(lakehouse / table))
        assert dt.to_pyarrow_table().num_rows == rows, table
    flights = DeltaTable(str(lakehouse / "flights")).to_pyarrow_table(columns=["_source_file"])
    assert len(set(flights.column("_source_file").to_pylist())) == 12
    versions = {t: DeltaTable(str(lakehouse / t)).version() for t in EXPECTED}

    second = cli(tmp_path, "run")
    assert second.returncode == 0, second.stderr
    assert "0 rows written" in second.stdout
    assert "ml: train skipped" in second.stdout and "ml: score skipped" in second.stdout
    # Nothing to do needs no JVM: the logs and the small system tables answer (deltalake), and the run's
    # event rows are still written, in one commit, readable by every engine.
    assert "starting Spark" in _first.stdout and "starting Spark" not in second.stdout
    events = DeltaTable(str(tmp_path / "lakehouse" / "gold" / "pipeline_events"))
    run_id = second.stdout.split("run ", 1)[1].split()[0]
    newest = events.history(1)[0]
    assert run_id in newest["userMetadata"] and newest["operationMetrics"]["num_added_rows"] == 14
    rows = events.to_pyarrow_table(columns=["run_id", "status"]).to_pylist()
    assert sorted(r["status"] for r in rows if r["run_id"] == run_id) == ["skipped"] * 14
    for table, rows in EXPECTED.items():
        dt = DeltaTable(str(lakehouse / table))
        assert dt.version() == versions[table] and dt.to_pyarrow_table().num_rows == rows

    # Another Delta reader agrees: DuckDB's delta extension (shipped on PyPI, loaded from disk).
    import duckdb_ext

    ext = next(Path(duckdb_ext.__path__[0]).rglob("delta.duckdb_extension"))
    con = duckdb.connect()
    con.execute(f"LOAD '{ext}'")
    count = con.execute(
        f"SELECT count(*) FROM delta_scan('{lakehouse / 'flights'}') WHERE carrier = 'UA'"
    ).fetchone()
    assert count == (58_665,)

    tables = cli(tmp_path, "tables")
    assert tables.returncode == 0 and "336,776" in tables.stdout


def test_full_run_ends_with_a_champion_that_records_its_training_table_and_predictions(
    full_run: tuple[Path, Any], full_lakehouse: Any
) -> None:
    import mlflow
    from mlflow import MlflowClient

    from pipelines.ml import tracking

    home, first = full_run
    assert "(champion)" in first.stdout and "scored " in first.stdout
    previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    try:
        _check_registry(home, full_lakehouse, tracking, MlflowClient)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def _check_registry(home: Path, full_lakehouse: Any, tracking: Any, client_class: Any) -> None:
    info = tracking.configure(full_lakehouse.settings)
    assert info.local_db is not None and info.local_db.is_relative_to(home)
    champion = client_class().get_model_version_by_alias(info.model_name, "champion")
    assert champion.tags["medallion.features_table"] == "gold.flight_features"
    assert champion.tags["medallion.features_version"] == str(full_lakehouse.version("gold.flight_features"))
    predictions = full_lakehouse.read("gold.flight_delay_predictions")
    features = full_lakehouse.read("gold.flight_features")
    assert predictions.count() == features.count() == predictions.select("flight_id").distinct().count()
    assert {r["model_version"] for r in predictions.select("model_version").distinct().collect()} == {
        str(champion.version)
    }
