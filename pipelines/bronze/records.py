"""The bronze transformation shared by every source: landed records + ingestion metadata.

Pure: a DataFrame read from landed files in, the bronze rows out. No reads, writes or actions here.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

CORRUPT_COLUMN = "_corrupt_record"
METADATA_COLUMNS = (
    "_source_file", "_source_modified_at", "_ingested_at", "_run_id", "_rescue_reason", "_rescued_data",
)  # fmt: skip

_REASONS = {
    "csv": "record does not split into the {n} declared columns (wrong field count or unbalanced quotes)",
    "jsonl": "line is not a JSON object (malformed JSON)",
}


def rescue_reason(fmt: str, n_columns: int) -> Column:
    """Why a record landed in ``_corrupt_record``; null for records that parsed."""
    reason = _REASONS[fmt].format(n=n_columns)
    return F.when(F.col(CORRUPT_COLUMN).isNotNull(), F.lit(reason)).cast("string")


RESCUED_COLUMN = "_rescued_data"


def bronze_schema(columns: tuple[str, ...]) -> str:
    """The DDL of a bronze table of a source with these columns (what :func:`bronze_records` gives)."""
    landed = ", ".join(f"`{c}` string" for c in columns)
    return (
        f"{landed}, {CORRUPT_COLUMN} string, _source_file string, _source_modified_at timestamp, "
        "_ingested_at timestamp, _run_id string, _rescue_reason string, _rescued_data string"
    )


INVALID_UTF8 = "the record holds bytes that are not UTF-8 (shown as U+FFFD): fix the file's encoding"


def bronze_records(
    raw: DataFrame,
    columns: tuple[str, ...],
    fmt: str,
    run_id: str,
    *,
    present: tuple[str, ...] | None = None,
    extra: tuple[str, ...] = (),
    keep_extra: bool = False,
    invalid_utf8: bool = False,
    rescued_json: Column | None = None,
) -> DataFrame:
    """Landed columns as text, in the source's order, then the raw text of unparsable records and metadata.

    ``raw`` must come straight from a file read (it uses the hidden ``_metadata`` column of file sources). A
    file's layout may differ from the declaration: ``present`` are the declared columns the file has (the
    others are null, and named in ``_rescued_data``), ``extra`` the file's columns the source does not
    declare: kept as columns (``keep_extra``, schema evolution ``add_columns``) or rescued into
    ``_rescued_data`` as JSON. ``invalid_utf8``: the file holds bytes that are not UTF-8; records showing the
    replacement character are flagged in ``_rescue_reason``. ``rescued_json``: the rescued fields as
    already built by the reader (JSON lines: the keys that are not declared).
    """
    present = columns if present is None else present
    missing = [c for c in columns if c not in present]
    fields = [F.col(f"`{c}`").alias(c) for c in extra] if extra and not keep_extra else []
    if missing:
        fields.append(F.array(*[F.lit(c) for c in missing]).alias("_missing_columns"))
    rescued = F.lit(None).cast("string")
    if fields:
        anything = F.lit(bool(missing))
        for c in extra if not keep_extra else ():
            anything = anything | F.col(f"`{c}`").isNotNull()
        rescued = F.when(anything, F.to_json(F.struct(*fields)))  # null fields are left out of the JSON
    if rescued_json is not None:
        rescued = rescued_json
    reason = rescue_reason(fmt, len(columns))
    if invalid_utf8:
        replaced = F.lit(False)
        for c in present:
            replaced = replaced | F.coalesce(F.col(f"`{c}`").contains("\ufffd"), F.lit(False))
        if CORRUPT_COLUMN in raw.columns:
            replaced = replaced | F.coalesce(F.col(CORRUPT_COLUMN).contains("\ufffd"), F.lit(False))
        reason = F.when(replaced, F.lit(INVALID_UTF8)).otherwise(reason)
    return raw.select(
        *[(F.col(f"`{c}`") if c in present else F.lit(None)).cast("string").alias(c) for c in columns],
        F.col(CORRUPT_COLUMN).cast("string").alias(CORRUPT_COLUMN),
        F.col("_metadata.file_path").alias("_source_file"),
        F.col("_metadata.file_modification_time").alias("_source_modified_at"),
        F.current_timestamp().alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
        reason.alias("_rescue_reason"),
        rescued.alias(RESCUED_COLUMN),
        *([F.col(f"`{c}`").cast("string").alias(c) for c in extra] if keep_extra else []),
    )
