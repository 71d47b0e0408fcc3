"""Comments, properties, OPTIMIZE and VACUUM of the offline engine (deltalake)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.errors import SchemaMismatchError
from pipelines.lakehouse.base import TableRef, check_retention
from pipelines.lakehouse.offline.core import OfflineCore
from pipelines.lakehouse.offline.features import check_writable
from pipelines.lakehouse.offline.paths import table_root
from pipelines.lakehouse.offline.staging import sweep_staging

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


class MaintenanceMixin(OfflineCore):
    def set_comments(
        self, table: TableRef, description: str | None = None, columns: Mapping[str, str] | None = None
    ) -> None:
        """Only what differs is committed (nothing at all when the comments are already there)."""
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
        current = self.properties(table)
        if any(current.get(k) != str(v) for k, v in properties.items()):
            self._table(table).alter.set_table_properties(
                {k: str(v) for k, v in properties.items()}, raise_if_not_exists=False
            )

    def add_columns(self, table: TableRef, fields: StructType) -> None:
        from deltalake import Field

        dtable = self._table(table)
        check_writable(table, dtable)
        existing = set(self._spark_schema(dtable).fieldNames())
        clash = [f.name for f in fields.fields if f.name in existing]
        if clash:
            raise SchemaMismatchError(f"{table.name}: column(s) {', '.join(clash)} exist already")
        import json

        dtable.alter.add_columns(
            [Field.from_json(json.dumps({**f.jsonValue(), "nullable": True})) for f in fields.fields]
        )

    def properties(self, table: TableRef) -> dict[str, str]:
        dtable = self._table(table)
        props = dict(dtable.metadata().configuration or {})
        if dtable.metadata().description:
            props["comment"] = dtable.metadata().description
        return props

    def optimize(self, table: TableRef, zorder_by: Sequence[str] = ()) -> dict[str, Any]:
        dtable = self._table(table)
        check_writable(table, dtable)
        if zorder_by:
            return dict(dtable.optimize.z_order(list(zorder_by)))
        return dict(dtable.optimize.compact())

    def vacuum(self, table: TableRef, retention_hours: float | None = None) -> list[str]:
        """deltalake's VACUUM with its retention check on, never below the table's retention
        (RetentionError); then the staging folders of writes that died (never those of a write in flight:
        see :mod:`pipelines.lakehouse.offline.staging`)."""
        dtable = self._table(table)
        hours = check_retention(table, retention_hours, self.retention_hours(table))
        removed = list(
            dtable.vacuum(
                retention_hours=math.ceil(hours),
                dry_run=False,
                enforce_retention_duration=True,
                full=True,  # also files no version ever referenced (a write killed before its commit)
            )
        )
        return removed + sweep_staging(table_root(table), hours)
