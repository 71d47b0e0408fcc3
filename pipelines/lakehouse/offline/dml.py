"""MERGE, DELETE and UPDATE of the offline engine, through deltalake.

deltalake's MERGE takes its source as Arrow on the driver: the source is bounded by
``storage.offline.merge_max_source_rows`` and a larger one is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConcurrentCommitError, MergeSourceTooLargeError, StorageError, WriteConflictError
from pipelines.faults import crash_point
from pipelines.lakehouse.base import (
    MergeSpec,
    TableRef,
    WriteResult,
    check_merge_keys,
    conform,
    merge_predicate,
    new_write_id,
    with_write_id,
)
from pipelines.lakehouse.offline.core import OfflineCore
from pipelines.lakehouse.offline.features import check_writable
from pipelines.lakehouse.offline.write import _commit_properties

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


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


def _dml_error(table: TableRef, what: str, exc: Exception) -> Exception:
    from deltalake.exceptions import CommitFailedError

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, CommitFailedError):
        return ConcurrentCommitError(
            f"{table.name}: {what} conflicts with a concurrent commit ({text}); run again"
        )
    return StorageError(f"{table.name}: {what} failed: {text}")


def _metric(metrics: Mapping[str, Any], key: str) -> int:
    return int(metrics.get(key, 0) or 0)


class DmlMixin(OfflineCore):
    def merge(
        self,
        source: DataFrame,
        table: TableRef,
        spec: MergeSpec,
        *,
        commit_info: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        dtable = self._table(table)
        check_writable(table, dtable)
        schema = self._spark_schema(dtable)
        check_merge_keys(table, spec, schema, source)
        source = conform(source, schema, table.name)
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
        merger = dtable.merge(
            source=arrow,
            predicate=merge_predicate(spec),
            source_alias="s",
            target_alias="t",
            commit_properties=_commit_properties(with_write_id(commit_info, new_write_id())),
        )
        if spec.delete_condition:
            merger = merger.when_matched_delete(predicate=spec.delete_condition)
        if spec.update:
            merger = merger.when_matched_update_all(predicate=spec.update_condition)
        if spec.insert:
            merger = merger.when_not_matched_insert_all(predicate=spec.insert_condition)
        if spec.delete_not_matched_by_source:
            merger = merger.when_not_matched_by_source_delete(predicate=spec.not_matched_by_source_condition)
        crash_point("merge.started")
        try:
            metrics = merger.execute()
        except Exception as exc:
            from deltalake.exceptions import CommitFailedError

            if isinstance(exc, CommitFailedError):
                raise _dml_error(table, "MERGE", exc) from None
            raise WriteConflictError(f"{table.name}: MERGE failed: {str(exc).splitlines()[0]}") from None
        return WriteResult(
            table=table.name,
            operation="MERGE",
            version=int(dtable.version()),  # this handle's own commit (deltalake updates it)
            rows_written=_metric(metrics, "num_target_rows_inserted"),
            rows_updated=_metric(metrics, "num_target_rows_updated"),
            rows_deleted=_metric(metrics, "num_target_rows_deleted"),
            files_added=_metric(metrics, "num_target_files_added"),
            files_removed=_metric(metrics, "num_target_files_removed"),
            metrics=dict(metrics),
        )

    def delete(self, table: TableRef, predicate: str | None = None) -> WriteResult:
        dtable = self._table(table)
        check_writable(table, dtable)
        try:
            metrics = dtable.delete(
                predicate, commit_properties=_commit_properties(with_write_id(None, new_write_id()))
            )
        except Exception as exc:
            raise _dml_error(table, f"DELETE WHERE {predicate}", exc) from None
        return WriteResult(
            table=table.name,
            operation="DELETE",
            version=int(dtable.version()),
            rows_deleted=_metric(metrics, "num_deleted_rows"),
            files_added=_metric(metrics, "num_added_files"),
            files_removed=_metric(metrics, "num_removed_files"),
            metrics=dict(metrics),
        )

    def update(
        self, table: TableRef, set_exprs: Mapping[str, str], predicate: str | None = None
    ) -> WriteResult:
        dtable = self._table(table)
        check_writable(table, dtable)
        try:
            metrics = dtable.update(
                updates=dict(set_exprs),
                predicate=predicate,
                commit_properties=_commit_properties(with_write_id(None, new_write_id())),
            )
        except Exception as exc:
            raise _dml_error(table, "UPDATE", exc) from None
        return WriteResult(
            table=table.name,
            operation="UPDATE",
            version=int(dtable.version()),
            rows_updated=_metric(metrics, "num_updated_rows"),
            files_added=_metric(metrics, "num_added_files"),
            files_removed=_metric(metrics, "num_removed_files"),
            metrics=dict(metrics),
        )
