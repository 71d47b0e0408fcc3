"""``medallion backfill``: one month of gold replaced from the current silver equals a full rebuild on that
month, nothing outside the month moves, twice gives the same tables, one replaceWhere commit per table, and
tables that cannot be replayed by range are refused before anything is written."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any

import pytest
from gold_data import AIRLINES_DDL, FLIGHTS_DDL, PLANES_DDL, WEATHER_DDL, month_of_flights

from pipelines.backfill import BACKFILL_KEY, backfill_tables, range_predicate, refusal, run_backfill
from pipelines.errors import UsageError
from pipelines.lakehouse import Lakehouse
from pipelines.runner import _load_transform, decide, run_table

# The fast tier is the tests marked fast; the heavier ones here run in the full suite only.
UTC = dt.UTC
# A day table and the features (whose trailing windows look back before the range); the month grain is
# checked on the predicate alone below.
GOLD = ("gold.route_daily_stats", "gold.flight_features")
FEB = (dt.date(2013, 2, 1), dt.date(2013, 2, 28))


def _rows(df: Any) -> list[tuple[Any, ...]]:
    return sorted((tuple(r) for r in df.drop("_run_id").collect()), key=repr)


def _in_feb(lh: Lakehouse, name: str, df: Any) -> Any:
    column = lh.settings.table(name).backfill.column
    return df.where(f"{column} BETWEEN DATE'2013-02-01' AND DATE'2013-02-28'")


@pytest.fixture
def gold(lakehouse: Lakehouse, spark: Any) -> Lakehouse:
    """Three gold tables built from January and February silver; then silver changes in both months."""
    rng = random.Random(11)
    jan_f, jan_w = month_of_flights(2013, 1, 31, "r1", rng)
    feb_f, feb_w = month_of_flights(2013, 2, 12, "r1", rng)
    commit = {"medallion.run_id": "r1"}
    write = lambda rows, ddl, name: lakehouse.write(  # noqa: E731
        spark.createDataFrame(rows, ddl), name, "overwrite", commit_info=commit
    )
    write(jan_f + feb_f, FLIGHTS_DDL, "silver.flights")
    write(jan_w + feb_w, WEATHER_DDL, "silver.weather")
    write([("N0", 2001, dt.datetime(2012, 1, 1, tzinfo=UTC), None, True, "r1")], PLANES_DDL, "silver.planes")
    write([("UA", "United", "r1"), ("AA", "American", "r1")], AIRLINES_DDL, "silver.airlines")
    for name in GOLD:
        run_table(lakehouse, name, "g1")
    # Corrections arrive in silver: every completed flight 25 minutes later, in January as in February.
    late = dt.timedelta(minutes=25)
    later = [
        (*f[:11], f[11] + 25, *f[12:17], f[17] + late, *f[18:]) if f[11] is not None else f
        for f in jan_f + feb_f
    ]
    lakehouse.write(
        spark.createDataFrame(later, FLIGHTS_DDL), "silver.flights", "overwrite", commit_info=commit
    )
    return lakehouse


def test_a_month_backfill_equals_a_full_rebuild_on_that_month_and_is_idempotent(gold: Lakehouse) -> None:
    lh = gold
    before = {name: lh.read(name) for name in GOLD}
    january = {name: _rows(before[name].exceptAll(_in_feb(lh, name, before[name]))) for name in GOLD}
    versions = {name: lh.version(name) for name in GOLD}
    tables = backfill_tables(lh.settings, list(GOLD))
    assert set(tables) == set(GOLD)  # and nothing downstream but the predictions, a system table

    results = run_backfill(lh, tables, *FEB, "b1")
    assert {r.status for r in results} == {"ok"}
    features = next(r for r in results if r.table == "gold.flight_features")
    assert (
        features.rows_written == _in_feb(lh, "gold.flight_features", lh.read("gold.flight_features")).count()
    )
    inputs = {d: lh.read(d) for d in ("silver.flights", "silver.weather", "silver.planes", "silver.airlines")}
    for name in GOLD:
        assert lh.version(name) == versions[name] + 1, name  # one commit
        last = lh.history(name, limit=1)[0]
        assert BACKFILL_KEY in last["custom"] and "medallion.inputs" not in last["custom"], name
        conf = lh.settings.table(name)
        full = _load_transform(conf.transform)(**{d.partition(".")[2]: inputs[d] for d in conf.inputs})
        table = lh.read(name)
        assert _rows(_in_feb(lh, name, table)) == _rows(_in_feb(lh, name, full)), name
        outside = table.exceptAll(_in_feb(lh, name, table))
        assert _rows(outside) == january[name], name  # January keeps its old (uncorrected) rows
        assert outside.where("_run_id <> 'g1'").count() == 0
    key = "origin = 'JFK' AND dest = 'LAX' AND flight_date IN (DATE'2013-01-20', DATE'2013-02-05')"
    delays = {r["flight_date"].month: r["avg_arr_delay"] for r in lh.read(GOLD[0]).where(key).collect()}
    old = {r["flight_date"].month: r["avg_arr_delay"] for r in before[GOLD[0]].where(key).collect()}
    assert delays[1] == old[1] and delays[2] == pytest.approx(old[2] + 25)

    after_first = {name: _rows(lh.read(name)) for name in GOLD}
    run_backfill(lh, tables, *FEB, "b2")
    assert {name: _rows(lh.read(name)) for name in GOLD} == after_first
    events = lh.read("gold.pipeline_events").where("command = 'backfill' AND run_id = 'b2'").collect()
    assert sorted(r["table_name"] for r in events) == sorted(GOLD)
    assert {r["status"] for r in events} == {"ok"} and all(
        r["reason"].startswith("backfill 2013-02-01") for r in events
    )
    # The next run still sees the silver change since the last full build: a backfill is not a build.
    assert decide(lh, "gold.route_daily_stats").reasons == ("1 new commit(s) in silver.flights",)

    # A table whose checks (or code, or declaration) changed since its last build is rebuilt whole by the
    # next run; backfilling it would mix two versions of it, so it is refused.
    conf = lh.settings.tables["gold.route_daily_stats"]
    fewer = dataclasses.replace(conf, expectations=conf.expectations[:-1])
    changed = Lakehouse(
        dataclasses.replace(lh.settings, tables={**lh.settings.tables, "gold.route_daily_stats": fewer}),
        lh.store,
    )
    assert "checks changed" in (refusal(changed, "gold.route_daily_stats") or "")


@pytest.mark.fast
def test_tables_that_cannot_be_replayed_by_range_are_refused_before_anything_is_written(
    lakehouse: Lakehouse,
) -> None:
    lh = lakehouse
    versions = {name: lh.version(name) for name in (*GOLD, "silver.flights")}
    tables = backfill_tables(lh.settings, ["silver.flights+"])
    assert tables[0] == "silver.flights" and set(GOLD) <= set(tables)
    with pytest.raises(UsageError) as refused:
        run_backfill(lh, tables, *FEB, "b1")
    assert "silver.flights" in str(refused.value) and "merge" in str(refused.value)
    assert {name: lh.version(name) for name in versions} == versions
    with pytest.raises(UsageError):
        run_backfill(lh, list(GOLD), FEB[1], FEB[0], "b2")  # --from after --to


@pytest.mark.fast
def test_a_month_table_replaces_every_month_the_range_overlaps(lakehouse: Lakehouse) -> None:
    monthly = lakehouse.settings.table("gold.carrier_monthly_performance")
    daily = lakehouse.settings.table("gold.route_daily_stats")
    start, end = dt.date(2013, 3, 10), dt.date(2013, 4, 5)
    assert (
        range_predicate(monthly, start, end) == "`month_start` BETWEEN DATE'2013-03-01' AND DATE'2013-04-05'"
    )
    assert range_predicate(daily, start, end) == "`flight_date` BETWEEN DATE'2013-03-10' AND DATE'2013-04-05'"
