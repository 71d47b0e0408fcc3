"""Offline Delta engine: Spark writes the parquet files, the ``deltalake`` package commits the Delta log.

Used on machines without the Delta jars (no Maven access). Spark does all the compute and writes the data
files in parallel into a staging folder inside the table (``_staging-<uuid>``, ignored by Delta readers);
the files are then moved into place and committed in ONE Delta transaction by deltalake (delta-rs). Reads
hand Spark the table's active file list. MERGE, DELETE, UPDATE, history, time travel, OPTIMIZE and VACUUM
go through deltalake.

Rules:

- Tables using features a plain parquet read gets wrong are refused with :class:`UnsupportedTableFeatureError`
  naming the table and the feature (deletion vectors, column mapping, unknown reader features).
- Timestamps are written as INT64 microseconds; Spark's nullability becomes the Delta schema's, and NOT NULL
  and CHECK constraints are enforced inside the Spark write job itself (no extra pass).
- A failed write leaves nothing in the table's active state: staged files are deleted, and files moved into
  place are removed again when the commit fails.
- Nothing pulls a whole table to the driver except MERGE, whose source deltalake needs as Arrow: that source is
  bounded by ``storage.offline.merge_max_source_rows`` and a larger one is refused with a clear error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import shutil
import time
import urllib.parse
import uuid
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.config import OfflineConf
from pipelines.errors import (
    MergeSourceTooLargeError,
    SchemaMismatchError,
    StorageError,
    TableNotFoundError,
    UnsupportedTableFeatureError,
    WriteConflictError,
)
from pipelines.lakehouse.base import DeltaStore, MergeSpec, TableRef, WriteResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

# Reader features whose tables a plain parquet read of the active files returns correctly.
SAFE_READER_FEATURES = {
    "timestampNtz",
    "vacuumProtocolCheck",
    "v2Checkpoint",
    "typeWidening-preview",
    "typeWidening",
}
# Writer features our parquet-then-commit path honours (appendOnly: no removes; constraints enforced in Spark).
SAFE_WRITER_FEATURES = {
    "appendOnly",
    "invariants",
    "checkConstraints",
    "timestampNtz",
    "vacuumProtocolCheck",
    "v2Checkpoint",
    "changeDataFeed",
}
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
STAGING_PREFIX = "_staging-"
STRING_STATS_PREFIX = 32


def _uri(table: TableRef) -> str:
    if table.kind != "path":
        raise StorageError(
            f"{table.name}: the offline engine works on folders, not catalog tables ({table.location}); "
            "use storage.naming 'path' locally"
        )
    return table.location


def _unescape_path_segment(value: str) -> str:
    """Undo Spark's partition-directory escaping (``%2F`` -> ``/``)."""
    return urllib.parse.unquote(value)


def _is_delta(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "_delta_log"))


