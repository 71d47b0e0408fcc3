"""Incremental gold equals a full rebuild: silver gets a new month (and a late correction), the runner replaces
only the affected months/dates, and every gold table ends up equal to its full transform of the same silver."""

from __future__ import annotations

import datetime as dt
import random

from gold_data import AIRLINES_DDL, FLIGHTS_DDL, PLANES_DDL, WEATHER_DDL, flight, month_of_flights

from pipelines.runner import _load_transform, run_table

GOLD = (
    "gold.carrier_monthly_performance",
    "gold.route_daily_stats",
    "gold.airport_weather_delays",
    "gold.flight_features",
)
UTC = dt.UTC


def _rows(df):
    return sorted((tuple(r) for r in df.drop("_run_id").collect()), key=repr)


def test_new_month_replaces_only_what_it_affects_and_equals_a_full_rebuild(lakehouse, spark) -> None:
    rng = random.Random(7)
    jan_f, jan_w = month_of_flights(2013, 1, 31, "r1", rng)
    feb_f, feb_w = month_of_flights(2013, 2, 10, "r2", rng)
    planes = [("N0", 2001, dt.datetime(2012, 1, 1, tzinfo=UTC), None, True, "r1")]
    commit = lambda rid: {"medallion.run_id": rid}  # noqa: E731
    lakehouse.write(
        spark.createDataFrame(jan_f, FLIGHTS_DDL), "silver.flights", "overwrite", commit_info=commit("r1")
    )
    lakehouse.write(
        spark.createDataFrame(jan_w, WEATHER_DDL), "silver.weather", "overwrite", commit_info=commit("r1")
    )
    lakehouse.write(
        spark.createDataFrame(planes, PLANES_DDL), "silver.planes", "overwrite", commit_info=commit("r1")
    )
    airlines = spark.createDataFrame([("UA", "United", "r1"), ("AA", "American", "r1")], AIRLINES_DDL)
    lakehouse.write(airlines, "silver.airlines", "overwrite", commit_info=commit("r1"))
    for name in GOLD:
        run_table(lakehouse, name, "g1")

    # February lands; a late correction makes a 28 January flight 200 minutes late (it feeds February's windows).
    fixed = [
        flight(dt.datetime(2013, 1, 28, 12, 0), number=100, minutes=300, arr_delay=200, dep_delay=190,
               tailnum="N0", run_id="r2")
        if f[0] == "20130128-UA-100-JFK" else f
        for f in jan_f
    ]  # fmt: skip
    lakehouse.write(
        spark.createDataFrame(fixed + feb_f, FLIGHTS_DDL),
        "silver.flights",
        "overwrite",
        commit_info=commit("r2"),
    )
    lakehouse.write(
        spark.createDataFrame(feb_w, WEATHER_DDL), "silver.weather", "append", commit_info=commit("r2")
    )
    before = {name: lakehouse.version(name) for name in GOLD}
    results = {name: run_table(lakehouse, name, "g2") for name in GOLD}

    for name in GOLD:
        last = lakehouse.history(name, limit=1)[0]
        assert last["operation"] in ("REPLACE WHERE", "WRITE"), (name, last["operation"])
        # One commit: the data (the declared comments are there already: no metadata commit).
        assert lakehouse.version(name) == before[name] + 1 == results[name].version, name
    # Only the affected slices were written: January's untouched route-days were not.
    routes = lakehouse.read("gold.route_daily_stats")
    assert routes.count() == 3 * 41  # JFK-LAX (UA and AA), EWR-ORD, LGA-ORD
    assert routes.where("_run_id = 'g2'").count() == 3 * 11  # 10 February days + the corrected 28 January
    assert results["gold.carrier_monthly_performance"].status == "ok"
    features = {
        r["flight_date"] for r in lakehouse.read("gold.flight_features").where("_run_id = 'g2'").collect()
    }
    assert min(features) == dt.date(2013, 1, 28) and dt.date(2013, 1, 27) not in features

    inputs = {
        "flights": lakehouse.read("silver.flights"),
        "weather": lakehouse.read("silver.weather"),
        "planes": lakehouse.read("silver.planes"),
        "airlines": lakehouse.read("silver.airlines"),
    }
    for name in GOLD:
        conf = lakehouse.settings.table(name)
        full = _load_transform(conf.transform)(
            **{d.partition(".")[2]: inputs[d.partition(".")[2]] for d in conf.inputs}
        )
        assert _rows(lakehouse.read(name)) == _rows(full), name
