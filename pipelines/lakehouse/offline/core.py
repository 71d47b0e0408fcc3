"""The offline engine's table handle and reads: deltalake opens the log, Spark reads the active files."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from pipelines.config import OfflineConf
from pipelines.lakehouse.base import DeltaStore, TableRef, find_commit, parse_custom
from pipelines.lakehouse.offline.features import check_readable, open_table
from pipelines.lakehouse.offline.paths import active_files, hive_consistent, is_delta, table_root

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


class OfflineCore(DeltaStore):
    """What every part of the offline engine uses: open a table, its Spark schema, read files, history."""

    engine = "offline"

    def __init__(
        self,
        spark: SparkSession | None = None,
        conf: OfflineConf | None = None,
        *,
        start: Callable[[], SparkSession] | None = None,
    ) -> None:
        super().__init__(spark, start=start)
        self.conf = conf or OfflineConf()

    def _table(self, table: TableRef, version: int | None = None) -> Any:
        return open_table(table, version)

    @staticmethod
    def _spark_schema(dtable: Any) -> StructType:
        from pyspark.sql.types import StructType

        return StructType.fromJson(json.loads(dtable.schema().to_json()))

    def exists(self, table: TableRef) -> bool:
        return is_delta(table_root(table))

    def version(self, table: TableRef) -> int | None:
        if not self.exists(table):
            return None
        return int(self._table(table).version())

    def read(self, table: TableRef, version: int | None = None) -> DataFrame:
        dtable = self._table(table, version)
        check_readable(table, dtable)
        return self._read_files(dtable, self._spark_schema(dtable), table_root(table))

    def schema(self, table: TableRef, version: int | None = None) -> StructType:
        """From the Delta log alone: no Spark job."""
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
        files = [f for f in active_files(dtable, root, partition_cols) if only is None or f[0] in only]
        if not files:
            return self.spark.createDataFrame([], schema)
        if not partition_cols:
            return self.spark.read.schema(schema).parquet(*[f[1] for f in files]).select(*column_order)
        hive = [f[1] for f in files if hive_consistent(f[0], f[2], schema, partition_cols)]
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

    def history(self, table: TableRef, limit: int | None = None) -> list[dict[str, Any]]:
        return [_normalise_commit(c) for c in self._table(table).history(limit)]

    def _own_version(self, table: TableRef, write_id: str) -> int | None:
        """The version of the commit this write made (found by its id), or None if there is none."""
        if not self.exists(table):
            return None
        commit = find_commit(lambda limit: self.history(table, limit), write_id)
        return None if commit is None else int(commit["version"])

    def distinct_values(self, table: TableRef, column: str, limit: int) -> list[Any] | None:
        """Read one column straight from the files with deltalake (no Spark job: reference keys are small)."""
        import pyarrow.compute as pc

        dtable = self._table(table)
        check_readable(table, dtable)
        values = pc.unique(dtable.to_pyarrow_table(columns=[column]).column(column).combine_chunks())
        values = values.filter(pc.is_valid(values))
        return None if len(values) > limit else values.to_pylist()


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
    out["custom"] = parse_custom(commit, known)
    return out