class OfflineDeltaStore(DeltaStore):
    engine = "offline"

    def __init__(self, spark: SparkSession, conf: OfflineConf | None = None) -> None:
        super().__init__(spark)
        self.conf = conf or OfflineConf()

    # ---- table handle and feature checks ------------------------------------------------------------
    def _table(self, table: TableRef, version: int | None = None) -> Any:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError as DlTableNotFound

        uri = _uri(table)
        if not _is_delta(uri):
            raise TableNotFoundError(
                f"{table.name}: no Delta table at {uri} (run the job that builds it first)"
            )
        try:
            return DeltaTable(uri, version=version)
        except DlTableNotFound:
            raise TableNotFoundError(f"{table.name}: no Delta table at {uri}") from None
        except Exception as exc:  # deltalake raises plain exceptions for bad versions, DVs, ...
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "deletionVectors" in text or "deletion vector" in text.lower():
                raise UnsupportedTableFeatureError(
                    f"{table.name}: the table uses deletion vectors, which the offline engine cannot read "
                    f"correctly; read it with native Delta (Databricks or Delta jars)"
                ) from None
            if version is not None and ("version" in text.lower() or "not found" in text.lower()):
                raise StorageError(f"{table.name}: cannot load version {version}: {text}") from None
            raise StorageError(f"{table.name}: cannot open the Delta table at {uri}: {text}") from None

    def _check_readable(self, table: TableRef, dtable: Any) -> None:
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

    def _check_writable(self, table: TableRef, dtable: Any) -> None:
        self._check_readable(table, dtable)
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

    # ---- schema helpers --------------------------------------------------------------------------------
    @staticmethod
    def _spark_schema(dtable: Any) -> StructType:
        from pyspark.sql.types import StructType

        return StructType.fromJson(json.loads(dtable.schema().to_json()))

    def exists(self, table: TableRef) -> bool:
        return _is_delta(_uri(table))

    def version(self, table: TableRef) -> int | None:
        if not self.exists(table):
            return None
        return int(self._table(table).version())

    # ---- read ------------------------------------------------------------------------------------------
    def read(self, table: TableRef, version: int | None = None) -> DataFrame:
        dtable = self._table(table, version)
        self._check_readable(table, dtable)
        return self._read_files(dtable, self._spark_schema(dtable), _uri(table))

    def schema(self, table: TableRef, version: int | None = None) -> StructType:
        return self._spark_schema(self._table(table, version))

    def _read_files(
        self, dtable: Any, schema: StructType, root: str, only: Collection[str] | None = None
    ) -> DataFrame:
        """The active files (or those of ``only``, raw relative paths) as a DataFrame in schema order.

        File paths are built from the raw table folder and the log's paths (deltalake's ``file_uris()`` and
        ``table_uri`` percent-encode the table folder, so a folder with a space would not be found), and
        partition values come from the log: Spark's own partition discovery is used only for files whose
        directory names Spark decodes to exactly the log's values (delta-rs percent-encodes non-ASCII
        characters as UTF-8 bytes, which Spark would decode character by character into other values).
        """
        from pyspark.sql import functions as F
        from pyspark.sql.types import StructType

        partition_cols = list(dtable.metadata().partition_columns)
        column_order = [f"`{f.name}`" for f in schema.fields]
        files = [f for f in _active_files(dtable, root, partition_cols) if only is None or f[0] in only]
        if not files:
            return self.spark.createDataFrame([], schema)
        if not partition_cols:
            return self.spark.read.schema(schema).parquet(*[f[1] for f in files]).select(*column_order)
        hive = [f[1] for f in files if _hive_consistent(f[0], f[2], schema, partition_cols)]
        frames = []
        if hive:
            frames.append(
                self.spark.read.schema(schema)
                .option("basePath", root)
                .option("recursiveFileLookup", "false")
                .parquet(*hive)
                .select(*column_order)
            )
        # Other files: read each partition's files and add its values (from the log) as literals.
        groups: dict[tuple[Any, ...], list[str]] = {}
        hive_set = set(hive)
        for _rel, path, values in files:
            if path not in hive_set:
                groups.setdefault(tuple(values[c] for c in partition_cols), []).append(path)
        data_schema = StructType([f for f in schema.fields if f.name not in partition_cols])
        for key, group in groups.items():
            frame = self.spark.read.schema(data_schema).parquet(*group)
            for col, value in zip(partition_cols, key, strict=True):
                frame = frame.withColumn(col, F.lit(value).cast(schema[col].dataType))
            frames.append(frame.select(*column_order))
        out = frames[0]
        for frame in frames[1:]:
            out = out.unionByName(frame)
        return out

    # ---- write -----------------------------------------------------------------------------------------
    def write(
        self,
        df: DataFrame,
        table: TableRef,
        mode: str = "append",
        *,
        partition_by: Sequence[str] = (),
        replace_where: str | None = None,
        overwrite_schema: bool = False,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        commit_info: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        from deltalake import Schema as DeltaSchema
        from deltalake.exceptions import CommitFailedError
        from deltalake.transaction import CommitProperties, RemoveAction, create_table_with_add_actions

        if mode not in ("append", "overwrite"):
            raise StorageError(
                f"{table.name}: unknown write mode {mode!r}; use append or overwrite (or merge)"
            )
        if replace_where and mode != "overwrite":
            raise StorageError(f"{table.name}: replace_where needs mode 'overwrite'")
        root = _uri(table)
        exists = _is_delta(root)
        dtable = None
        removes: list[Any] = []
        if exists:
            dtable = self._table(table)
            self._check_writable(table, dtable)
            table_schema = self._spark_schema(dtable)
            table_parts = list(dtable.metadata().partition_columns)
            if partition_by and list(partition_by) != table_parts and not overwrite_schema:
                raise SchemaMismatchError(
                    f"{table.name}: table is partitioned by {table_parts or 'nothing'}, "
                    f"the write asks for {list(partition_by)}"
                )
            if overwrite_schema and mode == "overwrite" and not replace_where:
                table_schema = df.schema
                table_parts = list(partition_by)
            else:
                df = self._conform(df, table_schema, table.name)
            df = self._enforce_constraints(df, table_schema, dtable, table.name)
            if replace_where:
                removes = self._files_matching(dtable, table_schema, replace_where, table)
                kept = self._rows_not_matching(removes, dtable, table_schema, replace_where, root)
                df = self._check_rows_match(df, replace_where, table.name)
                if kept is not None:
                    df = df.unionByName(kept)
        else:
            table_schema = df.schema
            table_parts = list(partition_by)
            missing = [c for c in table_parts if c not in table_schema.fieldNames()]
            if missing:
                raise SchemaMismatchError(f"{table.name}: partition column(s) {missing} are not in the data")
            df = self._enforce_constraints(df, table_schema, None, table.name)
        self._check_schema_supported(table_schema, table.name)

        staging = os.path.join(root, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
        moved: list[str] = []
        try:
            adds = self._write_files(df, staging, root, table_parts, table_schema, moved)
            delta_schema = DeltaSchema.from_json(table_schema.json())
            custom = self._custom_metadata(commit_info)
            commit = CommitProperties(custom_metadata=custom) if custom else None
            if not exists:
                Path(root).mkdir(parents=True, exist_ok=True)
                create_table_with_add_actions(
                    root,
                    delta_schema,
                    adds,
                    mode="error",
                    partition_by=table_parts or None,
                    description=description,
                    configuration=dict(properties) if properties else None,
                    commit_properties=commit,
                )
            else:
                assert dtable is not None
                if mode == "overwrite" and not replace_where:
                    dtable.create_write_transaction(
                        adds,
                        mode="overwrite",
                        schema=delta_schema,
                        partition_by=table_parts or None,
                        commit_properties=commit,
                    )
                else:
                    now = int(time.time() * 1000)
                    remove_actions = [
                        RemoveAction(
                            path=p, data_change=True, deletion_timestamp=now, size=size, partition_values=pv
                        )
                        for p, size, pv in removes
                    ]
                    dtable.create_write_transaction(
                        [*adds, *remove_actions],
                        mode="append",
                        schema=delta_schema,
                        partition_by=table_parts or None,
                        commit_properties=commit,
                    )
                if properties:
                    self._table(table).alter.set_table_properties(dict(properties), raise_if_not_exists=False)
        except BaseException as exc:
            for path in moved:  # files already moved into place but not committed
                with contextlib.suppress(OSError):
                    os.remove(path)
            if isinstance(exc, CommitFailedError):  # a concurrent commit conflicts with this one
                raise WriteConflictError(
                    f"{table.name}: the table changed while this write ran ({str(exc).splitlines()[0]}); "
                    "nothing was committed: run the job again"
                ) from None
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        version = self.version(table)
        assert version is not None
        op = "WRITE" if exists or adds else "CREATE"
        return WriteResult(
            table=table.name,
            operation=op if not replace_where else "REPLACE WHERE",
            version=version,
            rows_written=sum(json.loads(a.stats).get("numRecords", 0) for a in adds),
            files_added=len(adds),
            files_removed=len(removes),
        )

    @staticmethod
    def _custom_metadata(commit_info: Mapping[str, Any] | None) -> dict[str, Any]:
        return {str(k): v for k, v in (commit_info or {}).items()}

    @staticmethod
    def _check_schema_supported(schema: StructType, name: str) -> None:
        from pyspark.sql.types import ArrayType, MapType, NullType, StructType

        def walk(dtype: Any, path: str) -> None:
            if isinstance(dtype, NullType):
                raise SchemaMismatchError(f"{name}: column {path} has no type (void); cast it before writing")
            if isinstance(dtype, StructType):
                for f in dtype.fields:
                    walk(f.dataType, f"{path}.{f.name}" if path else f.name)
            elif isinstance(dtype, ArrayType):
                walk(dtype.elementType, path + "[]")
            elif isinstance(dtype, MapType):
                walk(dtype.keyType, path + "{key}")
                walk(dtype.valueType, path + "{value}")

        walk(schema, "")

    @staticmethod
    def _conform(df: DataFrame, schema: StructType, name: str) -> DataFrame:
        """Reorder the data's columns to the table's; refuse missing, extra or differently typed columns."""
        incoming = {f.name: f for f in df.schema.fields}
        expected = {f.name: f for f in schema.fields}
        missing = [c for c in expected if c not in incoming]
        extra = [c for c in incoming if c not in expected]
        if missing or extra:
            raise SchemaMismatchError(
                f"{name}: the data does not fit the table schema"
                + (f"; missing column(s): {', '.join(missing)}" if missing else "")
                + (f"; unknown column(s): {', '.join(extra)}" if extra else "")
            )
        wrong = [
            f"{c} is {incoming[c].dataType.simpleString()}, table has {expected[c].dataType.simpleString()}"
            for c in expected
            if _strip_nullability(incoming[c].dataType) != _strip_nullability(expected[c].dataType)
        ]
        if wrong:
            raise SchemaMismatchError(f"{name}: column type(s) differ: {'; '.join(wrong)}")
        return df.select(*[f"`{c}`" for c in expected])

    @staticmethod
    def _enforce_constraints(df: DataFrame, schema: StructType, dtable: Any, name: str) -> DataFrame:
        """NOT NULL columns and CHECK constraints, checked inside the write job (raise_error, no extra pass)."""
        from pyspark.sql import functions as F

        checks: list[tuple[str, Any]] = []
        for f in schema.fields:
            if not f.nullable and df.schema[f.name].nullable:
                checks.append((f"NOT NULL {f.name}", F.col(f"`{f.name}`").isNotNull()))
        if dtable is not None:
            for key, expr in (dtable.metadata().configuration or {}).items():
                if key.startswith("delta.constraints."):
                    checks.append((f"CHECK {key.removeprefix('delta.constraints.')}: {expr}", F.expr(expr)))
        if not checks:
            return df
        guard = F.lit(True)
        for label, cond in checks:
            message = f"[medallion] {name}: a row violates {label}"
            guard = F.when(F.coalesce(cond, F.lit(False)), guard).otherwise(F.raise_error(F.lit(message)))
        # Reference the guard from a real column so the optimizer cannot drop it.
        first = schema.fields[0].name
        return df.withColumn(first, F.when(guard, F.col(f"`{first}`")))

    @staticmethod
    def _check_rows_match(df: DataFrame, predicate: str, name: str) -> DataFrame:
        from pyspark.sql import functions as F

        message = f"[medallion] {name}: a written row does not match replace_where ({predicate})"
        first = df.columns[0]
        return df.withColumn(
            first,
            F.when(F.coalesce(F.expr(predicate), F.lit(False)), F.col(f"`{first}`")).otherwise(
                F.raise_error(F.lit(message))
            ),
        )

    def _files_matching(
        self, dtable: Any, schema: StructType, predicate: str, table: TableRef
    ) -> list[tuple[str, int, dict[str, str | None]]]:
        """Active files holding at least one row that matches ``predicate`` (one distributed Spark pass)."""
        import pyarrow as pa
        from pyspark.sql import functions as F

        name = table.name
        if not dtable.file_uris():
            return []
        try:
            current = self._read_files(dtable, schema, _uri(table)).withColumn("_file", F.input_file_name())
            hit = {
                _local_path(r[0])
                for r in current.where(F.expr(predicate)).select("_file").distinct().collect()
            }
        except Exception as exc:
            if "AnalysisException" in type(exc).__name__ or "UNRESOLVED" in str(exc):
                raise SchemaMismatchError(
                    f"{name}: replace_where {predicate!r} does not apply: {exc}".splitlines()[0]
                ) from None
            raise
        actions = pa.table(dtable.get_add_actions(flatten=False))
        out = []
        root = _uri(table).rstrip("/") + "/"
        parts_col = actions.column("partition").to_pylist() if "partition" in actions.column_names else None
        for i, (path, size) in enumerate(
            zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist(), strict=True)
        ):
            raw = urllib.parse.unquote(path)
            if os.path.normpath(root + raw) in hit:
                pv = {k: _partition_string(v) for k, v in (parts_col[i] or {}).items()} if parts_col else {}
                out.append((raw, int(size), pv))
        return out

    def _rows_not_matching(
        self,
        removes: Sequence[tuple[str, int, Any]],
        dtable: Any,
        schema: StructType,
        predicate: str,
        root: str,
    ) -> DataFrame | None:
        """Rows of the touched files that do NOT match the predicate: they are rewritten, not lost."""
        from pyspark.sql import functions as F

        if not removes:
            return None
        df = self._read_files(dtable, schema, root, only={p for p, _, _ in removes})
        return df.where(~F.coalesce(F.expr(predicate), F.lit(False)))

    def _write_files(
        self,
        df: DataFrame,
        staging: str,
        root: str,
        partition_cols: Sequence[str],
        schema: StructType,
        moved: list[str],
    ) -> list[Any]:
        """Spark writes parquet into ``staging``; files move into the table; returns their AddActions."""
        self.spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        writer = df.write.mode("errorifexists")
        if self.conf.max_rows_per_file:
            writer = writer.option("maxRecordsPerFile", self.conf.max_rows_per_file)
        if partition_cols:
            writer = writer.partitionBy(*partition_cols)
        try:
            writer.parquet(staging)
        except Exception as exc:
            text = str(exc)
            match = re.search(r"\[medallion\] ([^\n]*)", text)
            if match:
                raise WriteConflictError(match.group(1).split("[medallion] ")[-1].rstrip("'\"")) from None
            raise
        staged = []
        for dirpath, _dirs, filenames in os.walk(staging):
            for filename in filenames:
                if filename.endswith(".parquet") and not filename.startswith((".", "_")):
                    staged.append(os.path.join(dirpath, filename))
        adds = []
        with ThreadPoolExecutor(max_workers=8) as pool:
            infos = list(pool.map(lambda p: _file_stats(p, schema, partition_cols), staged))
        for src, stats in zip(staged, infos, strict=True):
            rel = os.path.relpath(src, staging)
            dest = os.path.join(root, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(src, dest)
            moved.append(dest)
            adds.append(_add_action(rel, dest, partition_cols, stats))
        return adds

    # ---- merge / delete / update through deltalake ------------------------------------------------------
    def merge(
        self,
        source: DataFrame,
        table: TableRef,
        spec: MergeSpec,
        *,
        commit_info: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        from deltalake.transaction import CommitProperties

        dtable = self._table(table)
        self._check_writable(table, dtable)
        schema = self._spark_schema(dtable)
        missing_keys = [k for k in spec.keys if k not in schema.fieldNames() or k not in source.columns]
        if missing_keys:
            raise SchemaMismatchError(
                f"{table.name}: merge key(s) {missing_keys} missing from the table or source"
            )
        source = self._conform(source, schema, table.name)
        limit = self.conf.merge_max_source_rows
        # One Spark job: the bounded source goes to the driver as Arrow (a second action would compute the
        # source twice, and its Observations would see the first, limited, pass).
        arrow = source.limit(limit + 1).toArrow()
        if arrow.num_rows > limit:
            raise MergeSourceTooLargeError(
                f"{table.name}: the MERGE source has more than {limit:,} rows; the offline engine hands it to "
                "deltalake as Arrow on the driver. Raise storage.offline.merge_max_source_rows if the driver "
                "has the memory, split the source, or run with native Delta"
            )
        arrow = _arrow_to_delta_types(arrow, dtable)
        predicate = " AND ".join(f"t.`{k}` = s.`{k}`" for k in spec.keys)
        custom = self._custom_metadata(commit_info)
        merger = dtable.merge(
            source=arrow,
            predicate=predicate,
            source_alias="s",
            target_alias="t",
            commit_properties=CommitProperties(custom_metadata=custom) if custom else None,
        )
        if spec.delete_condition:
            merger = merger.when_matched_delete(predicate=spec.delete_condition)
        if spec.update:
            merger = merger.when_matched_update_all(predicate=spec.update_condition)
        if spec.insert:
            merger = merger.when_not_matched_insert_all(predicate=spec.insert_condition)
        if spec.delete_not_matched_by_source:
            merger = merger.when_not_matched_by_source_delete(predicate=spec.not_matched_by_source_condition)
        try:
            metrics = merger.execute()
        except Exception as exc:
            raise WriteConflictError(f"{table.name}: MERGE failed: {str(exc).splitlines()[0]}") from None
        version = self.version(table)
        assert version is not None
        return WriteResult(
            table=table.name,
            operation="MERGE",
            version=version,
            rows_written=int(metrics.get("num_target_rows_inserted", 0)),
            rows_updated=int(metrics.get("num_target_rows_updated", 0)),
            rows_deleted=int(metrics.get("num_target_rows_deleted", 0)),
            files_added=int(metrics.get("num_target_files_added", 0)),
            files_removed=int(metrics.get("num_target_files_removed", 0)),
            metrics=dict(metrics),
        )

    def delete(self, table: TableRef, predicate: str | None = None) -> WriteResult:
        dtable = self._table(table)
        self._check_writable(table, dtable)
        try:
            metrics = dtable.delete(predicate)
        except Exception as exc:
            raise StorageError(
                f"{table.name}: DELETE WHERE {predicate} failed: {str(exc).splitlines()[0]}"
            ) from None
        return WriteResult(
            table=table.name,
            operation="DELETE",
            version=int(self._table(table).version()),
            rows_deleted=int(metrics.get("num_deleted_rows", 0)),
            files_added=int(metrics.get("num_added_files", 0)),
            files_removed=int(metrics.get("num_removed_files", 0)),
            metrics=dict(metrics),
        )

    def update(
        self, table: TableRef, set_exprs: Mapping[str, str], predicate: str | None = None
    ) -> WriteResult:
        dtable = self._table(table)
        self._check_writable(table, dtable)
        try:
            metrics = dtable.update(updates=dict(set_exprs), predicate=predicate)
        except Exception as exc:
            raise StorageError(f"{table.name}: UPDATE failed: {str(exc).splitlines()[0]}") from None
        return WriteResult(
            table=table.name,
            operation="UPDATE",
            version=int(self._table(table).version()),
            rows_updated=int(metrics.get("num_updated_rows", 0)),
            files_added=int(metrics.get("num_added_files", 0)),
            files_removed=int(metrics.get("num_removed_files", 0)),
            metrics=dict(metrics),
        )

    # ---- metadata and maintenance -------------------------------------------------------------------
    def distinct_values(self, table: TableRef, column: str, limit: int) -> list[Any] | None:
        """Read one column straight from the files with deltalake (no Spark job: reference keys are small)."""
        import pyarrow.compute as pc

        dtable = self._table(table)
        self._check_readable(table, dtable)
        values = pc.unique(dtable.to_pyarrow_table(columns=[column]).column(column).combine_chunks())
        values = values.filter(pc.is_valid(values))
        return None if len(values) > limit else values.to_pylist()

    def append_rows(
        self,
        table: TableRef,
        rows: list[tuple[Any, ...]],
        ddl: str,
        commit_info: Mapping[str, Any] | None = None,
    ) -> None:
        """Append driver-side rows with deltalake directly (one small file, one commit, no Spark job)."""
        import pyarrow as pa
        from deltalake import write_deltalake
        from deltalake.transaction import CommitProperties

        dtable = self._table(table)
        self._check_writable(table, dtable)
        schema = dtable.schema().to_arrow()
        arrow_schema = pa.schema(schema) if not isinstance(schema, pa.Schema) else schema
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in arrow_schema]
        data = pa.table(
            {f.name: pa.array(list(col), type=f.type) for f, col in zip(arrow_schema, columns, strict=True)},
            schema=arrow_schema,
        )
        custom = self._custom_metadata(commit_info)
        write_deltalake(
            dtable,
            data,
            mode="append",
            commit_properties=CommitProperties(custom_metadata=custom) if custom else None,
        )

    def history(self, table: TableRef, limit: int | None = None) -> list[dict[str, Any]]:
        return [_normalise_commit(c) for c in self._table(table).history(limit)]

    def set_comments(
        self, table: TableRef, description: str | None = None, columns: Mapping[str, str] | None = None
    ) -> None:
        dtable = self._table(table)
        if description is not None and (dtable.metadata().description or "") != description:
            dtable.alter.set_table_description(description)
        if columns:
            names = {f.name: f for f in self._spark_schema(dtable).fields}
            unknown = [c for c in columns if c not in names]
            if unknown:
                raise SchemaMismatchError(
                    f"{table.name}: comments name unknown column(s): {', '.join(unknown)}"
                )
            for column, comment in columns.items():
                if names[column].metadata.get("comment") != comment:
                    self._table(table).alter.set_column_metadata(column, {"comment": comment})

    def set_properties(self, table: TableRef, properties: Mapping[str, str]) -> None:
        self._table(table).alter.set_table_properties(dict(properties), raise_if_not_exists=False)

    def properties(self, table: TableRef) -> dict[str, str]:
        dtable = self._table(table)
        props = dict(dtable.metadata().configuration or {})
        if dtable.metadata().description:
            props["comment"] = dtable.metadata().description
        return props

    def optimize(self, table: TableRef, zorder_by: Sequence[str] = ()) -> dict[str, Any]:
        dtable = self._table(table)
        self._check_writable(table, dtable)
        if zorder_by:
            return dict(dtable.optimize.z_order(list(zorder_by)))
        return dict(dtable.optimize.compact())

    def vacuum(self, table: TableRef, retention_hours: int = 168) -> list[str]:
        dtable = self._table(table)
        removed = dtable.vacuum(
            retention_hours=retention_hours, dry_run=False, enforce_retention_duration=retention_hours >= 168
        )
        # Staging folders of writes that died before cleanup are older than any live write.
        root = Path(_uri(table))
        cutoff = time.time() - retention_hours * 3600
        for staging in root.glob(f"{STAGING_PREFIX}*"):
            if staging.stat().st_mtime < cutoff:
                shutil.rmtree(staging, ignore_errors=True)
                removed.append(staging.name)
        return list(removed)


# ---- helpers ---------------------------------------------------------------------------------------------


def _local_path(uri: str) -> str:
    """``file:///a/b%20c`` -> ``/a/b c`` (normalised), for comparing Spark's file names with the log's."""
    path = urllib.parse.urlparse(uri).path if uri.startswith("file:") else uri
    return os.path.normpath(urllib.parse.unquote(path))


def _spark_unescape(value: str) -> str:
    """Spark's decoding of a partition directory name: every ``%XX`` is one character (not a UTF-8 byte)."""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


def _active_files(
    dtable: Any, root: str, partition_cols: Sequence[str]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(raw relative path, local path, typed partition values from the log) of every active file."""
    import pyarrow as pa

    actions = pa.table(dtable.get_add_actions(flatten=True))
    values = {c: actions.column(f"partition.{c}").to_pylist() for c in partition_cols}
    out = []
    for i, path in enumerate(actions.column("path").to_pylist()):
        rel = urllib.parse.unquote(path)
        local = _local_path(path) if "://" in path else os.path.join(root, rel)
        out.append((rel, local, {c: values[c][i] for c in partition_cols}))
    return out


def _hive_consistent(
    rel: str, values: Mapping[str, Any], schema: StructType, partition_cols: Sequence[str]
) -> bool:
    """True when Spark's partition discovery of ``rel`` (``<col>=<value>/...``) yields the log's values."""
    from pyspark.sql.types import StringType, TimestampNTZType, TimestampType

    segments = rel.split("/")[:-1]
    if rel.startswith("/") or len(segments) != len(partition_cols):
        return False
    for segment, col in zip(segments, partition_cols, strict=True):
        key, sep, raw = segment.partition("=")
        if not sep or _spark_unescape(key) != col:
            return False
        decoded = _spark_unescape(raw)
        if decoded != urllib.parse.unquote(raw):
            return False  # percent-encoded UTF-8: Spark would decode another string
        value = values[col]
        dtype = schema[col].dataType
        if isinstance(dtype, TimestampType | TimestampNTZType):
            return False  # directory text depends on the writer's time zone: trust the log
        if isinstance(dtype, StringType):
            if (None if decoded == HIVE_NULL else decoded) != (None if value == "" else value):
                return False
        elif (decoded == HIVE_NULL) != (value is None):
            return False
    return True


def _strip_nullability(dtype: Any) -> str:
    """A type's shape without nullability, for comparisons."""
    return re.sub(r'"(nullable|containsNull|valueContainsNull)":(true|false)', "", dtype.json())


def _partition_string(value: Any) -> str | None:
    """Delta's string form of a partition value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _partition_values(rel: str, partition_cols: Sequence[str]) -> dict[str, str | None]:
    if not partition_cols:
        return {}
    segments = rel.split("/")[:-1]
    values: dict[str, str | None] = {}
    for segment, col in zip(segments, partition_cols, strict=True):
        key, _, raw = segment.partition("=")
        if key != col:
            raise StorageError(f"unexpected partition directory {segment!r} (expected column {col})")
        value = _unescape_path_segment(raw)
        values[col] = None if value == HIVE_NULL else value
    return values


def _json_stat(value: Any, upper: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return None  # Delta keeps no min/max for booleans
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, Decimal):
        # JSON holds a double, which readers parse back as a decimal: nudge it so that the text stays a
        # bound (a maximum never below the true value, a minimum never above).
        number = float(value)
        while Decimal(repr(number)) < value if upper else Decimal(repr(number)) > value:
            number = math.nextafter(number, math.inf if upper else -math.inf)
        return number if math.isfinite(number) else None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        micros = value.microsecond
        millis = value.replace(microsecond=(micros // 1000) * 1000)
        if upper and micros % 1000:
            millis += dt.timedelta(milliseconds=1)  # round a maximum up, never below the true value
        return millis.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        if len(value) <= STRING_STATS_PREFIX:
            return value
        return None if upper else value[:STRING_STATS_PREFIX]  # a truncated prefix is still a lower bound
    return None


def _file_stats(path: str, schema: StructType, partition_cols: Sequence[str]) -> dict[str, Any]:
    """Delta file statistics from the parquet footer: numRecords, minValues, maxValues, nullCount."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    top_level = {f.name for f in schema.fields} - set(partition_cols)
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for ci in range(group.num_columns):
            column = group.column(ci)
            path_parts = column.path_in_schema.split(".")
            if len(path_parts) != 1 or path_parts[0] not in top_level:
                continue  # nested leaves: no stats (readers treat missing stats as unknown)
            name = path_parts[0]
            stats = column.statistics
            if stats is None:
                nulls[name] = None
                continue
            if stats.has_null_count and nulls.get(name, 0) is not None:
                nulls[name] = nulls.get(name, 0) + stats.null_count
            else:
                nulls[name] = None
            if stats.has_min_max:
                lo, hi = _json_stat(stats.min, False), _json_stat(stats.max, True)
                prev_lo, prev_hi = mins.get(name, lo), maxs.get(name, hi)
                mins[name] = None if lo is None or prev_lo is None else min(lo, prev_lo)
                maxs[name] = None if hi is None or prev_hi is None else max(hi, prev_hi)
            elif group.num_rows and stats.null_count != group.num_rows:
                mins[name] = maxs[name] = None
    return {
        "numRecords": meta.num_rows,
        "minValues": {k: v for k, v in mins.items() if v is not None},
        "maxValues": {k: v for k, v in maxs.items() if v is not None},
        "nullCount": {k: v for k, v in nulls.items() if v is not None},
    }


def _add_action(rel: str, dest: str, partition_cols: Sequence[str], stats: Mapping[str, Any]) -> Any:
    from deltalake.transaction import AddAction

    st = os.stat(dest)
    return AddAction(
        path=rel,
        size=st.st_size,
        partition_values=_partition_values(rel, partition_cols),
        modification_time=int(st.st_mtime * 1000),
        data_change=True,
        stats=json.dumps(stats, separators=(",", ":")),
    )


def _arrow_to_delta_types(arrow: Any, dtable: Any) -> Any:
    """Cast the Arrow source to the exact Arrow types deltalake expects for the table."""
    import pyarrow as pa

    target = pa.schema(dtable.schema().to_arrow())
    fields = []
    columns = []
    for name in arrow.column_names:
        column = arrow.column(name)
        field = target.field(name)
        if column.type != field.type:
            column = column.cast(field.type)
        fields.append(pa.field(name, field.type, nullable=True))
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _normalise_commit(commit: Mapping[str, Any]) -> dict[str, Any]:
    known = {"version", "timestamp", "operation", "operationParameters", "operationMetrics", "engineInfo"}
    out = {
        "version": commit.get("version"),
        "timestamp": commit.get("timestamp"),
        "operation": commit.get("operation"),
        "operationParameters": commit.get("operationParameters") or {},
        "operationMetrics": commit.get("operationMetrics") or {},
        "engineInfo": commit.get("engineInfo") or commit.get("clientVersion"),
    }
    out["custom"] = {k: v for k, v in commit.items() if k not in known}
    return out
