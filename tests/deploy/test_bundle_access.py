"""Who may read what, in every target (pipelines/bundle/checks.py: check_analysts_access, check_secret_scope):
analysts read gold and nothing below it; the pseudonymisation key lives in the bundle's secret scope, which
every task names (--secret-scope), the jobs' principal reads and analysts cannot. Each breakage is put into a
copy of the bundle and must be reported; the prod permissions as they were before the secret scope (analysts
CAN_VIEW at the top level, which the CLI also applies to the scope as READ) are one of them. Then the local
job run's stand-in for the scope (pipelines/bundle/localrun.py): deploy puts a random key in a folder per
scope, the tasks read it from there and inherit no key of the caller."""

from __future__ import annotations

import copy
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from deploy_support import PROD_PRINCIPAL, ROOT, drop_option, job_tasks, resolved

from pipelines.bundle import checks
from pipelines.bundle.resolve import Identity, load, resolve

pytestmark = pytest.mark.fast
TARGETS = ("dev", "prod")
SCOPE_PARAM = "${resources.secret_scopes.pseudonym_key.name}"
ANALYSTS = "${var.analysts_group}"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return load(ROOT)


def _old_prod_permissions(doc: dict[str, Any]) -> None:
    """prod as it was: analysts CAN_VIEW in the top-level permissions (every resource, the scope included)."""
    doc["targets"]["prod"]["permissions"].append({"group_name": ANALYSTS, "level": "CAN_VIEW"})
    for job in ("medallion_daily", "medallion_maintenance"):
        del doc["targets"]["prod"]["resources"]["jobs"][job]["permissions"]


def _without_secret_scope(doc: dict[str, Any]) -> None:
    """No secret_scopes resource, and nothing that names it."""
    del doc["resources"]["secret_scopes"]
    for target in TARGETS:
        del doc["targets"][target]["resources"]["secret_scopes"]
    for job in doc["resources"]["jobs"].values():
        for task in job["tasks"]:
            if "python_wheel_task" in task:
                spec = task["python_wheel_task"]
                spec["parameters"] = drop_option(spec["parameters"], "--secret-scope")
            if "notebook_task" in task:
                params = dict(task["notebook_task"]["base_parameters"])
                params.pop("secret_scope")
                task["notebook_task"]["base_parameters"] = params


# ---- the bundle as it is --------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_analysts_read_gold_only_and_the_jobs_read_the_key_from_the_bundles_scope(target: str) -> None:
    bundle = resolved(target)
    assert checks.check_access(bundle) == []
    scope = bundle.resources["secret_scopes"]["pseudonym_key"]
    assert scope["name"] == ("dev-someone-medallion" if target == "dev" else "medallion-prod")
    reader = {"dev": ("user_name", "someone@example.com"), "prod": ("service_principal_name", PROD_PRINCIPAL)}
    assert {reader[target][0]: reader[target][1], "level": "READ"} in scope["permissions"]
    everyone = {checks._principal(p) for p in checks.effective_permissions(bundle, "secret_scopes", scope)}
    assert "analysts" not in everyone
    for job in bundle.jobs():
        for key, task in bundle.tasks(job).items():
            if "python_wheel_task" in task:
                params = task["python_wheel_task"]["parameters"]
                assert params[params.index("--secret-scope") + 1] == scope["name"], (job, key)
            else:
                assert task["notebook_task"]["base_parameters"]["secret_scope"] == scope["name"], (job, key)


def test_the_secret_scope_of_each_developer_is_their_own() -> None:
    """Scope names are unique in a workspace and development mode does not prefix them."""
    other = resolved("dev")
    mine = resolve(ROOT, "dev", Identity("first.last@example.com"), {}, environ={})
    assert other.resources["secret_scopes"]["pseudonym_key"]["name"] == "dev-someone-medallion"
    assert mine.resources["secret_scopes"]["pseudonym_key"]["name"] == "dev-first_last-medallion"


