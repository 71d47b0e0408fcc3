"""The offline engine's staged write and commit.

Spark writes the data files in parallel into ``_staging-<uuid>/`` inside the table (a folder Delta readers
ignore); the files are moved into place and committed in ONE Delta transaction by deltalake. NOT NULL and
CHECK constraints and a ``replace_where`` predicate are enforced inside the Spark write job itself (a
``raise_error`` in the projection: no extra pass).

A failed write leaves the table at its previous version: staged files are deleted, and files moved into place
are deleted again unless the log holds this write's commit (found by its write id; a failure after the
commit, e.g. in what follows it, must never delete files a committed version references).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConcurrentCommitError, SchemaMismatchError, StorageError, WriteConflictError
from pipelines.faults import crash_point
from pipelines.lakehouse.base import (
    USER_METADATA,
    TableRef,
    WriteResult,
    as_nullable,
    check_write_mode,
    conform,
    new_write_id,
    with_write_id,
)
from pipelines.lakehouse.offline.core import OfflineCore
from pipelines.lakehouse.offline.features import check_writable
from pipelines.lakehouse.offline.paths import (
    is_delta,
    local_path,
    partition_string,
    table_root,
)
from pipelines.lakehouse.offline.staging import claim_staging, release_staging
from pipelines.lakehouse.offline.stats import add_action, file_stats

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType


def check_schema_supported(schema: StructType, name: str) -> None:
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


def _delta_properties(properties: Mapping[str, str] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (properties or {}).items() if k.startswith("delta.")}


def _commit_properties(custom: Mapping[str, Any]) -> Any:
    """The commit metadata as delta-spark keeps it: one JSON string in commitInfo's ``userMetadata``, so that
    either engine's history shows it whichever engine wrote the commit."""
    from deltalake.transaction import CommitProperties

    return CommitProperties(custom_metadata={USER_METADATA: json.dumps(dict(custom), default=str)})


