"""The bronze transformation shared by every source: landed records + ingestion metadata.

Pure: a DataFrame read from landed files in, the bronze rows out. No reads, writes or actions here.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

CORRUPT_COLUMN = "_corrupt_record"
METADATA_COLUMNS = ("_source_file", "_source_modified_at", "_ingested_at", "_run_id", "_rescue_reason")

_REASONS = {
    "csv": "record does not split into the {n} declared columns (wrong field count or unbalanced quotes)",
    "jsonl": "line is not a JSON object (malformed JSON)",
}


def rescue_reason(fmt: str, n_columns: int) -> Column:
    """Why a record landed in ``_corrupt_record``; null for records that parsed."""
    reason = _REASONS[fmt].format(n=n_columns)
    return F.when(F.col(CORRUPT_COLUMN).isNotNull(), F.lit(reason)).cast("string")


def bronze_records(raw: DataFrame, columns: tuple[str, ...], fmt: str, run_id: str) -> DataFrame:
    """Landed columns as text, in the source's order, then the raw text of unparsable records and metadata.

    ``raw`` must come straight from a file read (it uses the hidden ``_metadata`` column of file sources).
    """
    return raw.select(
        *[F.col(f"`{c}`").cast("string").alias(c) for c in columns],
        F.col(CORRUPT_COLUMN).cast("string").alias(CORRUPT_COLUMN),
        F.col("_metadata.file_path").alias("_source_file"),
        F.col("_metadata.file_modification_time").alias("_source_modified_at"),
        F.current_timestamp().alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
        rescue_reason(fmt, len(columns)).alias("_rescue_reason"),
    )
