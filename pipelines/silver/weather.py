"""silver.weather: hourly weather per NYC airport, keyed by (origin, time_hour).

``time_hour`` is the UTC hour. The source's local (year, month, day, hour) is NOT a key: on 2013-11-03 the 1 AM
hour happens twice (daylight saving time ends), and only ``time_hour`` tells the two readings apart. Both are
kept; ``time_local`` shows the wall clock of each. A flight joins its weather on (origin, time_hour), which
matches at most one row.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.silver.common import (
    CAST_ERRORS,
    CORRUPT_RECORD,
    PARSE_FAILED,
    SOURCE_RECORD,
    latest_per_key,
    newest_first,
    row_hash,
    source_record,
    typed,
    with_cast_errors,
)

KEY = ("origin", "time_hour")
SOURCE_COLUMNS = (
    "origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir", "wind_speed",
    "wind_gust", "precip", "pressure", "visib", "time_hour",
)  # fmt: skip
TYPES = {
    "year": "int", "month": "int", "day": "int", "hour": "int", "temp": "double", "dewp": "double",
    "humid": "double", "wind_dir": "double", "wind_speed": "double", "wind_gust": "double",
    "precip": "double", "pressure": "double", "visib": "double", "time_hour": "timestamp",
}  # fmt: skip
BUSINESS_COLUMNS = ("origin", "time_hour", "time_local", *SOURCE_COLUMNS[1:-1])
OUTPUT_COLUMNS = (
    *BUSINESS_COLUMNS,
    "_row_hash",
    "_source_file",
    "_ingested_at",
    SOURCE_RECORD,
    CAST_ERRORS,
    CORRUPT_RECORD,
    PARSE_FAILED,
)


def transform(weather: DataFrame, changes: Mapping[str, DataFrame | None] | None = None) -> DataFrame:
    """bronze.weather (new rows, or all) -> typed, one row per (origin, UTC hour), latest delivery wins."""
    batch = (changes or {}).get("weather")
    source = weather if batch is None else batch
    t = {name: typed(name, spark_type) for name, spark_type in TYPES.items()}
    df = source.select(
        *[t.get(c, typed(c, "string")).alias(c) for c in SOURCE_COLUMNS],
        source_record(SOURCE_COLUMNS).alias(SOURCE_RECORD),
        "_source_file",
        "_source_modified_at",
        "_ingested_at",
    ).withColumn("time_local", F.try_make_timestamp_ntz("year", "month", "day", "hour", F.lit(0), F.lit(0)))
    df = with_cast_errors(df, TYPES)
    df = latest_per_key(df, KEY, newest_first())
    return df.withColumn("_row_hash", row_hash(BUSINESS_COLUMNS)).select(*OUTPUT_COLUMNS)