# ---- analysts: gold and nothing below it ----------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    ("kind", "key", "privileges"),
    [
        ("schemas", "bronze", ["USE_SCHEMA", "SELECT"]),
        ("schemas", "silver", ["USE_SCHEMA", "SELECT"]),
        ("schemas", "landing", ["USE_SCHEMA"]),
        ("volumes", "landing_files", ["READ_VOLUME"]),
    ],
)
def test_a_grant_to_analysts_below_gold_is_reported(
    doc: dict[str, Any], target: str, kind: str, key: str, privileges: list[str]
) -> None:
    broken = copy.deepcopy(doc)
    broken["resources"][kind][key]["grants"].append({"principal": ANALYSTS, "privileges": privileges})
    found = checks.check_analysts_access(resolved(target, doc=broken))
    assert len(found) == 1, found
    assert found[0].startswith(f"{kind}.{key} (")
    assert f"grants {', '.join(privileges)} to the analysts group analysts: analysts read gold (" in found[0]


def test_a_catalog_grant_analysts_would_inherit_below_gold_is_reported(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    broken["resources"]["catalogs"] = {
        "main": {
            "name": "${var.catalog}",
            "grants": [{"principal": ANALYSTS, "privileges": ["USE_CATALOG", "SELECT"]}],
        }
    }
    found = checks.check_analysts_access(resolved("prod", doc=broken))
    assert found == [
        "catalogs.main (medallion_prod) grants SELECT to the analysts group analysts, which every schema of the "
        "catalog inherits (bronze and silver too): grant them on medallion_prod.gold only"
    ]
    broken["resources"]["catalogs"]["main"]["grants"][0]["privileges"] = ["USE_CATALOG"]
    assert checks.check_analysts_access(resolved("prod", doc=broken)) == []


def test_analysts_only_read_gold(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    gold = broken["resources"]["schemas"]["gold"]["grants"]
    next(g for g in gold if g["principal"] == ANALYSTS)["privileges"].append("MODIFY")
    found = checks.check_analysts_access(resolved("dev", doc=broken))
    assert found == [
        "schemas.gold (medallion_dev.dev_someone_gold) grants MODIFY to the analysts group analysts: analysts only "
        "read gold (USE_SCHEMA, SELECT)"
    ]


def test_the_old_prod_permissions_gave_analysts_the_key_and_bronze_rows(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    _old_prod_permissions(broken)
    found = checks.check_access(resolved("prod", doc=broken))
    assert found == [
        "job medallion_reports: the analysts group analysts has CAN_VIEW (top-level permissions), and its task "
        "explore_bronze runs 01_explore_bronze.py, whose outputs show bronze.flights, bronze.ingest_manifest, "
        "silver.flights and 2 more (below gold): give analysts no permission on this job",
        "secret_scopes.pseudonym_key (medallion-prod) gives the analysts group analysts READ through the top-level "
        "permissions: with the pseudonymisation key they could tell which value a pseudonym stands for; give them "
        "no permission on it",
    ]
    assert checks.check_access(resolved("dev", doc=broken)) == []  # dev has no top-level permissions


# ---- the pseudonymisation key's secret scope ------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_pseudonymised_columns_need_a_declared_secret_scope(doc: dict[str, Any], target: str) -> None:
    broken = copy.deepcopy(doc)
    _without_secret_scope(broken)
    found = checks.check_secret_scope(resolved(target, doc=broken))
    assert found[0] == (
        "the configuration pseudonymises bronze.flights.tailnum, bronze.planes.tailnum, but the bundle declares no "
        "secret_scopes resource for the key: declare one (resources/secrets.yml) and pass --secret-scope "
        "${resources.secret_scopes.<key>.name} to every task"
    )
    missing = [p for p in found[1:] if " gets no secret scope " in p]
    assert len(missing) == len(found) - 1 == 10, found  # 7 wheel tasks, 3 notebooks


def test_without_pseudonymised_columns_no_secret_scope_is_needed(
    doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = copy.deepcopy(doc)
    _without_secret_scope(broken)
    assert checks.check_secret_scope(resolved("prod", doc=broken))  # the configuration pseudonymises tailnum
    monkeypatch.setattr("pipelines.sensitive.pseudonymised_columns", lambda settings: {})
    assert checks.check_secret_scope(resolved("prod", doc=broken)) == []


def test_every_task_and_notebook_passes_the_scope(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    spec = job_tasks(broken)["silver"]["python_wheel_task"]
    spec["parameters"] = drop_option(spec["parameters"], "--secret-scope")
    spec = job_tasks(broken, "medallion_maintenance")["maintain"]["python_wheel_task"]
    spec["parameters"][spec["parameters"].index("--secret-scope") + 1] = "medallion-keys"
    reports = job_tasks(broken, "medallion_reports")
    reports["model_report"]["notebook_task"]["base_parameters"] = {
        k: v
        for k, v in reports["model_report"]["notebook_task"]["base_parameters"].items()
        if k != "secret_scope"
    }
    found = checks.check_secret_scope(resolved("prod", doc=broken))
    assert found == [
        "job medallion_daily task silver gets no secret scope (--secret-scope): it pseudonymises columns with a key "
        "that, on a cluster, only the bundle's secret scope holds (pass --secret-scope "
        "${resources.secret_scopes.<key>.name})",
        "job medallion_maintenance task maintain reads the pseudonymisation key from the secret scope "
        "'medallion-keys', which the bundle does not declare (secret_scopes: medallion-prod)",
        "job medallion_reports task model_report (notebook) gets no secret scope (the widget secret_scope): it "
        "pseudonymises columns with a key that, on a cluster, only the bundle's secret scope holds (pass the "
        "widget secret_scope ${resources.secret_scopes.<key>.name})",
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_the_jobs_principal_must_read_the_scope(doc: dict[str, Any], target: str) -> None:
    broken = copy.deepcopy(doc)
    del broken["targets"][target]["resources"]["secret_scopes"]["pseudonym_key"]["permissions"]
    found = checks.check_secret_scope(resolved(target, doc=broken))
    reader = PROD_PRINCIPAL if target == "prod" else "someone@example.com"
    name = "medallion-prod" if target == "prod" else "dev-someone-medallion"
    assert found == [
        f"secret_scopes.pseudonym_key ({name}): the jobs' principal {reader} may not read it, so the tasks cannot "
        "read the pseudonymisation key: give it level READ (user_name or service_principal_name: "
        "${var.writer_principal})"
    ]


def test_analysts_get_no_permission_on_the_scope(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    broken["resources"]["secret_scopes"]["pseudonym_key"]["permissions"] = [
        {"group_name": ANALYSTS, "level": "READ"}
    ]
    found = checks.check_secret_scope(resolved("dev", doc=broken))
    assert found == [
        "secret_scopes.pseudonym_key (dev-someone-medallion) gives the analysts group analysts READ: with the "
        "pseudonymisation key they could tell which value a pseudonym stands for; give them no permission on it"
    ]


def test_a_scope_name_databricks_refuses_is_reported(doc: dict[str, Any]) -> None:
    found = checks.check_secret_scope(resolved("prod", cli_vars={"writer_principal": PROD_PRINCIPAL,
                                                                 "secret_scope": "medallion keys"}, doc=doc))  # fmt: skip
    assert found[0].startswith(
        "secret_scopes.pseudonym_key: the name 'medallion keys' is not a secret scope name"
    )


# ---- every target, from validate and the local job run --------------------------------------------------


def _root_with_old_prod_permissions(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    root.mkdir()
    for name in ("databricks.yml", "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)
    for folder in ("resources", "notebooks"):
        shutil.copytree(ROOT / folder, root / folder)
    text = (root / "databricks.yml").read_text()
    old = "      - group_name: data-platform-admins\n        level: CAN_MANAGE\n"
    assert text.count(old) == 1
    (root / "databricks.yml").write_text(
        text.replace(old, old + "      - group_name: ${var.analysts_group}\n        level: CAN_VIEW\n")
    )
    return root


def test_validate_and_the_local_run_of_dev_check_prods_access_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.bundle.localrun import RunOptions, run_bundle
    from pipelines.cli import run_cli
    from pipelines.errors import BundleError

    root = _root_with_old_prod_permissions(tmp_path)
    problems = checks.access_problems_of_other_targets(root, load(root), Identity("me@localhost"), "dev")
    assert [p.split(":")[0] for p in problems] == ["target prod", "target prod"]
    assert (
        "secret_scopes.pseudonym_key (medallion-prod) gives the analysts group analysts READ" in problems[1]
    )
    assert checks.access_problems_of_other_targets(root, load(root), Identity("me@localhost"), "prod") == []

    assert run_cli(["bundle", "validate", "-t", "dev", "--root", str(root)]) != 0
    out = capsys.readouterr().out
    assert "2 problem(s):" in out and "  - target prod: job medallion_reports: the analysts group" in out

    said: list[str] = []
    with pytest.raises(BundleError, match="2 problem\\(s\\) found by the bundle checks; not run"):
        run_bundle(root, RunOptions(target="dev", workdir=tmp_path / "work"), say=said.append)
    assert any("target prod: secret_scopes.pseudonym_key" in line for line in said), said
    assert not (tmp_path / "work").exists()  # refused before anything was built or deployed


# ---- the local job run's secret scopes ------------------------------------------------------------------


def test_deploy_puts_a_random_key_once_into_each_scope_and_the_tasks_read_it_from_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.bundle.localrun import ClusterEnv, Platform, deploy_secret_scopes
    from pipelines.sensitive import load_key

    bundle = resolved("dev")
    platform = Platform(tmp_path / "work")
    assert deploy_secret_scopes(bundle, platform) == (1, 1)
    key_file = platform.secrets / "dev-someone-medallion" / "pseudonym-key"
    key = key_file.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key)  # secrets.token_hex(32)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert deploy_secret_scopes(bundle, platform) == (1, 0)  # kept: a new key would change every pseudonym
    assert key_file.read_text().strip() == key
    assert Platform(tmp_path / "other").secrets != platform.secrets

    # The caller's own keys never reach a task: a cluster has neither the variables nor a `medallion setup` key.
    monkeypatch.setenv("MEDALLION_PSEUDONYM_KEY", "caller-key-0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("MEDALLION_PSEUDONYM_KEY_FILE", str(tmp_path / "caller.key"))
    monkeypatch.setenv("MEDALLION_SECRET_SCOPE", "caller-scope")
    cluster = ClusterEnv("etl", None, tmp_path, tmp_path / "cluster", tmp_path, tmp_path / "install.log")  # type: ignore[arg-type]
    env = platform.task_environment(cluster)
    assert env["MEDALLION_SECRETS"] == str(platform.secrets)
    assert env["XDG_CONFIG_HOME"] == str(platform.config_home) and platform.config_home.is_dir()
    assert not [k for k in env if k.startswith("MEDALLION_PSEUDONYM") or k == "MEDALLION_SECRET_SCOPE"]

    # A task of the bundle, in that environment, reads the key the deploy put into its scope.
    silver = bundle.tasks("medallion_daily")["silver"]["python_wheel_task"]["parameters"]
    settings = checks.task_settings(checks.parse_task("silver", silver))
    monkeypatch.setattr(os, "environ", dict(env))
    assert load_key(settings) == key.encode()


def test_the_generic_task_entry_point_takes_the_scope_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import jobs.task

    seen: dict[str, Any] = {}

    def run_cli(argv: list[str]) -> int:
        seen.update(argv=argv, scope=os.environ.get("MEDALLION_SECRET_SCOPE"))
        return 0

    monkeypatch.setattr("pipelines.cli.run_cli", run_cli)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    assert jobs.task.run(["--env", "dev", "--select", "silver", "--secret-scope", "medallion-dev"]) == 0
    assert seen == {
        "argv": ["--env", "dev", "run", "--select", "silver", "--no-land"],
        "scope": "medallion-dev",
    }
