"""Gold transformations on crafted inline data: exact values, no leakage, plane age, weather join."""

from __future__ import annotations

import datetime as dt

import pytest
from gold_data import flight

from pipelines.gold.features import FEATURE_COLUMNS, flight_features
from pipelines.gold.performance import airport_weather_delays, carrier_monthly_performance, route_daily_stats
from pipelines.outputs import TableOutput
from pipelines.runner import replace_predicate

pytestmark = pytest.mark.fast
UTC = dt.UTC
Q_DEP = dt.datetime(2013, 1, 10, 11, 0)


def _leakage_flights() -> list[tuple]:
    """Route JFK-LAX. Q leaves at 11:00Z on 10 Jan; which earlier flights may its trailing rates see?"""
    return [
        # A: arrived 10:00Z, before Q's departure, on time -> counts.
        flight(dt.datetime(2013, 1, 10, 4, 0), number=1, minutes=360, arr_delay=0),
        # B: LEFT before Q (07:00Z) but ARRIVES 13:00Z, after Q's departure, 60 min late -> must NOT count.
        flight(dt.datetime(2013, 1, 10, 7, 0), number=2, minutes=300, arr_delay=60),
        # C: arrives exactly at 11:00Z (Q's scheduled departure), late -> must NOT count (strictly before).
        flight(dt.datetime(2013, 1, 10, 4, 15), number=3, minutes=360, arr_delay=45),
        # D: arrived 2 Jan 09:00Z (8 days before), late -> only in the 30-day window.
        flight(dt.datetime(2013, 1, 2, 3, 0), number=4, minutes=340, arr_delay=20),
        # E: arrived exactly 7 days before Q's departure (3 Jan 11:00Z), on time -> in the 7-day window.
        flight(dt.datetime(2013, 1, 3, 5, 0), number=5, minutes=360, arr_delay=0),
        # F: another carrier on the same route, arrived 09:00Z, late -> route rates only.
        flight(dt.datetime(2013, 1, 10, 1, 30), carrier="AA", number=6, minutes=360, arr_delay=90),
        # Q itself: arrives 17:05Z, 5 min late.
        flight(Q_DEP, number=7, minutes=360, arr_delay=5),
    ]


def _features(frames, flights, weather=(), planes=()):
    f = frames(flights=list(flights), weather=list(weather), planes=list(planes))
    out = flight_features(f["flights"], f["weather"], f["planes"])
    assert not isinstance(out, TableOutput)
    return {r["flight_id"]: r for r in out.collect()}


def test_trailing_rates_count_only_flights_that_arrived_before_the_scheduled_departure(frames) -> None:
    rows = _features(frames, _leakage_flights())
    q = rows["20130110-UA-7-JFK"]
    # Route (both carriers): 7 days: A (on time), E (on time), F (late) -> 1/3; 30 days: + D (late) -> 2/4.
    assert q["route_delay_rate_7d"] == pytest.approx(1 / 3)
    assert q["route_delay_rate_30d"] == pytest.approx(2 / 4)
    # Carrier UA: 7 days: A, E -> 0/2 (B or C leaking in would make it 1/3); 30 days: A, E, D -> 1/3.
    assert q["carrier_delay_rate_7d"] == pytest.approx(0.0)
    assert q["carrier_delay_rate_30d"] == pytest.approx(1 / 3)
    # The first flight has no history at all: null rates, not zeros.
    first = rows["20130101-UA-4-JFK"]
    assert first["route_delay_rate_7d"] is None and first["carrier_delay_rate_30d"] is None


def test_feature_row_contract_and_label(frames) -> None:
    flights = [
        *_leakage_flights(),
        flight(dt.datetime(2013, 1, 11, 12, 0), number=8, arr_delay=None, dep_delay=None),  # cancelled
        flight(dt.datetime(2013, 1, 12, 12, 0), number=9, arr_delay=15),
    ]
    f = frames(flights=flights)
    out = flight_features(f["flights"], f["weather"], f["planes"])
    assert tuple(out.columns) == FEATURE_COLUMNS
    types = dict(out.dtypes)
    assert types["flight_id"] == "string" and types["flight_date"] == "date"
    assert types["sched_dep_utc"] == "timestamp" and types["label"] == "int" and types["arr_delay"] == "int"
    assert all(types[c] == "int" for c in ("distance", "sched_hour", "day_of_week", "month", "plane_age"))
    assert all(types[c] == "double" for c in ("temp", "visib", "route_delay_rate_30d"))
    rows = {r["flight_id"]: r for r in out.collect()}
    assert "20130111-UA-8-JFK" not in rows  # no arrival delay: not a completed flight
    assert rows["20130112-UA-9-JFK"]["label"] == 1 and rows["20130110-UA-7-JFK"]["label"] == 0
    q = rows["20130110-UA-7-JFK"]
    # 11:00Z = 06:00 in New York; 10 Jan 2013 was a Thursday (ISO 4).
    assert (q["sched_hour"], q["day_of_week"], q["month"]) == (6, 4, 1)


