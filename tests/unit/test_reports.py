"""The notebooks' logic (pipelines.reports) on small inline data."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipelines import reports

pytestmark = pytest.mark.fast
T0 = dt.datetime(2026, 1, 1, 5, 0)


def test_files_summary_and_rescued_records(spark: Any) -> None:
    bronze = spark.createDataFrame(
        [
            ("a.csv", None, None, T0, "r1"),
            ("a.csv", "x,y,z", "bad", T0, "r1"),
            ("b.csv", None, None, T0, "r2"),
        ],
        "_source_file string, _corrupt_record string, _rescue_reason string, _ingested_at timestamp, _run_id string",
    )
    summary = [
        (r["_source_file"], r["rows"], r["rescued"], r["runs"])
        for r in reports.files_summary(bronze).collect()
    ]
    assert summary == [("a.csv", 2, 1, 1), ("b.csv", 1, 0, 1)]
    assert [tuple(r) for r in reports.rescued_records(bronze).collect()] == [("a.csv", "bad", "x,y,z")]


def test_quarantine_reasons_count_each_failed_check(spark: Any) -> None:
    quarantine = spark.createDataFrame([(["fk", "range"],), (["fk"],)], "failed_checks array<string>")
    assert [tuple(r) for r in reports.quarantine_reasons(quarantine).collect()] == [("fk", 2), ("range", 1)]


def test_latest_dq_result_per_check(spark: Any) -> None:
    cols = (
        "run_id string, table_name string, check_name string, check_type string, action string, "
        "rows_checked long, rows_failed long, passed boolean, checked_at timestamp"
    )
    rows = [
        ("r1", "silver.flights", "not_null_key", "row", "fail", 10, 1, False, T0),
        ("r2", "silver.flights", "not_null_key", "row", "fail", 12, 0, True, T0 + dt.timedelta(days=1)),
        ("r1", "silver.weather", "unique_key", "dataset", "warn", 5, 0, True, T0),
    ]
    latest = reports.latest_dq_results(spark.createDataFrame(rows, cols)).collect()
    assert [(r["table_name"], r["run_id"], r["passed"]) for r in latest] == [
        ("silver.flights", "r2", True),
        ("silver.weather", "r1", True),
    ]


def test_carrier_ranking_reaggregates_the_monthly_counts(spark: Any) -> None:
    perf = spark.createDataFrame(
        [
            # carrier, year, month, flights, cancelled, completed, on time, avg arr delay, p90
            ("AA", 2013, 1, 100, 1, 99, 89, 5.0, 30.0),
            ("AA", 2013, 2, 300, 3, 297, 148, 15.0, 60.0),
            ("UA", 2013, 1, 100, 0, 100, 70, 8.0, 40.0),
            ("UA", 2012, 1, 100, 9, 91, 9, 90.0, 99.0),
        ],
        "carrier string, year int, month int, flights long, cancelled_flights long, completed_flights long, "
        "on_time_flights long, avg_arr_delay double, p90_arr_delay double",
    )
    ranking = reports.carrier_ranking(perf, year=2013).collect()
    assert [r["carrier"] for r in ranking] == ["UA", "AA"]
    aa = ranking[1]
    assert (aa["flights"], aa["cancelled_flights"]) == (400, 4)
    assert aa["on_time_share"] == pytest.approx(237 / 396)
    assert aa["avg_arr_delay"] == pytest.approx((5.0 * 99 + 15.0 * 297) / 396)


def test_worst_routes_respect_the_minimum_and_weights(spark: Any) -> None:
    routes = spark.createDataFrame(
        [
            ("JFK", "LAX", 50, 50, 10.0),
            ("JFK", "LAX", 50, 50, 30.0),
            ("EWR", "SFO", 10, 10, 99.0),
            ("LGA", "ORD", 200, 200, 5.0),
        ],
        "origin string, dest string, flights long, completed_flights long, avg_arr_delay double",
    )
    worst = [
        (r["origin"], r["dest"], r["avg_arr_delay"]) for r in reports.worst_routes(routes, 100).collect()
    ]
    assert worst == [("JFK", "LAX", 20.0), ("LGA", "ORD", 5.0)]


def test_prediction_outcomes_confusion_and_calibration(spark: Any) -> None:
    predictions = spark.createDataFrame(
        [
            ("f1", 0.9, 1, "3"),
            ("f2", 0.8, 1, "3"),
            ("f3", 0.2, 0, "3"),
            ("f4", 0.1, 0, "3"),
            ("f5", 0.95, 1, "3"),
        ],
        "flight_id string, probability double, predicted_label int, model_version string",
    )
    features = spark.createDataFrame(
        [("f1", 1), ("f2", 0), ("f3", 1), ("f4", 0), ("f5", None)],
        "flight_id string, label int",
    ).selectExpr("flight_id", "date'2013-01-01' AS flight_date", "'AA' AS carrier", "label")
    outcomes = reports.prediction_outcomes(predictions, features)
    assert outcomes.count() == 4  # f5 has no known outcome yet
    (row,) = reports.confusion_counts(outcomes).collect()
    assert (row["tp"], row["fp"], row["tn"], row["fn"]) == (1, 1, 1, 1)
    assert row["precision"] == row["recall"] == row["accuracy"] == 0.5
    bins = {
        r["bin"]: (r["flights"], r["observed_rate"]) for r in reports.calibration(outcomes, bins=2).collect()
    }
    assert bins == {0: (2, 0.5), 1: (2, 0.5)}
