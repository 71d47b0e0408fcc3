"""silver.planes: aircraft by tail number with full history (SCD type 2: valid_from, valid_to, is_current).

Every planes file is a full snapshot of the registry, taken at ``snapshot_time`` (a yyyy-mm-dd date in the
file name, else the file's modification time). The history is rebuilt from ALL snapshots in bronze on each
build (the registry is small), which keeps it right whatever order snapshots arrive in:

- per tail number, the snapshots are ordered by snapshot time; a plane absent from a later snapshot is
  treated as removed from the registry at that time (and may come back);
- consecutive snapshots with identical attributes collapse into one version, so re-delivering a snapshot,
  or delivering an unchanged one, changes nothing;
- a version is valid from the first snapshot that shows it until the first later snapshot that differs
  (valid_to exclusive, null while current); is_current = valid_to is null.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipelines.silver.common import (
    CAST_ERRORS,
    CORRUPT_RECORD,
    PARSE_FAILED,
    SOURCE_RECORD,
    row_hash,
    snapshot_time,
    source_record,
    typed,
    with_cast_errors_renamed,
)

SOURCE_COLUMNS = ("tailnum", "year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine")
TYPES = {"year": "int", "engines": "int", "seats": "int", "speed": "int"}
ATTRIBUTES = ("year_built", "type", "manufacturer", "model", "engines", "seats", "speed", "engine")
OUTPUT_COLUMNS = (
    "tailnum",
    *ATTRIBUTES,
    "valid_from",
    "valid_to",
    "is_current",
    "_row_hash",
    SOURCE_RECORD,
    CAST_ERRORS,
    CORRUPT_RECORD,
    PARSE_FAILED,
)


def transform(planes: DataFrame) -> DataFrame:
    """All bronze.planes snapshots -> SCD2 history (recomputed in full: order of arrival does not matter)."""
    obs = planes.select(
        F.upper(typed("tailnum", "string")).alias("tailnum"),
        typed("year", "int").alias("year_built"),
        *[typed(c, TYPES.get(c, "string")).alias(c) for c in SOURCE_COLUMNS[2:]],
        source_record(SOURCE_COLUMNS).alias(SOURCE_RECORD),
        snapshot_time().alias("snapshot_at"),
        "_ingested_at",
    ).withColumn("_row_hash", row_hash(ATTRIBUTES))
    obs = with_cast_errors_renamed(obs, {raw: "year_built" if raw == "year" else raw for raw in TYPES})
    valid = obs.where(F.col("tailnum").isNotNull() & F.col("snapshot_at").isNotNull())
    # Two deliveries of the same snapshot time: the later ingestion wins.
    pick = Window.partitionBy("tailnum", "snapshot_at").orderBy(F.col("_ingested_at").desc())
    valid = valid.withColumn("__n", F.row_number().over(pick)).where("__n = 1").drop("__n")

    # Absence: a plane seen before but missing from a later snapshot -> a null-hash observation.
    snapshots = (
        planes.select(snapshot_time().alias("snapshot_at")).where("snapshot_at IS NOT NULL").distinct()
    )
    first_seen = valid.groupBy("tailnum").agg(F.min("snapshot_at").alias("__first"))
    grid = first_seen.join(snapshots, F.col("snapshot_at") >= F.col("__first")).select(
        "tailnum", "snapshot_at"
    )
    seq = grid.join(valid, ["tailnum", "snapshot_at"], "left")

    by_time = Window.partitionBy("tailnum").orderBy("snapshot_at")
    prev_hash = F.lag("_row_hash").over(by_time)
    is_first = F.row_number().over(by_time) == 1
    changed = is_first | ~F.coalesce(
        F.col("_row_hash") == prev_hash, F.col("_row_hash").isNull() & prev_hash.isNull()
    )
    starts = seq.withColumn("__start", changed).where("__start")
    versions = starts.withColumn("valid_to", F.lead("snapshot_at").over(by_time)).where(
        F.col("_row_hash").isNotNull()
    )
    history = versions.select(
        "tailnum",
        *ATTRIBUTES,
        F.col("snapshot_at").alias("valid_from"),
        "valid_to",
        F.col("valid_to").isNull().alias("is_current"),
        "_row_hash",
        SOURCE_RECORD,
        CAST_ERRORS,
        CORRUPT_RECORD,
        PARSE_FAILED,
    )
    # Rows without a tail number or a snapshot time cannot enter the history: pass them on to be quarantined.
    invalid = obs.where(F.col("tailnum").isNull() | F.col("snapshot_at").isNull()).select(
        "tailnum",
        *ATTRIBUTES,
        F.col("snapshot_at").alias("valid_from"),
        F.lit(None).cast("timestamp").alias("valid_to"),
        F.lit(None).cast("boolean").alias("is_current"),
        "_row_hash",
        SOURCE_RECORD,
        CAST_ERRORS,
        CORRUPT_RECORD,
        PARSE_FAILED,
    )
    return history.unionByName(invalid).select(*OUTPUT_COLUMNS)
