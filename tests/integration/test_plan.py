"""``medallion plan``: an edited transform is seen (fingerprint), listed with what is downstream of it, and the
next run rebuilds exactly those; the plan reads no data (no Spark job); an invalid pipeline lists every
problem at once and exits 2."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import run_cli
from pipelines.config import ExpectationConf, TableConf, WriteConf
from pipelines.lakehouse import Lakehouse
from pipelines.landing import land_sample
from pipelines.plan import make_plan
from pipelines.runner import run_pipeline, select_tables

# The fast tier is the tests marked fast; the heavier ones here run in the full suite only.
_GROUPS = itertools.count()
ROOT = Path(__file__).resolve().parents[2]

MODULE = "plan_demo_transforms"
SOURCE = """
from pyspark.sql import functions as F


def carrier_names(airlines):
    return airlines.select("carrier", F.upper("name").alias("name"))


def name_lengths(carrier_names):
    return carrier_names.select("carrier", F.length("name").alias("letters"), "name")


def carrier_codes(airlines):
    return airlines.select("carrier")
"""


@pytest.fixture
def demo(lakehouse: Lakehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """bronze.airlines -> silver.airlines (the real ones, 16 landed rows) -> three gold tables whose
    transforms live in a module of tmp_path that the test edits."""
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / f"{MODULE}.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop(MODULE, None)
    settings = lakehouse.settings
    gold = {
        "gold.carrier_names": ("carrier_names", ("silver.airlines",)),
        "gold.carrier_name_lengths": ("name_lengths", ("gold.carrier_names",)),
        "gold.carrier_codes": ("carrier_codes", ("silver.airlines",)),
    }
    tables = {
        n: t
        for n, t in settings.tables.items()
        if t.system in ("dq_results", "pipeline_events", "ingest_manifest")
    }
    tables["bronze.airlines"] = settings.tables["bronze.airlines"]
    tables["silver.airlines"] = settings.tables["silver.airlines"]
    for name, (func, inputs) in gold.items():
        tables[name] = TableConf(
            layer="gold",
            description=f"demo {func}",
            inputs=inputs,
            transform=f"{MODULE}:{func}",
            write=WriteConf(mode="overwrite"),
        )
    lh = Lakehouse(dataclasses.replace(settings, tables=tables), lakehouse.store)
    land_sample(lh.settings, sources=["airlines"])
    return lh, folder / f"{MODULE}.py"


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))
    importlib.reload(importlib.import_module(MODULE))  # a new process would import the edited file


def _no_job_plan(lh: Lakehouse, **kwargs: Any) -> Any:
    sc = lh.spark.sparkContext
    group = f"plan-{next(_GROUPS)}"
    sc.setJobGroup(group, "medallion plan")
    try:
        plan = make_plan(lh, **kwargs)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    assert sc.statusTracker().getJobIdsForGroup(group) == [], "the plan ran a Spark job"
    return plan


def test_an_edited_transform_rebuilds_it_and_what_is_downstream_and_nothing_else(demo: Any) -> None:
    lh, module = demo
    tables = select_tables(lh.settings, None)
    first = run_pipeline(lh, tables, "r1")
    assert {r.status for r in first} == {"ok"}
    plan = _no_job_plan(lh)
    assert plan.valid, plan.problems
    assert {t.table: t.action for t in plan.tables if t.changes} == {}

    # A comment and a blank line only: nothing to rebuild.
    _edit(module, "def carrier_codes(airlines):\n", "def carrier_codes(airlines):\n    # every code\n\n")
    assert not [t for t in _no_job_plan(lh).tables if t.changes]

    _edit(module, 'F.upper("name")', 'F.lower("name")')
    plan = _no_job_plan(lh)
    assert plan.valid, plan.problems
    changed = {t.table: t for t in plan.tables if t.changes}
    assert {n: t.action for n, t in changed.items()} == {
        "gold.carrier_names": "rebuild",
        "gold.carrier_name_lengths": "update",
    }
    assert changed["gold.carrier_names"].reasons == ("transform changed",)
    assert changed["gold.carrier_name_lengths"].reasons == (
        "gold.carrier_names is rebuilt first: all its rows are read",
    )

    second = {r.table: r for r in run_pipeline(lh, tables, "r2")}
    assert {n for n, r in second.items() if r.status == "ok"} == {
        "gold.carrier_names",
        "gold.carrier_name_lengths",
    }
    assert {r.status for n, r in second.items() if n not in changed} == {"skipped"}
    names = {r["carrier"]: r["name"] for r in lh.read("gold.carrier_name_lengths").collect()}
    assert names["UA"] == "united air lines inc."
    assert not [t for t in _no_job_plan(lh).tables if t.changes]

    # The event log has one row per table of each run, with the reason.
    log = lh.read("gold.pipeline_events").where("run_id = 'r2'").collect()
    assert sorted(r["table_name"] for r in log) == sorted(tables)
    rebuilt = next(r for r in log if r["table_name"] == "gold.carrier_names")
    assert rebuilt["status"] == "ok" and rebuilt["reason"] == "transform changed"
    assert rebuilt["table_version"] == lh.version("gold.carrier_names") and rebuilt["engine"] == lh.engine


def test_changed_checks_rebuild_and_an_additive_schema_change_replaces_the_schema(demo: Any) -> None:
    lh, module = demo
    tables = select_tables(lh.settings, None)
    run_pipeline(lh, tables, "r1")
    _edit(module, 'return airlines.select("carrier")\n', 'return airlines.select("carrier", "name")\n')
    plan = _no_job_plan(lh, selectors=["gold.carrier_codes"])
    assert [(t.table, t.action) for t in plan.tables] == [("gold.carrier_codes", "rebuild")]
    assert plan.tables[0].reasons[0] == "transform changed"
    assert "schema change (additive): +name" in plan.tables[0].reasons
    step = run_pipeline(lh, ["gold.carrier_codes"], "r2")[0]
    assert step.status == "ok" and lh.schema("gold.carrier_codes").fieldNames() == [
        "carrier",
        "name",
        "_run_id",
    ]

    conf = lh.settings.tables["silver.airlines"]
    checked = dataclasses.replace(conf, expectations=conf.expectations[:-1])
    lh2 = Lakehouse(
        dataclasses.replace(lh.settings, tables={**lh.settings.tables, "silver.airlines": checked}), lh.store
    )
    plan = _no_job_plan(lh2, selectors=["silver.airlines+"])
    actions = {t.table: (t.action, t.reasons[0]) for t in plan.tables}
    assert actions["silver.airlines"] == ("rebuild", "checks changed")
    assert actions["gold.carrier_codes"][0] == actions["gold.carrier_names"][0] == "update"


@pytest.mark.fast
def test_an_invalid_pipeline_lists_every_problem_at_once(demo: Any) -> None:
    lh, module = demo
    settings = lh.settings
    tables = dict(settings.tables)
    names = tables["gold.carrier_names"]
    tables["gold.carrier_names"] = dataclasses.replace(names, columns={"carrier": "code", "_run_id": "run"})
    tables["gold.carrier_codes"] = dataclasses.replace(
        tables["gold.carrier_codes"],
        expectations=(ExpectationConf(name="short", type="expression", expr="length(code) = 2"),),
    )
    tables["gold.carrier_name_lengths"] = dataclasses.replace(
        tables["gold.carrier_name_lengths"], transform=f"{MODULE}:no_such_function"
    )
    plan = _no_job_plan(Lakehouse(dataclasses.replace(settings, tables=tables), lh.store))
    assert not plan.valid
    assert len(plan.problems) == 3, plan.problems
    assert any("'name'" in p and "not declared" in p for p in plan.problems)  # produced, not declared
    assert any("'short'" in p and "does not apply" in p for p in plan.problems)
    assert any("no_such_function" in p and "cannot be imported" in p for p in plan.problems)

    cyclic = {
        **tables,
        "gold.carrier_names": dataclasses.replace(names, inputs=("gold.carrier_name_lengths",)),
    }
    plan = make_plan(Lakehouse(dataclasses.replace(settings, tables=cyclic), lh.store))
    assert [p for p in plan.problems if "cycle" in p] == [
        "tables form a cycle: gold.carrier_names -> gold.carrier_name_lengths -> gold.carrier_names"
    ]


@pytest.mark.fast
def test_the_cli_lists_every_configuration_problem_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    silver = conf / "tables" / "silver.yml"
    silver.write_text(
        silver.read_text()
        .replace("inputs: [bronze.weather]", "inputs: [bronze.wether]")
        .replace("write: {mode: overwrite}", "write: {mode: replace}", 1)
    )
    monkeypatch.setenv("MEDALLION_CONF_DIR", str(conf))
    monkeypatch.setenv("MEDALLION_HOME", str(tmp_path / "home"))
    for command in (["plan"], ["run", "--dry-run"]):
        assert run_cli(command) == 2
        captured = capsys.readouterr()
        problems = [line for line in captured.out.splitlines() if line.startswith("  - ")]
        assert len(problems) == 2 and "InvalidPipelineError" in captured.err
        assert any("bronze.wether" in p for p in problems) and any("'replace'" in p for p in problems)
    assert run_cli(["tables"]) == 2  # other commands: the one-line error only
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "1 more: medallion plan lists them all" in captured.err
    assert not (tmp_path / "home" / "lakehouse").exists()


@pytest.mark.fast
def test_plan_help_says_what_it_compares(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli(["plan", "--help"])
    text = capsys.readouterr().out
    assert "fingerprint" in text and "exit" in text.lower()
    assert textwrap.dedent(text).count("medallion plan") >= 2
