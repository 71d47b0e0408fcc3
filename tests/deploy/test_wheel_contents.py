"""The wheel the bundle deploys: built here once per session, inspected, and run from its unpacked files
(not from the checkout), the way a cluster would import it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from deploy_support import ROOT, BuiltWheel, load_bundle

from jobs.tasks import TASKS

pytestmark = pytest.mark.fast


def _bundle_entry_points() -> set[str]:
    bundle = load_bundle()
    return {
        t["python_wheel_task"]["entry_point"]
        for j in bundle["resources"]["jobs"].values()
        for t in j["tasks"]
        if "python_wheel_task" in t
    }


def test_every_bundle_entry_point_is_a_console_script_of_the_wheel(built_wheel: BuiltWheel) -> None:
    used = _bundle_entry_points()
    assert used <= set(built_wheel.console_scripts), used - set(built_wheel.console_scripts)
    assert {spec.script for spec in TASKS.values()} <= set(built_wheel.console_scripts)
    for script in used:
        assert built_wheel.console_scripts[script].startswith("jobs.tasks:")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_entry_point_runs_help_from_the_wheel(built_wheel: BuiltWheel, task: str) -> None:
    script = TASKS[task].script
    module, _, func = built_wheel.console_scripts[script].partition(":")
    code = (
        f"import importlib, sys; sys.argv = ['{script}', '--help']\n"
        f"importlib.import_module('{module}').{func}()\n"
    )
    proc = built_wheel.run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert f"usage: {script}" in proc.stdout and "--env" in proc.stdout and "--catalog" in proc.stdout
    assert "pyspark" not in proc.stderr  # --help must not need Spark


def test_an_unknown_parameter_fails_the_task(built_wheel: BuiltWheel) -> None:
    proc = built_wheel.run_python(
        "import sys; sys.argv = ['medallion-silver', '--env', 'dev', '--selct', 'x']\n"
        "from jobs.tasks import silver; silver()\n"
    )
    assert proc.returncode == 2 and "unrecognized arguments: --selct" in proc.stderr


def test_the_wheel_holds_the_package_and_its_conf(built_wheel: BuiltWheel) -> None:
    names = built_wheel.names
    for conf in sorted(p.relative_to(ROOT) for p in (ROOT / "conf").rglob("*.yml")):
        assert f"pipelines/{conf.as_posix()}" in names, f"{conf} is not packaged"
    for module in sorted(
        p.relative_to(ROOT) for d in ("pipelines", "jobs") for p in (ROOT / d).rglob("*.py")
    ):
        assert module.as_posix() in names, f"{module} is not packaged"
    assert "pipelines/log4j2.properties" in names
    assert not any(n.startswith(("tests/", "notebooks/", "resources/")) for n in names)


def test_the_packaged_conf_loads_for_every_deployed_environment(built_wheel: BuiltWheel) -> None:
    proc = built_wheel.run_python(
        "from pipelines.config import default_conf_dir, load_settings\n"
        "assert str(default_conf_dir()).startswith(sys.path[0]), default_conf_dir()\n"
        "for env in ('dev', 'prod'):\n"
        "    s = load_settings(env)\n"
        "    print(env, s.storage.engine, s.storage.naming, s.storage.catalog, s.storage.ingest, len(s.tables))\n"
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["dev"].startswith("native catalog medallion_dev autoloader ")
    assert lines["prod"].startswith("native catalog medallion_prod autoloader ")
    assert int(lines["dev"].rsplit(" ", 1)[1]) >= 5


def _requirements(metadata: str) -> list[str]:
    return [
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    ]


def test_the_wheel_does_not_drag_spark_delta_or_ml_onto_a_cluster(built_wheel: BuiltWheel) -> None:
    unconditional = [r for r in _requirements(built_wheel.metadata) if "extra ==" not in r]
    # A range, not a pin: the runtime's own PyYAML must satisfy it (pipelines.bundle.checks).
    assert [r.split("<")[0].split(">")[0] for r in unconditional] == ["pyyaml"]
    assert "==" not in unconditional[0]
    conditional = {r.split(";")[0].strip().split("==")[0]: r for r in _requirements(built_wheel.metadata)}
    for heavy, extra in (
        ("pyspark", "local"),
        ("delta-spark", "local"),
        ("mlflow", "ml"),
        ("great-expectations", "dq"),
    ):
        assert f'extra == "{extra}"' in conditional[heavy], conditional[heavy]


def test_requires_python_admits_the_databricks_runtime(built_wheel: BuiltWheel) -> None:
    """Databricks Runtime 18 LTS runs Python 3.12: pip refuses a wheel whose Requires-Python excludes it."""
    from packaging.specifiers import SpecifierSet

    match = re.search(r"^Requires-Python: (.+)$", built_wheel.metadata, re.M)
    assert match
    spec = SpecifierSet(match.group(1))
    assert "3.12.3" in spec and "3.11.9" in spec


def test_bundle_libraries_point_at_the_built_wheel(built_wheel: BuiltWheel) -> None:
    bundle: dict[str, Any] = load_bundle()
    build = bundle["artifacts"]["medallion_wheel"]["build"]
    assert build.split()[:4] == ["python", "-m", "pip", "wheel"] and "--no-deps" in build
    assert built_wheel.path.name.startswith("medallion-0.1.0-py3-none-any")
