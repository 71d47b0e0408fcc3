"""The jobs of the bundle, resolved per target: task graph, retries, schedules, clusters, grants, and task
parameters that the entry points' own parsers accept and turn into the right config."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from deploy_support import ROOT, view_for

from jobs.tasks import TASKS, cli_argv, environment_for, parser
from pipelines.config import load_settings
from pipelines.lakehouse import resolve

pytestmark = pytest.mark.fast
TARGETS = ("dev", "prod")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _tasks(view: dict[str, Any], job: str) -> dict[str, dict[str, Any]]:
    return {t["task_key"]: t for t in view["resources"]["jobs"][job]["tasks"]}


def _script_task(entry_point: str) -> str:
    target = PYPROJECT["project"]["scripts"][entry_point]
    module, _, func = target.partition(":")
    assert module == "jobs.tasks" and func in TASKS, f"{entry_point} -> {target}"
    return func


@pytest.mark.parametrize("target", TARGETS)
def test_daily_job_runs_the_layers_in_order_and_retries(bundle: dict[str, Any], target: str) -> None:
    view = view_for(bundle, target)
    tasks = _tasks(view, "medallion_daily")
    deps = {key: [d["task_key"] for d in task.get("depends_on", [])] for key, task in tasks.items()}
    assert deps == {
        "bronze": [],
        "silver": ["bronze"],
        "gold": ["silver"],
        "train": ["gold"],
        "score": ["train"],
        "serving": ["train"],  # the deployment step: the endpoint follows the champion training set
    }
    for task in tasks.values():
        assert task["max_retries"] >= 1 and task["min_retry_interval_millis"] >= 60000
        assert {"whl": "dist/*.whl"} in task["libraries"]
    # `../dist/*.whl` in resources/jobs.yml is relative to that file: dist/ of the bundle root, where the
    # artifact build puts the wheel.
    artifact = view["artifacts"]["medallion_wheel"]
    assert artifact["type"] == "whl" and artifact["path"] == "." and "-w dist" in artifact["build"]
    job = view["resources"]["jobs"]["medallion_daily"]
    assert job["max_concurrent_runs"] == 1
    assert job["email_notifications"]["on_failure"] and all(
        "@" in a for a in job["email_notifications"]["on_failure"]
    )
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
    assert clusters["etl"]["spark_version"] == "18.x-scala2.13"  # Databricks Runtime 18 LTS
    assert clusters["ml"]["spark_version"] == "18.x-cpu-ml-scala2.13"  # its ML variant
    assert {tasks[k]["job_cluster_key"] for k in ("train", "score", "serving")} == {"ml"}
    assert {tasks[k]["job_cluster_key"] for k in ("bronze", "silver", "gold")} == {"etl"}


def test_schedules_are_paused_in_dev_and_run_in_prod(bundle: dict[str, Any]) -> None:
    for target, status in (("dev", "PAUSED"), ("prod", "UNPAUSED")):
        jobs = view_for(bundle, target)["resources"]["jobs"]
        scheduled = [j for j in jobs.values() if "schedule" in j]
        assert len(scheduled) == 2  # daily, maintenance (medallion_reports runs on demand)
        assert {j["schedule"]["pause_status"] for j in scheduled} == {status}
    assert bundle["targets"]["dev"]["mode"] == "development" and bundle["targets"]["dev"]["default"] is True
    prod = bundle["targets"]["prod"]
    assert prod["mode"] == "production"
    assert view_for(bundle, "prod")["workspace"]["root_path"] == (
        "/Workspace/Users/6f0c1c1e-0000-4000-8000-000000000001/.bundle/medallion/prod"
    )
    assert view_for(bundle, "prod")["run_as"] == {
        "service_principal_name": "6f0c1c1e-0000-4000-8000-000000000001"
    }
    weekly = view_for(bundle, "prod")["resources"]["jobs"]["medallion_maintenance"]["schedule"]
    assert weekly["quartz_cron_expression"].endswith("SUN")


@pytest.mark.parametrize("target", TARGETS)
def test_every_task_parameter_list_parses_with_its_entry_point(bundle: dict[str, Any], target: str) -> None:
    view = view_for(bundle, target)
    seen = set()
    for job in view["resources"]["jobs"].values():
        for task in job["tasks"]:
            if "python_wheel_task" not in task:
                continue
            wheel_task = task["python_wheel_task"]
            assert wheel_task["package_name"] == PYPROJECT["project"]["name"]
            name = _script_task(wheel_task["entry_point"])
            seen.add(name)
            args = parser(name).parse_args(wheel_task["parameters"])  # SystemExit on any unknown parameter
            assert args.env == target
            # The names the job passes are the bundle's own resources, so jobs write where the bundle granted.
            schemas = view["resources"]["schemas"]
            assert (args.catalog, args.bronze_schema, args.silver_schema, args.gold_schema) == (
                schemas["gold"]["catalog_name"],
                schemas["bronze"]["name"],
                schemas["silver"]["name"],
                schemas["gold"]["name"],
            )
            volume = view["resources"]["volumes"]["landing_files"]
            assert args.home == f"/Volumes/{volume['catalog_name']}/{volume['schema_name']}/{volume['name']}"
            if TASKS[name].run_id:
                assert args.run_id == "{{job.run_id}}"
    assert seen == set(TASKS), f"tasks without a job: {set(TASKS) - seen}"


@pytest.mark.parametrize("target", TARGETS)
def test_job_arguments_become_unity_catalog_names_on_databricks(
    bundle: dict[str, Any], target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a task does on a cluster before any Spark: env from arguments -> config -> names and engine."""
    from pipelines.lakehouse.ingest import ingest_function
    from pipelines.session import decide_engine

    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "18.0")
    tasks = _tasks(view_for(bundle, target), "medallion_daily")
    params = [*tasks["silver"]["python_wheel_task"]["parameters"]]
    params[params.index("--catalog") + 1] = "team_catalog"
    params[params.index("--gold-schema") + 1] = "gold_v2"
    args = parser("silver").parse_args(params)
    for key, value in environment_for(args).items():
        monkeypatch.setenv(key, value)
    settings = load_settings()  # as run_cli does: MEDALLION_ENV from the task's --env
    assert settings.env == target
    assert decide_engine(settings).engine == "native"
    assert resolve(settings, "gold.flight_features").location == "team_catalog.gold_v2.flight_features"
    bronze = view_for(bundle, target)["resources"]["schemas"]["bronze"]["name"]  # dev_<user>_bronze in dev
    assert resolve(settings, "bronze.flights").location == f"team_catalog.{bronze}.flights"
    assert str(settings.landing_dir) == f"{args.home}/landing"
    # the pseudonymisation key: the secret of the bundle's secret scope (read with dbutils.secrets on a cluster)
    scope = view_for(bundle, target)["resources"]["secret_scopes"]["pseudonym_key"]["name"]
    assert (settings.pseudonym_key.secret_scope, settings.pseudonym_key.secret) == (scope, "pseudonym-key")
    from pipelines.lakehouse import autoloader

    assert ingest_function(settings) is autoloader.ingest
    assert cli_argv("silver", args) == [
        "--env",
        target,
        "run",
        "--select",
        "silver",
        "--no-ml",
        "--run-id",
        "{{job.run_id}}",
        "--no-land",
    ]