def test_plane_age_uses_the_version_valid_at_departure_else_the_current_one(frames) -> None:
    t = lambda *a: dt.datetime(*a, tzinfo=UTC)  # noqa: E731
    planes = [
        ("N1", 2000, t(2012, 1, 1), t(2013, 1, 5), False, "r1"),
        ("N1", 2001, t(2013, 1, 5), None, True, "r1"),
        ("N2", 2005, t(2020, 1, 1), None, True, "r1"),  # registry snapshot taken after the flights
    ]
    flights = [
        flight(dt.datetime(2013, 1, 3, 12, 0), number=1, tailnum="N1"),
        flight(dt.datetime(2013, 1, 10, 12, 0), number=2, tailnum="N1"),
        flight(dt.datetime(2013, 1, 10, 12, 0), number=3, tailnum="N2"),
        flight(dt.datetime(2013, 1, 10, 12, 0), number=4, tailnum="N9"),
        flight(dt.datetime(2013, 1, 10, 12, 0), number=5, tailnum=None),
    ]
    rows = _features(frames, flights, planes=planes)
    ages = {k.split("-")[2]: r["plane_age"] for k, r in rows.items()}
    assert ages == {"1": 13, "2": 12, "3": 8, "4": None, "5": None}


def test_weather_at_origin_in_the_scheduled_hour_never_doubles_a_row(frames) -> None:
    hour = dt.datetime(2013, 1, 10, 11, 0, tzinfo=UTC)
    weather = [
        ("JFK", hour, 30.0, 12.0, 0.0, 10.0, "r1"),
        ("LGA", hour, 31.0, 13.0, 0.1, 2.0, "r1"),  # other origin, same hour
        ("JFK", hour + dt.timedelta(hours=1), 99.0, 99.0, 9.0, 0.0, "r1"),
    ]
    flights = [flight(Q_DEP + dt.timedelta(minutes=45), number=1), flight(Q_DEP, number=2, origin="EWR")]
    rows = _features(frames, flights, weather=weather)
    assert len(rows) == 2
    jfk = rows["20130110-UA-1-JFK"]
    assert (jfk["temp"], jfk["wind_speed"], jfk["precip"], jfk["visib"]) == (30.0, 12.0, 0.0, 10.0)
    assert rows["20130110-UA-2-EWR"]["temp"] is None


def test_carrier_monthly_performance_exact_values(frames) -> None:
    jan = dt.datetime(2013, 1, 15, 14, 0)
    flights = [
        flight(jan, number=1, arr_delay=-5, dep_delay=-2),
        flight(jan, number=2, arr_delay=14, dep_delay=10),
        flight(jan, number=3, arr_delay=15, dep_delay=20),
        flight(jan, number=4, arr_delay=100, dep_delay=90),
        flight(jan, number=5, arr_delay=None, dep_delay=None),  # cancelled
        flight(jan, number=6, arr_delay=None, dep_delay=30),  # diverted: departed, no arrival
        flight(dt.datetime(2013, 2, 1, 14, 0), number=1, arr_delay=0),
    ]
    f = frames(flights=flights, airlines=[("UA", "United Air Lines Inc.", "r1")])
    out = carrier_monthly_performance(f["flights"], f["airlines"])
    rows = {r["month_start"]: r for r in out.collect()}
    jan_row = rows[dt.date(2013, 1, 1)]
    assert (jan_row["flights"], jan_row["cancelled_flights"], jan_row["completed_flights"]) == (6, 1, 4)
    assert jan_row["on_time_flights"] == 2 and jan_row["on_time_share"] == pytest.approx(0.5)
    assert jan_row["cancellation_rate"] == pytest.approx(1 / 6)
    assert jan_row["avg_arr_delay"] == pytest.approx((-5 + 14 + 15 + 100) / 4)
    # p90 with linear interpolation (pandas' default) over [-5, 14, 15, 100]: 15 + 0.7 * 85.
    assert jan_row["p90_arr_delay"] == pytest.approx(74.5)
    assert jan_row["carrier_name"] == "United Air Lines Inc." and jan_row["year"] == 2013
    assert rows[dt.date(2013, 2, 1)]["flights"] == 1


def test_route_daily_stats_and_weather_buckets(frames) -> None:
    day = dt.datetime(2013, 7, 4, 14, 0)
    flights = [
        flight(day, number=1, arr_delay=30, dep_delay=25),
        flight(day, number=2, carrier="AA", arr_delay=0, dep_delay=0),
        flight(day, number=3, dest="SFO", arr_delay=0, dep_delay=0),
    ]
    weather = [("JFK", day.replace(tzinfo=UTC), 80.0, 25.0, 0.0, 0.5, "r1")]
    f = frames(flights=flights, weather=weather)
    routes = {(r["dest"]): r for r in route_daily_stats(f["flights"]).collect()}
    lax = routes["LAX"]
    assert (lax["flights"], lax["carriers"], lax["on_time_flights"]) == (2, 2, 1)
    assert lax["avg_arr_delay"] == pytest.approx(15.0) and lax["flight_date"] == dt.date(2013, 7, 4)
    buckets = airport_weather_delays(f["flights"], f["weather"]).collect()
    assert len(buckets) == 1
    b = buckets[0]
    assert (b["visibility"], b["wind"], b["precipitation"]) == ("fog (<1 mi)", "strong (20-30 mph)", "none")
    assert (b["flights"], b["delayed_flights"], b["total_dep_delay_min"]) == (3, 1, 25)


def test_replace_predicate_merges_consecutive_dates() -> None:
    d = dt.date
    pred = replace_predicate("flight_date", [d(2013, 1, 3), d(2013, 1, 1), d(2013, 1, 2), d(2013, 2, 1)])
    assert pred == (
        "(`flight_date` BETWEEN DATE'2013-01-01' AND DATE'2013-01-03' OR `flight_date` = DATE'2013-02-01')"
    )
    assert replace_predicate("carrier", ["UA", "O'Hare"]) == "`carrier` IN ('O\\'Hare', 'UA')"
    assert replace_predicate("month_start", []) == "false"
