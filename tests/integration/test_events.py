"""The event log (gold.pipeline_events): one row per table per run, failed steps with their error, and rows a
crash lost recovered from the tables' own commits, without changing what the run does."""

from __future__ import annotations

import dataclasses

import pytest

from pipelines.cli import run_cli
from pipelines.config import ExpectationConf
from pipelines.errors import DataQualityError
from pipelines.lakehouse import Lakehouse
from pipelines.landing import land_sample
from pipelines.runner import run_pipeline, run_table

# The fast tier is the tests marked fast; the heavier ones here run in the full suite only.
TABLES = ["bronze.airlines", "silver.airlines"]


def _events(lh: Lakehouse, run_id: str) -> dict[str, dict]:
    rows = lh.read(lh.settings.system_table("pipeline_events")).where(f"run_id = '{run_id}'").collect()
    return {r["table_name"]: r.asDict() for r in rows}


@pytest.mark.fast
def test_a_step_whose_event_row_was_lost_is_recovered_and_still_skipped(lakehouse: Lakehouse) -> None:
    land_sample(lakehouse.settings, sources=["airlines"])
    # A run that died after each table's commit, before its event row: run_table writes no event.
    built = {name: run_table(lakehouse, name, "crashed") for name in TABLES}
    assert not lakehouse.exists("gold.pipeline_events")

    again = run_pipeline(lakehouse, TABLES, "next")
    assert [r.status for r in again] == ["skipped", "skipped"]  # the commits mark the steps done
    recovered = _events(lakehouse, "crashed")
    assert {n: (r["status"], r["table_version"]) for n, r in recovered.items()} == {
        n: ("recovered", built[n].version) for n in TABLES
    }
    rows = _events(lakehouse, "next")
    assert {n: r["status"] for n, r in rows.items()} == dict.fromkeys(TABLES, "skipped")
    assert rows["silver.airlines"]["reason"] == "inputs unchanged"
    assert rows["bronze.airlines"]["engine"] == lakehouse.engine

    run_pipeline(lakehouse, TABLES, "third")  # nothing more to recover
    log = lakehouse.read("gold.pipeline_events")
    assert log.where("status = 'recovered'").count() == 2 and log.count() == 6


@pytest.mark.fast
def test_a_failed_step_is_logged_with_its_error_and_the_error_propagates(lakehouse: Lakehouse) -> None:
    land_sample(lakehouse.settings, sources=["airlines"])
    conf = lakehouse.settings.tables["silver.airlines"]
    impossible = ExpectationConf(name="never", type="expression", expr="carrier = 'none'", action="fail")
    tables = {
        **lakehouse.settings.tables,
        "silver.airlines": dataclasses.replace(conf, expectations=(impossible,)),
    }
    lh = Lakehouse(dataclasses.replace(lakehouse.settings, tables=tables), lakehouse.store)
    with pytest.raises(DataQualityError):
        run_pipeline(lh, TABLES, "r1")
    rows = _events(lh, "r1")
    assert rows["bronze.airlines"]["status"] == "ok" and rows["bronze.airlines"]["rows_written"] == 16
    failed = rows["silver.airlines"]
    assert failed["status"] == "failed" and failed["error_class"] == "DataQualityError"
    assert "never" in failed["error_message"] and "\n" not in failed["error_message"]
    assert failed["table_version"] is None  # nothing was written


def test_the_event_log_is_a_declared_table_for_history_and_sql(
    lakehouse: Lakehouse, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    land_sample(lakehouse.settings, sources=["airlines"])
    run_pipeline(lakehouse, TABLES, "r1")
    monkeypatch.setenv("MEDALLION_HOME", lakehouse.settings.paths.home)
    for var in ("MEDALLION_LAKEHOUSE", "MEDALLION_LANDING", "MEDALLION_STATE", "MEDALLION_ENV"):
        monkeypatch.delenv(var, raising=False)
    assert run_cli(["history", "gold.dq_results"]) == 0
    assert run_cli(["history", "gold.pipeline_events"]) == 0
    assert "r1" in capsys.readouterr().out
    sql = "SELECT table_name, status FROM gold.pipeline_events WHERE run_id = 'r1' ORDER BY table_name"
    assert run_cli(["sql", "--format", "csv", sql]) == 0
    assert capsys.readouterr().out.split() == [
        "table_name,status",
        "bronze.airlines,ok",
        "silver.airlines,ok",
    ]


@pytest.mark.fast
def test_a_run_writes_its_event_rows_in_one_commit_and_an_interrupt_keeps_the_rows_of_the_steps_that_ran(
    lakehouse: Lakehouse,
) -> None:
    land_sample(lakehouse.settings, sources=["airlines"])
    run_pipeline(lakehouse, TABLES, "r1")
    log = lakehouse.settings.system_table("pipeline_events")

    def row_commits(run_id: str) -> int:
        return sum(1 for c in lakehouse.history(log) if c["custom"].get("medallion.run_id") == run_id)

    assert row_commits("r1") == 1  # one commit holds both rows
    assert set(_events(lakehouse, "r1")) == set(TABLES)

    def interrupted(name: str):
        if name == "silver.airlines":
            raise KeyboardInterrupt
        return run_table(lakehouse, name, "r2")

    from pipelines.events import EventLog

    with pytest.raises(KeyboardInterrupt):
        EventLog(lakehouse, "r2", "run").run(TABLES, interrupted)
    rows = _events(lakehouse, "r2")
    assert {n: r["status"] for n, r in rows.items()} == {"bronze.airlines": "skipped"}  # nothing new landed
    assert row_commits("r2") == 1