def test_land_sample_only_in_dev(bundle: dict[str, Any]) -> None:
    lands = {}
    for target in TARGETS:
        bronze = _tasks(view_for(bundle, target), "medallion_daily")["bronze"]
        args = parser("bronze").parse_args(bronze["python_wheel_task"]["parameters"])
        lands[target] = args.land
        assert ("--no-land" in cli_argv("bronze", args)) == (args.land == "none")
    assert lands == {"dev": "sample", "prod": "none"}


def test_pypi_libraries_are_pinned_like_pyproject(bundle: dict[str, Any]) -> None:
    pins = {}
    for group in [
        PYPROJECT["project"]["dependencies"],
        *PYPROJECT["project"]["optional-dependencies"].values(),
    ]:
        for req in group:
            if "==" in req:
                name, _, version = req.partition("==")
                pins[name.lower()] = version
    found = 0
    for job in view_for(bundle, "dev")["resources"]["jobs"].values():
        for task in job["tasks"]:
            for lib in task.get("libraries", []):
                if "pypi" in lib:
                    name, sep, version = lib["pypi"]["package"].partition("==")
                    assert sep and pins.get(name.lower()) == version, lib
                    found += 1
    assert found >= 1


@pytest.mark.parametrize("target", TARGETS)
def test_analysts_read_gold_only_and_the_writer_writes_every_layer(
    bundle: dict[str, Any], target: str
) -> None:
    view = view_for(bundle, target)
    analysts = bundle["variables"]["analysts_group"]["default"]
    writer = view["run_as"]["service_principal_name"] if target == "prod" else "someone@example.com"
    granted: dict[str, dict[str, set[str]]] = {}
    for kind in ("schemas", "volumes", "registered_models"):
        for key, res in view["resources"][kind].items():
            for grant in res.get("grants", []):
                granted.setdefault(grant["principal"], {})[f"{kind}.{key}"] = set(grant["privileges"])
    assert granted[analysts] == {"schemas.gold": {"USE_SCHEMA", "SELECT"}}
    for layer in ("bronze", "silver", "gold"):
        assert {"USE_SCHEMA", "MODIFY", "CREATE_TABLE", "SELECT"} <= granted[writer][f"schemas.{layer}"]
    assert {"READ_VOLUME", "WRITE_VOLUME"} <= granted[writer]["volumes.landing_files"]
    assert "ALL_PRIVILEGES" not in set().union(*granted[writer].values())


def test_every_resource_file_is_included() -> None:
    included = set(Path(ROOT).glob("resources/*.yml"))
    assert included and all(p.suffix == ".yml" for p in included)
    assert not list(Path(ROOT).glob("resources/*.yaml")), (
        "resources/*.yaml would not match the include pattern"
    )
