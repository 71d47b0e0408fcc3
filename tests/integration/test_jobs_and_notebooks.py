"""Job entry points and notebooks run the same code as the CLI."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

from jobs.task import build_argv, parser
from pipelines.landing import land_sample

pytestmark = pytest.mark.fast
ROOT = Path(__file__).resolve().parents[2]


def test_task_arguments_map_to_the_cli() -> None:
    args = parser().parse_args(["--env", "dev", "--catalog", "c1", "--select", "bronze", "--run-id", "42"])
    assert build_argv(args) == ["--env", "dev", "run", "--select", "bronze", "--run-id", "42", "--no-land"]


def test_bundle_tasks_call_an_existing_entry_point_with_parseable_parameters() -> None:
    import tomllib

    import yaml

    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    tasks = [t for job in bundle["resources"]["jobs"].values() for t in job["tasks"]]
    assert tasks
    for task in tasks:
        wheel_task = task["python_wheel_task"]
        assert wheel_task["entry_point"] in scripts
        parser().parse_args(wheel_task["parameters"])  # raises SystemExit on a parameter the parser rejects


def test_notebook_cells_run_locally(lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    land_sample(lakehouse.settings, months=[1], sources=["flights"])
    from pipelines.runner import run_table

    run_table(lakehouse, "bronze.flights", "nb")
    home = Path(lakehouse.settings.paths.home)
    monkeypatch.setenv("MEDALLION_HOME", str(home))
    monkeypatch.setenv("MEDALLION_LAKEHOUSE", str(lakehouse.settings.lakehouse_dir))
    for notebook in sorted((ROOT / "notebooks").glob("*.py")):
        assert notebook.read_text().startswith("# Databricks notebook source")
        namespace = runpy.run_path(str(notebook))
        assert os.environ["MEDALLION_HOME"] == str(home)
        if "flights" in namespace:
            assert namespace["flights"].count() > 0
