"""Silver transformations on inline data: typing, times, deduplication, the DST hour, SCD1 and SCD2."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from chispa import assert_df_equality

from pipelines.silver import dimensions, flights, planes, weather

# The fast tier is the tests marked fast; the heavier ones here run in the full suite only.

FLIGHT_COLS = flights.SOURCE_COLUMNS
META_DDL = (
    "_corrupt_record string, _rescue_reason string, _source_file string, _source_modified_at timestamp, "
    "_ingested_at timestamp, _run_id string"
)


def _ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def _at(value: Any) -> float:
    """An instant as epoch seconds: PySpark returns TIMESTAMP values as naive local datetimes."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.timestamp()


def bronze_rows(spark: Any, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> Any:
    """Bronze-shaped DataFrame: every landed column as text, plus the ingestion metadata."""
    ddl = ", ".join(f"`{c}` string" for c in columns) + ", " + META_DDL
    defaults = {
        "_corrupt_record": None,
        "_rescue_reason": None,
        "_source_file": "file:/landing/x.csv",
        "_source_modified_at": _ts("2024-01-01 00:00:00"),
        "_ingested_at": _ts("2024-01-01 00:00:00"),
        "_run_id": "r1",
    }
    data = [
        tuple({**dict.fromkeys(columns, "NA"), **defaults, **r}[c] for c in (*columns, *defaults))
        for r in rows
    ]
    return spark.createDataFrame(data, ddl)


def flight(**over: Any) -> dict[str, Any]:
    base = {
        "year": "2013", "month": "1", "day": "1", "dep_time": "517", "sched_dep_time": "515", "dep_delay": "2",
        "arr_time": "830", "sched_arr_time": "819", "arr_delay": "11", "carrier": "UA", "flight": "1545",
        "tailnum": "N14228", "origin": "EWR", "dest": "IAH", "air_time": "227", "distance": "1400", "hour": "5",
        "minute": "15", "time_hour": "2013-01-01T10:00:00Z",
    }  # fmt: skip
    return {**base, **over}


@pytest.fixture
def airports(spark: Any) -> Any:
    return spark.createDataFrame(
        [("IAH", "America/Chicago"), ("LAX", "America/Los_Angeles"), ("ORD", "America/Chicago")],
        "faa string, tzone string",
    )


@pytest.mark.fast
def test_flight_times_local_and_utc(spark: Any, airports: Any) -> None:
    rows = [
        flight(),
        # Departs 23:59, scheduled to arrive 02:50 local next day (overnight), 2 minutes late.
        flight(
            flight="1",
            dest="LAX",
            sched_dep_time="2359",
            dep_time="1",
            dep_delay="2",
            sched_arr_time="250",
            arr_time="252",
            arr_delay="2",
            time_hour="2013-01-02T04:00:00Z",
        ),  # fmt: skip
        # Delayed from 21:00 to 01:30 next day (dep_time alone would say 1:30 on the 1st).
        flight(
            flight="2",
            dest="ORD",
            sched_dep_time="2100",
            dep_time="130",
            dep_delay="270",
            sched_arr_time="2300",
            arr_time="320",
            arr_delay="260",
            time_hour="2013-01-02T02:00:00Z",
        ),  # fmt: skip
        # Cancelled: no departure, no arrival.
        flight(flight="3", dep_time="NA", dep_delay="NA", arr_time="NA", arr_delay="NA", air_time="NA"),
        # 2400 is midnight at the end of the day.
        flight(
            flight="4",
            sched_dep_time="2400",
            dep_time="2400",
            dep_delay="0",
            sched_arr_time="300",
            arr_time="300",
            arr_delay="0",
            time_hour="2013-01-02T05:00:00Z",
        ),  # fmt: skip
    ]
    out = flights.transform(bronze_rows(spark, FLIGHT_COLS, rows), airports)
    got = {r["flight"]: r for r in out.collect()}
    assert len(got) == 5
    first = got[1545]
    assert first["flight_id"] == "20130101-UA-1545-EWR"
    assert first["sched_dep_local"] == _ts("2013-01-01 05:15:00")
    assert _at(first["sched_dep_utc"]) == _at("2013-01-01 10:15:00+00:00")
    assert first["arr_local"] == _ts("2013-01-01 08:30:00")
    assert _at(first["arr_utc"]) == _at("2013-01-01 14:30:00+00:00")  # Houston is UTC-6 in January
    assert first["cancelled"] is False

    overnight = got[1]
    assert overnight["sched_arr_local"] == _ts("2013-01-02 02:50:00")
    assert overnight["dep_local"] == _ts("2013-01-02 00:01:00")
    assert _at(overnight["arr_utc"]) == _at("2013-01-02 10:52:00+00:00")

    delayed = got[2]
    assert delayed["dep_local"] == _ts("2013-01-02 01:30:00")
    assert _at(delayed["dep_utc"]) == _at("2013-01-02 06:30:00+00:00")
    assert delayed["arr_local"] == _ts("2013-01-02 03:20:00")

    cancelled = got[3]
    assert (
        cancelled["cancelled"] is True and cancelled["dep_local"] is None and cancelled["arr_delay"] is None
    )

    midnight = got[4]
    assert midnight["sched_dep_local"] == _ts("2013-01-02 00:00:00")
    assert _at(midnight["time_hour"]) == _at("2013-01-02 05:00:00+00:00")


@pytest.mark.fast
def test_untrusted_text_never_crashes_and_is_flagged(spark: Any, airports: Any) -> None:
    rows = [flight(dep_delay="abc", distance="1,400", flight="77"), flight(year="NA", flight="78")]
    out = flights.transform(bronze_rows(spark, FLIGHT_COLS, rows), airports)
    got = {r["flight"]: r for r in out.collect()}
    assert got[77]["dep_delay"] is None and got[77]["distance"] is None
    assert sorted(got[77]["__cast_errors"].split(",")) == ["dep_delay", "distance"]
    assert got[77]["__source_record"]["dep_delay"] == "abc"  # the original text is kept for quarantine
    assert got[78]["flight_date"] is None and got[78]["__cast_errors"] == ""


@pytest.mark.fast
def test_latest_delivery_wins_and_null_keys_are_not_collapsed(spark: Any, airports: Any) -> None:
    old = {"_source_modified_at": _ts("2024-01-01 00:00:00"), "_source_file": "file:/l/flights_2013_01.csv"}
    new = {"_source_modified_at": _ts("2024-02-01 00:00:00"), "_source_file": "file:/l/flights_2013_01.csv"}
    rows = [
        flight(arr_delay="11", **old),
        flight(arr_delay="99", **new),
        flight(carrier="NA", flight="5", **old),
        flight(carrier="NA", flight="5", **new),
    ]
    out = flights.transform(bronze_rows(spark, FLIGHT_COLS, rows), airports)
    got = out.collect()
    assert len(got) == 3
    kept = [r for r in got if r["carrier"] == "UA"]
    assert [r["arr_delay"] for r in kept] == [99]
    assert sum(1 for r in got if r["carrier"] is None) == 2


@pytest.mark.fast
def test_weather_dst_hour_keeps_both_readings_and_joins_once(spark: Any) -> None:
    cols = weather.SOURCE_COLUMNS
    base = {
        "origin": "JFK",
        "year": "2013",
        "month": "11",
        "day": "3",
        "hour": "1",
        "temp": "50",
        "visib": "10",
    }
    rows = [
        {**base, "time_hour": "2013-11-03T05:00:00Z", "temp": "50.0"},  # 1 AM EDT
        {**base, "time_hour": "2013-11-03T06:00:00Z", "temp": "48.9"},  # 1 AM EST, the repeated hour
        {**base, "hour": "2", "time_hour": "2013-11-03T07:00:00Z"},
    ]
    wx = weather.transform(bronze_rows(spark, cols, rows))
    got = sorted(wx.collect(), key=lambda r: r["time_hour"])
    assert [r["temp"] for r in got] == [50.0, 48.9, 50.0]
    assert got[0]["time_local"] == got[1]["time_local"] == _ts("2013-11-03 01:00:00")

    airports = spark.createDataFrame([("LAX", "America/Los_Angeles")], "faa string, tzone string")
    fl = [
        flight(
            month="11",
            day="3",
            origin="JFK",
            dest="LAX",
            flight="10",
            sched_dep_time="130",
            dep_time="130",
            dep_delay="0",
            sched_arr_time="430",
            arr_time="430",
            arr_delay="0",
            time_hour="2013-11-03T05:00:00Z",
        ),  # fmt: skip
        flight(
            month="11",
            day="3",
            origin="JFK",
            dest="LAX",
            flight="11",
            sched_dep_time="159",
            dep_time="159",
            dep_delay="0",
            sched_arr_time="500",
            arr_time="500",
            arr_delay="0",
            time_hour="2013-11-03T06:00:00Z",
        ),  # fmt: skip
    ]
    f = flights.transform(bronze_rows(spark, FLIGHT_COLS, fl), airports)
    joined = f.join(wx, ["origin", "time_hour"], "left").select("flight", "temp").collect()
    assert sorted((r["flight"], r["temp"]) for r in joined) == [(10, 50.0), (11, 48.9)]


@pytest.mark.fast
def test_dimension_latest_snapshot_per_key(spark: Any) -> None:
    rows = [
        {"carrier": "UA", "name": "United Air Lines Inc.", "_source_file": "file:/l/airlines_2013-01-01.csv"},
        {"carrier": "ua", "name": "United Airlines", "_source_file": "file:/l/airlines_2013-06-01.csv"},
        {
            "carrier": "AA",
            "name": "American Airlines Inc.",
            "_source_file": "file:/l/airlines_2013-01-01.csv",
        },
    ]
    out = dimensions.airlines(bronze_rows(spark, dimensions.AIRLINE_COLUMNS, rows))
    got = {r["carrier"]: (r["name"], r["_snapshot_at"]) for r in out.collect()}
    assert got == {
        "UA": ("United Airlines", _ts("2013-06-01 00:00:00")),
        "AA": ("American Airlines Inc.", _ts("2013-01-01 00:00:00")),
    }


# ---- SCD2 -----------------------------------------------------------------------------------------------


def _snapshot(date: str, planes_rows: list[tuple[str, str]], ingested: str) -> list[dict[str, Any]]:
    """A planes snapshot file: (tailnum, seats) pairs; the date is in the file name."""
    return [
        {
            "tailnum": t,
            "year": "2004",
            "type": "Fixed wing multi engine",
            "manufacturer": "EMBRAER",
            "model": "EMB-145XR",
            "engines": "2",
            "seats": seats,
            "speed": "NA",
            "engine": "Turbo-fan",
            "_source_file": f"file:/landing/planes/planes_{date}.csv",
            "_ingested_at": _ts(ingested),
        }
        for t, seats in planes_rows
    ]


def _history(spark: Any, *snapshots: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    rows = [r for s in snapshots for r in s]
    out = planes.transform(bronze_rows(spark, planes.SOURCE_COLUMNS, rows))
    return sorted(
        (r["tailnum"], r["seats"], r["valid_from"].date().isoformat(),
         r["valid_to"].date().isoformat() if r["valid_to"] else None, r["is_current"])
        for r in out.collect()
    )  # fmt: skip


@pytest.mark.fast
def test_scd2_in_order_with_change_deletion_and_return(spark: Any) -> None:
    s1 = _snapshot("2013-01-01", [("N1", "55"), ("N2", "100")], "2024-01-01 00:00:00")
    s2 = _snapshot("2013-02-01", [("N1", "55"), ("N2", "120")], "2024-02-01 00:00:00")
    s3 = _snapshot("2013-03-01", [("N2", "120")], "2024-03-01 00:00:00")  # N1 leaves the registry
    s4 = _snapshot("2013-04-01", [("N1", "50"), ("N2", "120")], "2024-04-01 00:00:00")  # N1 returns
    assert _history(spark, s1, s2, s3, s4) == [
        ("N1", 50, "2013-04-01", None, True),
        ("N1", 55, "2013-01-01", "2013-03-01", False),
        ("N2", 100, "2013-01-01", "2013-02-01", False),
        ("N2", 120, "2013-02-01", None, True),
    ]


@pytest.mark.fast
def test_scd2_late_out_of_order_snapshot_lands_where_it_belongs(spark: Any) -> None:
    s1 = _snapshot("2013-01-01", [("N1", "55")], "2024-01-01 00:00:00")
    s3 = _snapshot("2013-03-01", [("N1", "70")], "2024-02-01 00:00:00")
    late_s2 = _snapshot("2013-02-01", [("N1", "60")], "2024-03-01 00:00:00")  # arrives last
    expected = [
        ("N1", 55, "2013-01-01", "2013-02-01", False),
        ("N1", 60, "2013-02-01", "2013-03-01", False),
        ("N1", 70, "2013-03-01", None, True),
    ]
    assert _history(spark, s1, s3, late_s2) == expected
    assert _history(spark, late_s2, s3, s1) == expected


def test_scd2_identical_redelivery_changes_nothing(spark: Any) -> None:
    s1 = _snapshot("2013-01-01", [("N1", "55")], "2024-01-01 00:00:00")
    s2 = _snapshot("2013-02-01", [("N1", "60")], "2024-02-01 00:00:00")
    again = _snapshot("2013-02-01", [("N1", "60")], "2024-05-01 00:00:00")  # same file delivered twice
    unchanged_later = _snapshot("2013-03-01", [("N1", "60")], "2024-06-01 00:00:00")
    once = _history(spark, s1, s2)
    assert _history(spark, s1, s2, again) == once
    assert (
        _history(spark, s1, s2, again, unchanged_later)
        == once
        == [
            ("N1", 55, "2013-01-01", "2013-02-01", False),
            ("N1", 60, "2013-02-01", None, True),
        ]
    )


@pytest.mark.fast
def test_scd2_schema_is_stable(spark: Any) -> None:
    s1 = _snapshot("2013-01-01", [("N1", "55")], "2024-01-01 00:00:00")
    out = planes.transform(bronze_rows(spark, planes.SOURCE_COLUMNS, s1))
    out = out.drop(*[c for c in out.columns if c.startswith("__")])  # in-flight columns: never written
    expected = spark.createDataFrame(
        [
            (
                "N1",
                2004,
                "Fixed wing multi engine",
                "EMBRAER",
                "EMB-145XR",
                2,
                55,
                None,
                "Turbo-fan",
                _ts("2013-01-01 00:00:00"),
                None,
                True,
            )
        ],  # fmt: skip
        "tailnum string, year_built int, type string, manufacturer string, model string, engines int, "
        "seats int, speed int, engine string, valid_from timestamp, valid_to timestamp, is_current boolean",
    )
    assert_df_equality(
        out.drop("_row_hash"),
        expected,
        ignore_nullable=True,
        ignore_column_order=False,
        ignore_row_order=True,
    )
