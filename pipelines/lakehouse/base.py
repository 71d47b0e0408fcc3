"""The storage interface every job uses, whichever Delta engine is behind it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


@dataclass(frozen=True)
class TableRef:
    """A logical table (``bronze.flights``) and where it physically lives."""

    name: str
    # "path": a folder (local lakehouse); "catalog": a metastore name (Unity Catalog ``cat.schema.table``).
    kind: str
    location: str

    def __str__(self) -> str:
        return f"{self.name} ({self.location})"


@dataclass(frozen=True)
class WriteResult:
    """What a write, merge, delete or update did: the version it committed and its row counts."""

    table: str
    operation: str
    version: int
    rows_written: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    files_added: int = 0
    files_removed: int = 0
    metrics: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MergeSpec:
    """Upsert of a source into a table on key columns.

    Conditions are SQL over the aliases ``t`` (target) and ``s`` (source), e.g. ``"s.row_hash <> t.row_hash"``.
    """

    keys: Sequence[str]
    update: bool = True
    update_condition: str | None = None
    insert: bool = True
    insert_condition: str | None = None
    delete_condition: str | None = None
    # Delete target rows that have no source row (full refresh of a snapshot), optionally restricted.
    delete_not_matched_by_source: bool = False
    not_matched_by_source_condition: str | None = None


class DeltaStore(ABC):
    """One small interface over Delta tables: read, write, merge, history, maintenance."""

    engine: str = "abstract"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    @abstractmethod
    def exists(self, table: TableRef) -> bool: ...

    @abstractmethod
    def version(self, table: TableRef) -> int | None:
        """Latest committed version, or None when the table does not exist."""

    @abstractmethod
    def read(self, table: TableRef, version: int | None = None) -> DataFrame:
        """The table (optionally as of ``version``) as a Spark DataFrame, columns in schema order."""

    def schema(self, table: TableRef, version: int | None = None) -> StructType:
        """The table's schema from its Delta log (no data is read). Engines may answer without Spark."""
        return self.read(table, version).schema

    @abstractmethod
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
        """Append, overwrite, or overwrite the rows matching ``replace_where`` (a SQL predicate).

        With ``replace_where`` every written row must match the predicate (else WriteConflictError)."""

    @abstractmethod
    def merge(
        self,
        source: DataFrame,
        table: TableRef,
        spec: MergeSpec,
        *,
        commit_info: Mapping[str, Any] | None = None,
    ) -> WriteResult: ...

    @abstractmethod
    def delete(self, table: TableRef, predicate: str | None = None) -> WriteResult: ...

    @abstractmethod
    def update(
        self, table: TableRef, set_exprs: Mapping[str, str], predicate: str | None = None
    ) -> WriteResult: ...

    def distinct_values(self, table: TableRef, column: str, limit: int) -> list[Any] | None:
        """Up to ``limit`` distinct non-null values of ``column`` (None when there are more): reference keys
        for checks. Engines may answer without a Spark job."""
        rows = (
            self.read(table)
            .select(column)
            .where(f"`{column}` IS NOT NULL")
            .distinct()
            .limit(limit + 1)
            .collect()
        )
        return None if len(rows) > limit else [r[0] for r in rows]

    def append_rows(
        self,
        table: TableRef,
        rows: list[tuple[Any, ...]],
        ddl: str,
        commit_info: Mapping[str, Any] | None = None,
    ) -> None:
        """Append a few driver-side rows to an existing table (DQ results). Engines may skip Spark."""
        self.write(self.spark.createDataFrame(rows, ddl), table, "append", commit_info=commit_info)

    @abstractmethod
    def history(self, table: TableRef, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits, newest first: version, timestamp (ms), operation, parameters, metrics, custom metadata."""

    @abstractmethod
    def set_comments(
        self, table: TableRef, description: str | None = None, columns: Mapping[str, str] | None = None
    ) -> None: ...

    @abstractmethod
    def set_properties(self, table: TableRef, properties: Mapping[str, str]) -> None: ...

    @abstractmethod
    def properties(self, table: TableRef) -> dict[str, str]: ...

    @abstractmethod
    def optimize(self, table: TableRef, zorder_by: Sequence[str] = ()) -> dict[str, Any]: ...

    @abstractmethod
    def vacuum(self, table: TableRef, retention_hours: int = 168) -> list[str]:
        """Delete files no longer referenced by versions within the retention; returns what was removed."""
