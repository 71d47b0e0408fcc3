"""silver.airlines and silver.airports: typed dimensions, upserted (SCD type 1: the latest snapshot wins).

Each row carries ``_snapshot_at`` (the snapshot's date from its file name, else the file's modification
time). The MERGE updates a row only when the incoming snapshot is not older than the stored one and the content
changed, so a late delivery of an old snapshot cannot overwrite newer values.
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
    row_hash,
    snapshot_time,
    source_record,
    typed,
    with_cast_errors,
)

AIRLINE_COLUMNS = ("carrier", "name")
AIRPORT_COLUMNS = ("faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone")
AIRPORT_TYPES = {"lat": "double", "lon": "double", "alt": "int", "tz": "int"}


def _latest_snapshot(df: DataFrame, key: str, business: tuple[str, ...], types: dict[str, str]) -> DataFrame:
    df = with_cast_errors(df, types)
    df = df.withColumn("_snapshot_at", snapshot_time())
    order = [F.col("_snapshot_at").desc_nulls_last(), F.col("_ingested_at").desc_nulls_last()]
    df = latest_per_key(df, (key,), order)
    return df.withColumn("_row_hash", row_hash(business)).select(
        *business,
        "_snapshot_at",
        "_row_hash",
        "_source_file",
        "_ingested_at",
        SOURCE_RECORD,
        CAST_ERRORS,
        CORRUPT_RECORD,
        PARSE_FAILED,
    )


def _pick(full: DataFrame, changes: Mapping[str, DataFrame | None] | None, name: str) -> DataFrame:
    batch = (changes or {}).get(name)
    return full if batch is None else batch


def airlines(airlines: DataFrame, changes: Mapping[str, DataFrame | None] | None = None) -> DataFrame:
    src = _pick(airlines, changes, "airlines")
    df = src.select(
        F.upper(typed("carrier", "string")).alias("carrier"),
        typed("name", "string").alias("name"),
        source_record(AIRLINE_COLUMNS).alias(SOURCE_RECORD),
        "_source_file",
        "_source_modified_at",
        "_ingested_at",
    )
    return _latest_snapshot(df, "carrier", AIRLINE_COLUMNS, {})


def airports(airports: DataFrame, changes: Mapping[str, DataFrame | None] | None = None) -> DataFrame:
    src = _pick(airports, changes, "airports")
    df = src.select(
        *[typed(c, AIRPORT_TYPES.get(c, "string")).alias(c) for c in AIRPORT_COLUMNS],
        source_record(AIRPORT_COLUMNS).alias(SOURCE_RECORD),
        "_source_file",
        "_source_modified_at",
        "_ingested_at",
    ).withColumn("tzone", F.when(F.col("tzone") != "\\N", F.col("tzone")))
    return _latest_snapshot(df, "faa", AIRPORT_COLUMNS, AIRPORT_TYPES)
