"""Job entry points and notebooks run the same code as the CLI.

Every notebook declares ``INPUT_TABLES`` (and optionally ``OPTIONAL_TABLES``). The notebook test builds those
tables (and everything upstream of them) on one month of the sample, then runs every cell locally. A
notebook whose input tables are not declared in conf yet is skipped, with the missing tables as the reason:
it starts running by itself once the tables land.
"""

from __future__ import annotations

import ast
import runpy
from pathlib import Path
from typing import Any

import pytest

from jobs.task import build_argv, parser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
ALL_FLIGHTS = 336_776


@pytest.mark.fast
def test_generic_task_arguments_map_to_the_cli() -> None:
    args = parser().parse_args(["--env", "dev", "--catalog", "c1", "--select", "bronze", "--run-id", "42"])
    assert build_argv(args) == ["--env", "dev", "run", "--select", "bronze", "--run-id", "42", "--no-land"]


def declared_tables(notebook: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(INPUT_TABLES, OPTIONAL_TABLES) of a notebook, read without running it."""
    found: dict[str, tuple[str, ...]] = {}
    for node in ast.walk(ast.parse(notebook.read_text())):
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id in ("INPUT_TABLES", "OPTIONAL_TABLES"):
            found[target.id] = tuple(ast.literal_eval(node.value))
    return found.get("INPUT_TABLES", ()), found.get("OPTIONAL_TABLES", ())


@pytest.mark.fast
def test_every_notebook_is_databricks_source_and_declares_its_inputs() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_explore_bronze.py",
        "02_analyst_queries_gold.py",
        "03_model_report.py",
    ]
    for notebook in NOTEBOOKS:
        text = notebook.read_text()
        assert text.startswith("# Databricks notebook source\n")
        assert text.count("\n# COMMAND ----------\n") >= 2
        inputs, _ = declared_tables(notebook)
        assert inputs and all(t.partition(".")[0] in ("bronze", "silver", "gold") for t in inputs)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_cells_run_locally(
    notebook: Path, full_lakehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every cell of every notebook, against the tables of the session's full `medallion run`."""
    lakehouse = full_lakehouse
    settings = lakehouse.settings
    inputs, _optional = declared_tables(notebook)
    for table in inputs:
        assert lakehouse.exists(table), f"{notebook.name} reads {table}, which `medallion run` did not build"

    monkeypatch.setenv("MEDALLION_HOME", str(Path(settings.paths.home)))
    monkeypatch.setenv("MEDALLION_LAKEHOUSE", str(settings.lakehouse_dir))
    namespace = runpy.run_path(str(notebook), run_name="__main__")
    assert namespace["lakehouse"].settings.lakehouse_dir == settings.lakehouse_dir  # read what we built
    if notebook.stem.startswith("01_"):
        assert namespace["flights"].count() == ALL_FLIGHTS
        summary = namespace["reports"].files_summary(namespace["flights"]).collect()
        assert len(summary) == 12 and sum(r["rows"] for r in summary) == ALL_FLIGHTS
