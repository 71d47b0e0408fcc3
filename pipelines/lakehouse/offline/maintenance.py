"""Comments, properties, OPTIMIZE and VACUUM of the offline engine (deltalake)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import SchemaMismatchError
from pipelines.lakehouse.base import TableRef
from pipelines.lakehouse.offline.core import OfflineCore
from pipelines.lakehouse.offline.features import check_writable
from pipelines.lakehouse.offline.paths import STAGING_PREFIX, table_root

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

    def vacuum(self, table: TableRef, retention_hours: int = 168) -> list[str]:
        dtable = self._table(table)
        removed = list(
            dtable.vacuum(
                retention_hours=retention_hours,
                dry_run=False,
                enforce_retention_duration=retention_hours >= 168,
                full=True,  # also files no version ever referenced (a write killed before its commit)
            )
        )
        # Staging folders of writes that died before cleanup are older than any live write.
        root = Path(table_root(table))
        cutoff = time.time() - retention_hours * 3600
        for staging in root.glob(f"{STAGING_PREFIX}*"):
            if staging.stat().st_mtime < cutoff:
                shutil.rmtree(staging, ignore_errors=True)
                removed.append(staging.name)
        return removed
