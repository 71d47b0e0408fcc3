"""Job entry points and notebooks run the same code as the CLI.

Every notebook declares ``INPUT_TABLES`` (and optionally ``OPTIONAL_TABLES``). The notebook test builds those
tables (and everything upstream of them) on one month of the sample, then runs every cell locally. A
notebook whose input tables are not declared in conf yet is skipped, with the missing tables as the reason:
it starts running by itself once the tables land.
"""

from __future__ import annotations

import ast
import os
import runpy
from pathlib import Path
from typing import Any

import pytest

from jobs.task import build_argv, parser
from pipelines.config import Settings
from pipelines.landing import land_sample

pytestmark = pytest.mark.fast
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
JANUARY_FLIGHTS = 27_004


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


def upstream(settings: Settings, names: list[str]) -> set[str]:
    """The tables and everything they read (inputs and the reference tables of their checks)."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in settings.tables:
            continue
        seen.add(name)
        table = settings.tables[name]
        todo += list(table.inputs)
        todo += [e.ref_table for e in getattr(table, "expectations", ()) if getattr(e, "ref_table", None)]
    return seen


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


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_cells_run_locally(notebook: Path, lakehouse: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = lakehouse.settings
    inputs, optional = declared_tables(notebook)
    missing = [t for t in inputs if t not in settings.tables]
    if missing:
        pytest.skip(f"{notebook.name}: input table(s) not declared in conf/tables yet: {', '.join(missing)}")
    from pipelines.runner import run_pipeline, topological_order

    wanted = upstream(settings, [*inputs, *(t for t in optional if t in settings.tables)])
    sources = sorted({settings.tables[t].source for t in wanted if settings.tables[t].source})
    land_sample(settings, months=[1], sources=sources)
    run_pipeline(lakehouse, [t for t in topological_order(settings) if t in wanted], "nb")
    for table in inputs:
        assert lakehouse.exists(table), f"{table} was not built"

    monkeypatch.setenv("MEDALLION_HOME", str(Path(settings.paths.home)))
    monkeypatch.setenv("MEDALLION_LAKEHOUSE", str(settings.lakehouse_dir))
    namespace = runpy.run_path(str(notebook), run_name="__main__")
    assert os.environ["MEDALLION_LAKEHOUSE"] == str(settings.lakehouse_dir)
    assert namespace["lakehouse"].settings.lakehouse_dir == settings.lakehouse_dir  # read what we built
    if notebook.stem.startswith("01_"):
        assert namespace["flights"].count() == JANUARY_FLIGHTS
        summary = namespace["reports"].files_summary(namespace["flights"]).collect()
        assert [r["rows"] for r in summary] == [JANUARY_FLIGHTS]
