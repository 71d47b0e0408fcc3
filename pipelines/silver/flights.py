"""silver.flights: one typed row per flight, keyed by (flight_date, carrier, flight, origin).

The key: a carrier's flight number leaves a given origin at most once per local day. Checked on the full 2013
data (336,776 flights, no repeat); (date, carrier, flight) alone repeats 24 times (same number from two
airports). ``flight_id`` spells the key as one string for joins and predictions.

Times: the source gives local New York times as hhmm integers (2400 = midnight at the end of the day) and
arrival times in the destination's local time. Scheduled departure = date + hhmm; actual departure = scheduled
+ dep_delay (so a departure delayed past midnight lands on the next day, which hhmm alone cannot say).
Scheduled arrival = date + hhmm, plus one day when it is earlier than the scheduled departure (an overnight
flight); actual arrival = scheduled arrival + arr_delay. The ``*_local`` columns are wall-clock
TIMESTAMP_NTZ; the ``*_utc`` columns are instants, using America/New_York for departures and the destination
airport's zone (silver.airports, or a small table of zones the airport list lacks) for arrivals.

Incremental: only bronze rows of runs since the last build are transformed (``changes``), deduplicated (the
latest delivery wins) and MERGEd on the key, updating a row only when its content hash changed.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.silver.common import (
    CAST_ERRORS,
    CORRUPT_RECORD,
    PARSE_FAILED,
    SOURCE_RECORD,
    latest_per_key,
    local_to_utc,
    newest_first,
    row_hash,
    source_record,
    typed,
    with_cast_errors,
)

ORIGIN_ZONE = "America/New_York"
# Destinations the FAA airport list of the sample lacks (Puerto Rico, US Virgin Islands): no DST there.
EXTRA_ZONES = {"BQN": "America/Puerto_Rico", "SJU": "America/Puerto_Rico", "PSE": "America/Puerto_Rico",
               "STT": "America/St_Thomas"}  # fmt: skip

KEY = ("flight_date", "carrier", "flight", "origin")
SOURCE_COLUMNS = (
    "year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
    "arr_delay", "carrier", "flight", "tailnum", "origin", "dest", "air_time", "distance", "hour", "minute",
    "time_hour",
)  # fmt: skip
TYPES = {
    "year": "int", "month": "int", "day": "int", "dep_time": "int", "sched_dep_time": "int",
    "dep_delay": "int", "arr_time": "int", "sched_arr_time": "int", "arr_delay": "int", "flight": "int",
    "air_time": "int", "distance": "int", "hour": "int", "minute": "int", "time_hour": "timestamp",
}  # fmt: skip
BUSINESS_COLUMNS = (
    "flight_date", "year", "month", "day", "carrier", "flight", "tailnum", "origin", "dest",
    "sched_dep_time", "dep_time", "dep_delay", "sched_arr_time", "arr_time", "arr_delay", "air_time",
    "distance", "time_hour",
)  # fmt: skip


def hhmm_minutes(hhmm: Column) -> Column:
    """Minutes after midnight of an hhmm integer (2400 -> 1440); null when it is not a clock time."""
    hours = F.floor(hhmm / 100)
    minutes = hhmm % 100
    valid = hhmm.isNotNull() & (hhmm >= 0) & (hhmm <= 2400) & (minutes < 60)
    return F.when(valid, (hours * 60 + minutes).cast("int"))


def _at(day_start: Column, minutes: Column) -> Column:
    return F.timestamp_add("MINUTE", minutes, day_start)


def zone_lookup(airports: DataFrame) -> DataFrame:
    """faa -> IANA zone, from silver.airports completed with the zones it lacks."""
    spark = airports.sparkSession
    extra = spark.createDataFrame(list(EXTRA_ZONES.items()), "faa string, tzone string")
    known = airports.where(F.col("tzone").isNotNull()).select("faa", "tzone")
    missing = extra.join(known.select("faa"), "faa", "left_anti")
    return known.unionByName(missing).select(
        F.col("faa").alias("__dest"), F.col("tzone").alias("__dest_zone")
    )


def type_flights(bronze: DataFrame, airports: DataFrame) -> DataFrame:
    """Typed flights with local and UTC times; no rows removed (dedup and checks come after)."""
    t = {name: typed(name, spark_type) for name, spark_type in TYPES.items()}
    df = bronze.select(
        *[t.get(c, typed(c, "string")).alias(c) for c in SOURCE_COLUMNS],
        source_record(SOURCE_COLUMNS).alias(SOURCE_RECORD),
        "_source_file",
        "_source_modified_at",
        "_ingested_at",
    )
    df = with_cast_errors(df, TYPES)
    # Grouped projections (withColumns): one plan per group of independent columns.
    df = df.withColumn(
        "flight_date", F.try_make_timestamp_ntz("year", "month", "day", F.lit(0), F.lit(0), F.lit(0))
    )
    day_start = F.col("flight_date")
    sched_arr_same_day = _at(day_start, hhmm_minutes(F.col("sched_arr_time")))
    overnight = F.col("sched_arr_time") < F.col("sched_dep_time")
    df = df.withColumns(
        {
            "sched_dep_local": _at(day_start, hhmm_minutes(F.col("sched_dep_time"))),
            "sched_arr_local": F.when(
                overnight, F.timestamp_add("DAY", F.lit(1), sched_arr_same_day)
            ).otherwise(sched_arr_same_day),
        }
    )
    df = df.withColumns(
        {
            "dep_local": F.timestamp_add("MINUTE", F.col("dep_delay"), F.col("sched_dep_local")),
            "arr_local": F.timestamp_add("MINUTE", F.col("arr_delay"), F.col("sched_arr_local")),
        }
    )
    zones = zone_lookup(airports)
    df = df.join(F.broadcast(zones), F.col("dest") == F.col("__dest"), "left")
    df = df.withColumns(
        {
            "sched_dep_utc": local_to_utc(F.col("sched_dep_local"), ORIGIN_ZONE),
            "dep_utc": local_to_utc(F.col("dep_local"), ORIGIN_ZONE),
            "sched_arr_utc": local_to_utc(F.col("sched_arr_local"), F.col("__dest_zone")),
            "arr_utc": local_to_utc(F.col("arr_local"), F.col("__dest_zone")),
            "cancelled": F.col("dep_time").isNull(),
        }
    )
    df = df.withColumns(
        {
            "time_hour": F.coalesce(F.col("time_hour"), F.date_trunc("HOUR", F.col("sched_dep_utc"))),
            "flight_date": F.to_date(F.col("flight_date")),
            "flight_id": F.concat_ws(
                "-", F.date_format(F.to_date(F.col("flight_date")), "yyyyMMdd"), "carrier", "flight", "origin"
            ),
        }
    )
    return df.drop("__dest", "__dest_zone", "hour", "minute")


OUTPUT_COLUMNS = (
    "flight_id", *BUSINESS_COLUMNS, "sched_dep_local", "dep_local", "sched_arr_local", "arr_local",
    "sched_dep_utc", "dep_utc", "sched_arr_utc", "arr_utc", "cancelled", "_row_hash", "_source_file",
    "_ingested_at", SOURCE_RECORD, CAST_ERRORS, CORRUPT_RECORD, PARSE_FAILED,
)  # fmt: skip


def transform(
    flights: DataFrame, airports: DataFrame, changes: Mapping[str, DataFrame | None] | None = None
) -> DataFrame:
    """bronze.flights (new rows, or all on a first build) -> typed, one row per key, latest delivery wins."""
    batch = (changes or {}).get("flights")
    source = flights if batch is None else batch
    df = type_flights(source, airports)
    df = latest_per_key(df, KEY, newest_first())
    df = df.withColumn("_row_hash", row_hash(BUSINESS_COLUMNS))
    return df.select(*OUTPUT_COLUMNS)