class WriteMixin(OfflineCore):
    def create(
        self,
        table: TableRef,
        schema: StructType,
        *,
        partition_by: Sequence[str] = (),
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        constraints: Mapping[str, str] | None = None,
    ) -> WriteResult:
        from deltalake import DeltaTable
        from deltalake import Schema as DeltaSchema
        from deltalake.transaction import create_table_with_add_actions

        root = table_root(table)
        if is_delta(root):
            raise WriteConflictError(f"{table.name}: a table already exists at {root}")
        check_schema_supported(schema, table.name)
        missing = [c for c in partition_by if c not in schema.fieldNames()]
        if missing:
            raise SchemaMismatchError(f"{table.name}: partition column(s) {missing} are not in the schema")
        Path(root).mkdir(parents=True, exist_ok=True)
        try:
            create_table_with_add_actions(
                root,
                DeltaSchema.from_json(schema.json()),
                [],
                mode="error",
                partition_by=list(partition_by) or None,
                description=description,
                configuration=_delta_properties(properties) or None,
                commit_properties=_commit_properties(with_write_id(None, new_write_id())),
            )
        except Exception as exc:
            if is_delta(root):
                raise WriteConflictError(f"{table.name}: created concurrently by another writer") from None
            raise StorageError(f"{table.name}: cannot create the table: {str(exc).splitlines()[0]}") from None
        version = 0
        custom_properties = {k: v for k, v in (properties or {}).items() if not k.startswith("delta.")}
        if custom_properties:
            DeltaTable(root).alter.set_table_properties(
                {k: str(v) for k, v in custom_properties.items()}, raise_if_not_exists=False
            )
            version += 1
        if constraints:
            dtable = DeltaTable(root)
            try:
                dtable.alter.add_constraint(dict(constraints))
            except Exception as exc:
                raise SchemaMismatchError(
                    f"{table.name}: CHECK constraint(s) {', '.join(constraints)} do not apply: "
                    f"{str(exc).splitlines()[0]}"
                ) from None
            version = int(dtable.version())
        return WriteResult(table=table.name, operation="CREATE", version=version)

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
        from deltalake.transaction import RemoveAction, create_table_with_add_actions

        check_write_mode(table, mode, replace_where)
        root = table_root(table)
        exists = is_delta(root)
        if not exists and (description or properties):
            # Created first (schema with column comments, partitioning, description, properties), then the
            # data commit, which is the last one (it marks the step done), as on the native engine.
            missing = [c for c in partition_by if c not in df.columns]
            if missing:
                raise SchemaMismatchError(f"{table.name}: partition column(s) {missing} are not in the data")
            created = self.create(
                table, as_nullable(df.schema), partition_by=partition_by, description=description,
                properties=properties,
            )  # fmt: skip
            try:
                return self.write(df, table, "append", commit_info=commit_info)
            except BaseException:
                # The first write failed (a fail check, a constraint, ...): no table, as before it began.
                if self.version(table) == created.version:
                    shutil.rmtree(root, ignore_errors=True)
                raise
        dtable = None
        removes: list[Any] = []
        if exists:
            dtable = self._table(table)
            check_writable(table, dtable)
            table_schema = self._spark_schema(dtable)
            table_parts = list(dtable.metadata().partition_columns)
            if partition_by and list(partition_by) != table_parts and not overwrite_schema:
                raise SchemaMismatchError(
                    f"{table.name}: table is partitioned by {table_parts or 'nothing'}, "
                    f"the write asks for {list(partition_by)}"
                )
            if overwrite_schema and mode == "overwrite" and not replace_where:
                table_schema = as_nullable(df.schema)
                table_parts = list(partition_by)
            else:
                df = conform(df, table_schema, table.name)
            df = self._enforce_constraints(df, table_schema, dtable, table.name)
            if replace_where:
                removes = self._files_matching(dtable, table_schema, replace_where, table)
                kept = self._rows_not_matching(removes, dtable, table_schema, replace_where, root)
                df = self._check_rows_match(df, replace_where, table.name)
                if kept is not None:
                    df = df.unionByName(kept)
            if properties and any(
                (dtable.metadata().configuration or {}).get(k) != str(v) for k, v in properties.items()
            ):
                # Before the data commit: the data commit is the one that marks the step done.
                dtable.alter.set_table_properties(dict(properties), raise_if_not_exists=False)
                dtable = self._table(table)
        else:
            table_schema = as_nullable(df.schema)
            table_parts = list(partition_by)
            missing = [c for c in table_parts if c not in table_schema.fieldNames()]
            if missing:
                raise SchemaMismatchError(f"{table.name}: partition column(s) {missing} are not in the data")
        check_schema_supported(table_schema, table.name)

        write_id = new_write_id()
        commit = _commit_properties(with_write_id(commit_info, write_id))
        claim = claim_staging(root)  # held until the write is over: maintenance leaves the folder alone
        staging = claim.folder
        moved: list[str] = []
        adds: list[Any] = []
        try:
            adds = self._write_files(df, staging, root, table_parts, table_schema, moved)
            delta_schema = DeltaSchema.from_json(table_schema.json())
            if not exists:
                Path(root).mkdir(parents=True, exist_ok=True)
                create_table_with_add_actions(
                    root,
                    delta_schema,
                    adds,
                    mode="error",
                    partition_by=table_parts or None,
                    description=description,
                    configuration=_delta_properties(properties) or None,
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
        except BaseException as exc:
            committed = self._committed(table, write_id)
            if moved and not committed:
                for path in moved:  # moved into place, never committed: nothing references them
                    with contextlib.suppress(OSError):
                        os.remove(path)
            created_by_another = not exists and not committed and is_delta(root)
            if isinstance(exc, CommitFailedError) or created_by_another:
                raise ConcurrentCommitError(
                    f"{table.name}: the table changed while this write ran ({str(exc).splitlines()[0]}); "
                    "nothing was committed: run the job again"
                ) from None
            raise
        finally:
            release_staging(claim)
        version = 0 if not exists else self._own_version(table, write_id)
        custom_properties = {
            k: v for k, v in (properties or {}).items() if k not in _delta_properties(properties)
        }
        if not exists and custom_properties:
            # deltalake takes only `delta.*` properties when it creates a table: the rest follow in one commit.
            self._table(table).alter.set_table_properties(custom_properties, raise_if_not_exists=False)
        if version is None:  # pragma: no cover - the commit call returned, so the log holds it
            raise StorageError(f"{table.name}: the write's commit is not in the log")
        op = "WRITE" if exists else "CREATE"
        return WriteResult(
            table=table.name,
            operation=op if not replace_where else "REPLACE WHERE",
            version=version,
            rows_written=sum(json.loads(a.stats).get("numRecords", 0) for a in adds),
            files_added=len(adds),
            files_removed=len(removes),
        )

    def _committed(self, table: TableRef, write_id: str) -> bool:
        try:
            return self._own_version(table, write_id) is not None
        except Exception:
            return True  # cannot tell: keep the files (an orphan is recoverable, a missing file is not)

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
            current = self._read_files(dtable, schema, table_root(table)).withColumn(
                "_file", F.input_file_name()
            )
            hit = {
                local_path(r[0])
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
        root = table_root(table).rstrip("/") + "/"
        parts_col = actions.column("partition").to_pylist() if "partition" in actions.column_names else None
        for i, (path, size) in enumerate(
            zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist(), strict=True)
        ):
            raw = urllib.parse.unquote(path)
            if os.path.normpath(root + raw) in hit:
                pv = {k: partition_string(v) for k, v in (parts_col[i] or {}).items()} if parts_col else {}
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
            match = re.search(r"\[medallion\] ([^\n]*)", str(exc))
            if match:
                raise WriteConflictError(match.group(1).split("[medallion] ")[-1].rstrip("'\"")) from None
            raise
        crash_point("write.staged")
        staged = []
        for dirpath, _dirs, filenames in os.walk(staging):
            for filename in filenames:
                if filename.endswith(".parquet") and not filename.startswith((".", "_")):
                    staged.append(os.path.join(dirpath, filename))
        adds = []
        with ThreadPoolExecutor(max_workers=8) as pool:
            infos = list(pool.map(lambda p: file_stats(p, schema, partition_cols), staged))
        for src, stats in zip(staged, infos, strict=True):
            rel = os.path.relpath(src, staging)
            dest = os.path.join(root, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(src, dest)
            moved.append(dest)
            adds.append(add_action(rel, dest, partition_cols, stats))
        crash_point("write.moved")
        return adds
