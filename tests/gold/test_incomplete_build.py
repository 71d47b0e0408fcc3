"""A build whose data-quality results never reached gold.dq_results is redone; a complete one is skipped.

The runner asks gold.dq_results which (table, version) pairs hold results once per version of that table (kept
on the Lakehouse), not once per table: these tests prove the answer follows the table, in one process."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from gold_data import AIRLINES_DDL, FLIGHTS_DDL, PLANES_DDL, WEATHER_DDL, month_of_flights

from pipelines.runner import recorded_checks, run_table

NAME = "gold.carrier_monthly_performance"
DQ = "gold.dq_results"

pytestmark = pytest.mark.fast


def _silver(lakehouse, spark) -> None:
    flights, weather = month_of_flights(2013, 1, 5, "r1", random.Random(3))
    planes = [("N0", 2001, dt.datetime(2012, 1, 1, tzinfo=dt.UTC), None, True, "r1")]
    commit = {"medallion.run_id": "r1"}
    for name, rows, ddl in (
        ("silver.flights", flights, FLIGHTS_DDL),
        ("silver.weather", weather, WEATHER_DDL),
        ("silver.planes", planes, PLANES_DDL),
        ("silver.airlines", [("UA", "United", "r1"), ("AA", "American", "r1")], AIRLINES_DDL),
    ):
        lakehouse.write(spark.createDataFrame(rows, ddl), name, "overwrite", commit_info=commit)


def _pairs_in(lakehouse) -> set[tuple[str, int]]:
    return {(r[0], int(r[1])) for r in lakehouse.read(DQ).select("table_name", "table_version").collect()}


def test_a_build_without_its_dq_results_is_redone_and_a_complete_one_skipped(lakehouse, spark) -> None:
    _silver(lakehouse, spark)
    first = run_table(lakehouse, NAME, "g1")
    assert first.status == "ok" and first.version is not None
    assert (NAME, first.version) in recorded_checks(lakehouse) == _pairs_in(lakehouse)

    again = run_table(lakehouse, NAME, "g2")
    assert again.status == "skipped", again

    # As if g1 had died after its table commit: its DQ results are gone (a newer version of gold.dq_results,
    # so what this process knew of the older one no longer counts).
    lakehouse.delete(DQ, f"table_name = '{NAME}' AND table_version = {first.version}")
    assert (NAME, first.version) not in recorded_checks(lakehouse)
    redo = run_table(lakehouse, NAME, "g3")
    assert redo.status == "ok", redo
    assert "run g1 wrote version" in redo.reason and "redone" in redo.reason, redo.reason
    now = lakehouse.version(NAME)
    assert (NAME, now) in _pairs_in(lakehouse) and (NAME, now) in recorded_checks(lakehouse)

    assert run_table(lakehouse, NAME, "g4").status == "skipped"


def test_recorded_checks_follow_each_new_version_of_the_results_table(lakehouse, spark) -> None:
    from pipelines.ml.synthetic import dq_rows

    def results(run_id: str, table: str, version: int) -> None:
        lakehouse.write(dq_rows(spark, table, version, run_id=run_id), DQ, "append")

    assert recorded_checks(lakehouse) == frozenset()  # no results table yet
    results("r1", "silver.flights", 3)
    assert recorded_checks(lakehouse) == {("silver.flights", 3)}
    results("r2", "silver.flights", 4)
    results("r2", "gold.flight_features", 1)
    assert recorded_checks(lakehouse) == {
        ("silver.flights", 3),
        ("silver.flights", 4),
        ("gold.flight_features", 1),
    }
