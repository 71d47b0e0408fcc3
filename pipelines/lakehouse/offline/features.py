"""Feature gates of the offline engine: which Delta tables it may read and write.

A table whose parquet files a plain read gets wrong is refused with :class:`UnsupportedTableFeatureError`
naming the table and the feature (deletion vectors, column mapping, unknown reader features), and so is a
write the engine cannot honour (generated or identity columns, unknown writer features).
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import StorageError, TableNotFoundError, UnsupportedTableFeatureError
from pipelines.lakehouse.base import TableRef
from pipelines.lakehouse.offline.paths import is_delta, table_root

# Reader features whose tables a plain parquet read of the active files returns correctly. Each one is
# proven by a delta-spark table in tests/fixtures/delta (tests/integration/test_golden_tables.py).
SAFE_READER_FEATURES = {
    "timestampNtz",
    "vacuumProtocolCheck",
}
# Writer features our parquet-then-commit path honours (appendOnly: no removes; constraints enforced in Spark).
SAFE_WRITER_FEATURES = {
    "appendOnly",
    "invariants",
    "checkConstraints",
    "timestampNtz",
    "vacuumProtocolCheck",
    "changeDataFeed",
}


def open_table(table: TableRef, version: int | None = None) -> Any:
    """deltalake's handle of the table (at ``version``), with its failures as this product's errors."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError as DlTableNotFound

    uri = table_root(table)
    if not is_delta(uri):
        raise TableNotFoundError(f"{table.name}: no Delta table at {uri} (run the job that builds it first)")
    try:
        return DeltaTable(uri, version=version)
    except DlTableNotFound:
        raise TableNotFoundError(f"{table.name}: no Delta table at {uri}") from None
    except Exception as exc:  # deltalake raises plain exceptions for bad versions, DVs, unknown features
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        lowered = text.lower()
        if "deletionvectors" in lowered.replace(" ", "") or "deletion vector" in lowered:
            raise UnsupportedTableFeatureError(
                f"{table.name}: the table uses deletion vectors, which the offline engine cannot read "
                "correctly; read it with native Delta (Databricks or `medallion setup`)"
            ) from None
        if "unsupported" in lowered and "feature" in lowered:
            raise UnsupportedTableFeatureError(
                f"{table.name}: {text}; the offline engine cannot read this table: use native Delta"
            ) from None
        if version is not None and ("version" in lowered or "not found" in lowered):
            raise StorageError(f"{table.name}: cannot load version {version}: {text}") from None
        raise StorageError(f"{table.name}: cannot open the Delta table at {uri}: {text}") from None


def check_readable(table: TableRef, dtable: Any) -> None:
    protocol = dtable.protocol()
    config = dtable.metadata().configuration or {}
    features = set(protocol.reader_features or [])
    if "deletionVectors" in features:
        raise UnsupportedTableFeatureError(
            f"{table.name}: the table uses deletion vectors; a plain parquet read would return deleted "
            "rows, so the offline engine refuses it (read it with native Delta)"
        )
    mapping = config.get("delta.columnMapping.mode", "none")
    if "columnMapping" in features or mapping not in ("none", None):
        raise UnsupportedTableFeatureError(
            f"{table.name}: the table uses column mapping (mode {mapping}); its parquet files hold physical "
            "column names, so the offline engine refuses it (read it with native Delta or deltalake)"
        )
    unknown = features - SAFE_READER_FEATURES
    if unknown or protocol.min_reader_version > 3:
        raise UnsupportedTableFeatureError(
            f"{table.name}: reader protocol {protocol.min_reader_version} with feature(s) "
            f"{', '.join(sorted(unknown)) or '-'} is not supported by the offline engine"
        )


def check_writable(table: TableRef, dtable: Any) -> None:
    check_readable(table, dtable)
    protocol = dtable.protocol()
    unknown = set(protocol.writer_features or []) - SAFE_WRITER_FEATURES
    schema_json = dtable.schema().to_json()
    if "delta.generationExpression" in schema_json:
        unknown.add("generatedColumns")
    if "delta.identity." in schema_json:
        unknown.add("identityColumns")
    if unknown:
        raise UnsupportedTableFeatureError(
            f"{table.name}: writer feature(s) {', '.join(sorted(unknown))} are not supported by the "
            "offline engine; write this table with native Delta"
        )
