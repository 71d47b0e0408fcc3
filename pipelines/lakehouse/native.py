"""Native Delta engine: delta-spark (Databricks, or a local session with the Delta jars).

Tables are addressed by path (``delta.`/path```) locally or by Unity Catalog name on Databricks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.errors import SchemaMismatchError, StorageError, TableNotFoundError, WriteConflictError
from pipelines.lakehouse.base import DeltaStore, MergeSpec, TableRef, WriteResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def _sql_name(table: TableRef) -> str:
    if table.kind == "catalog":
        return ".".join(f"`{part}`" for part in table.location.split("."))
    return f"delta.`{table.location}`"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class NativeDeltaStore(DeltaStore):
    engine = "native"

    def _delta_table(self, table: TableRef) -> Any:
        from delta.tables import DeltaTable

        if not self.exists(table):
            raise TableNotFoundError(
                f"{table.name}: no Delta table at {table.location} (run the job that builds it)"
            )
        if table.kind == "catalog":
            return DeltaTable.forName(self.spark, table.location)
        return DeltaTable.forPath(self.spark, table.location)

    def exists(self, table: TableRef) -> bool:
        from delta.tables import DeltaTable

        if table.kind == "catalog":
            return bool(self.spark.catalog.tableExists(table.location))
        return bool(DeltaTable.isDeltaTable(self.spark, table.location))

    def version(self, table: TableRef) -> int | None:
        if not self.exists(table):
            return None
        row = self._delta_table(table).history(1).select("version").first()
        return int(row[0]) if row else None

    def read(self, table: TableRef, version: int | None = None) -> DataFrame:
        if not self.exists(table):
            raise TableNotFoundError(f"{table.name}: no Delta table at {table.location}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.table(table.location) if table.kind == "catalog" else reader.load(table.location)

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
        if mode not in ("append", "overwrite"):
            raise StorageError(
                f"{table.name}: unknown write mode {mode!r}; use append or overwrite (or merge)"
            )
        existed = self.exists(table)
        writer = df.write.format("delta").mode(mode)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if replace_where:
            writer = writer.option("replaceWhere", replace_where)
        if overwrite_schema:
            writer = writer.option("overwriteSchema", "true")
        if commit_info:
            writer = writer.option("userMetadata", json.dumps(dict(commit_info), default=str))
        try:
            if table.kind == "catalog":
                writer.saveAsTable(table.location)
            else:
                writer.save(table.location)
        except Exception as exc:
            text = str(exc).splitlines()[0]
            if "DELTA_REPLACE_WHERE_MISMATCH" in str(exc) or "violate" in text.lower():
                raise WriteConflictError(f"{table.name}: {text}") from None
            if (
                "schema" in text.lower()
                and "mismatch" in text.lower()
                or "DELTA_FAILED_TO_MERGE_FIELDS" in str(exc)
            ):
                raise SchemaMismatchError(f"{table.name}: {text}") from None
            raise
        if not existed and (description or properties):
            self.set_comments(table, description)
            if properties:
                self.set_properties(table, properties)
        return self._result(table, "WRITE")

    def _result(self, table: TableRef, operation: str) -> WriteResult:
        last = self._delta_table(table).history(1).first()
        metrics = dict(last["operationMetrics"] or {}) if last else {}
        as_int = lambda key: int(metrics.get(key, 0) or 0)  # noqa: E731
        return WriteResult(
            table=table.name,
            operation=operation,
            version=int(last["version"]) if last else 0,
            rows_written=as_int("numOutputRows") if operation != "MERGE" else as_int("numTargetRowsInserted"),
            rows_updated=as_int("numTargetRowsUpdated") or as_int("numUpdatedRows"),
            rows_deleted=as_int("numTargetRowsDeleted") or as_int("numDeletedRows"),
            files_added=as_int("numFiles") or as_int("numTargetFilesAdded") or as_int("numAddedFiles"),
            files_removed=as_int("numTargetFilesRemoved") or as_int("numRemovedFiles"),
            metrics=metrics,
        )

    def merge(
        self,
        source: DataFrame,
        table: TableRef,
        spec: MergeSpec,
        *,
        commit_info: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        target = self._delta_table(table)
        condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in spec.keys)
        builder = target.alias("t").merge(source.alias("s"), condition)
        if spec.delete_condition:
            builder = builder.whenMatchedDelete(condition=spec.delete_condition)
        if spec.update:
            builder = builder.whenMatchedUpdateAll(condition=spec.update_condition)
        if spec.insert:
            builder = builder.whenNotMatchedInsertAll(condition=spec.insert_condition)
        if spec.delete_not_matched_by_source:
            builder = builder.whenNotMatchedBySourceDelete(condition=spec.not_matched_by_source_condition)
        if commit_info:
            self.spark.conf.set(
                "spark.databricks.delta.commitInfo.userMetadata", json.dumps(dict(commit_info), default=str)
            )
        try:
            builder.execute()
        finally:
            if commit_info:
                self.spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
        return self._result(table, "MERGE")

    def delete(self, table: TableRef, predicate: str | None = None) -> WriteResult:
        self._delta_table(table).delete(predicate) if predicate else self._delta_table(table).delete()
        return self._result(table, "DELETE")

    def update(
        self, table: TableRef, set_exprs: Mapping[str, str], predicate: str | None = None
    ) -> WriteResult:
        self._delta_table(table).update(condition=predicate, set=dict(set_exprs))
        return self._result(table, "UPDATE")

    def history(self, table: TableRef, limit: int | None = None) -> list[dict[str, Any]]:
        rows = self._delta_table(table).history(limit) if limit else self._delta_table(table).history()
        out = []
        for row in rows.collect():
            custom: dict[str, Any] = {}
            if row["userMetadata"]:
                try:
                    custom = json.loads(row["userMetadata"])
                except ValueError:
                    custom = {"userMetadata": row["userMetadata"]}
            out.append(
                {
                    "version": int(row["version"]),
                    "timestamp": int(row["timestamp"].timestamp() * 1000),
                    "operation": row["operation"],
                    "operationParameters": dict(row["operationParameters"] or {}),
                    "operationMetrics": dict(row["operationMetrics"] or {}),
                    "engineInfo": row["engineInfo"],
                    "custom": custom,
                }
            )
        return out

    def set_comments(
        self, table: TableRef, description: str | None = None, columns: Mapping[str, str] | None = None
    ) -> None:
        name = _sql_name(table)
        if description is not None:
            if table.kind == "catalog":
                self.spark.sql(f"COMMENT ON TABLE {name} IS {_quote(description)}")
            else:
                self.spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ('comment' = {_quote(description)})")
        for column, comment in (columns or {}).items():
            self.spark.sql(f"ALTER TABLE {name} ALTER COLUMN `{column}` COMMENT {_quote(comment)}")

    def set_properties(self, table: TableRef, properties: Mapping[str, str]) -> None:
        if not properties:
            return
        pairs = ", ".join(f"{_quote(k)} = {_quote(str(v))}" for k, v in properties.items())
        self.spark.sql(f"ALTER TABLE {_sql_name(table)} SET TBLPROPERTIES ({pairs})")

    def properties(self, table: TableRef) -> dict[str, str]:
        detail = self._delta_table(table).detail().first()
        props = dict(detail["properties"] or {}) if detail else {}
        if detail and detail["description"]:
            props["comment"] = detail["description"]
        return props

    def optimize(self, table: TableRef, zorder_by: Sequence[str] = ()) -> dict[str, Any]:
        optimizer = self._delta_table(table).optimize()
        result = optimizer.executeZOrderBy(*zorder_by) if zorder_by else optimizer.executeCompaction()
        row = result.first()
        return row.asDict(recursive=True) if row else {}

    def vacuum(self, table: TableRef, retention_hours: int = 168) -> list[str]:
        if retention_hours < 168:
            self.spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        self._delta_table(table).vacuum(retention_hours)
        return []
