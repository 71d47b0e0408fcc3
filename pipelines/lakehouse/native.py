"""Native Delta engine: delta-spark (Databricks, or a local session with the jars from ``medallion setup``).

Tables are addressed by path (``delta.`/path```) or by catalog name (``catalog.schema.table``: Unity Catalog
on Databricks, delta-spark's catalog locally).

- A new table with a description or properties is created first (version 0: schema with column comments,
  partitioning, description, properties), then written (version 1), as on the offline engine: the data
  commit is the last one, and both engines give a table the same versions.
- Every commit carries ``medallion.write_id`` in its user metadata; a write reports the version and metrics of
  its own commit (found by that id), never of whatever commit is latest.
- Comments and properties are compared first: nothing is committed when they are already there.
- delta-spark's failures become this product's errors by their error condition (``DELTA_*``) or exception
  class, never by their wording.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import (
    ConcurrentCommitError,
    MedallionError,
    SchemaMismatchError,
    StorageError,
    TableNotFoundError,
    WriteConflictError,
)
from pipelines.faults import crash_point
from pipelines.lakehouse.base import (
    USER_METADATA,
    WRITE_ID_KEY,
    DeltaStore,
    MergeSpec,
    TableRef,
    WriteResult,
    as_nullable,
    check_merge_keys,
    check_retention,
    check_write_mode,
    conform,
    find_commit,
    merge_predicate,
    new_write_id,
    parse_custom,
    with_write_id,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
# delta-spark's own check that VACUUM keeps the table's retention: this product never switches it off.
RETENTION_CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


def _local_log(table: TableRef) -> str | None:
    """The ``_delta_log`` folder of a path table on this machine's file system; None for a catalog table or a
    remote path (those go through delta-spark)."""
    if table.kind != "path":
        return None
    location = table.location
    if location.startswith("file:"):
        location = location[len("file:") :]
        location = "/" + location.lstrip("/")
    elif "://" in location or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", location):
        return None
    return os.path.join(location, "_delta_log")


def _log_versions(log: str) -> list[int]:
    """The versions with a commit file in ``log``, newest first ([] when there is no log)."""
    try:
        names = os.listdir(log)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((int(m.group(1)) for n in names if (m := _COMMIT_FILE.match(n))), reverse=True)


def _log_full_history(log: str, versions: Sequence[int]) -> list[dict[str, Any]]:
    """:meth:`NativeDeltaStore.history`'s entries for ``versions`` (newest first), read from the commit files;
    a version whose file log cleanup removed is left out, as delta-spark leaves it out."""
    out = []
    for version in versions:
        path = os.path.join(log, f"{version:020d}.json")
        try:
            with open(path, encoding="utf-8") as handle:
                info = next(
                    (
                        a["commitInfo"]
                        for a in map(json.loads, filter(str.strip, handle))
                        if "commitInfo" in a
                    ),
                    {},
                )
            modified = os.stat(path).st_mtime_ns // 1_000_000
        except FileNotFoundError:
            continue
        metadata = info.get("userMetadata")
        out.append(
            {
                "version": version,
                # the commit file's time, as delta-spark gives it (a table with in-commit timestamps is read
                # through delta-spark: it takes them only from the version that enabled them)
                "timestamp": modified,
                "operation": info.get("operation"),
                "operationParameters": {
                    k: v if isinstance(v, str) else json.dumps(v)
                    for k, v in (info.get("operationParameters") or {}).items()
                },
                "operationMetrics": {k: str(v) for k, v in (info.get("operationMetrics") or {}).items()},
                "engineInfo": info.get("engineInfo"),
                "custom": parse_custom({USER_METADATA: metadata} if metadata else {}),
            }
        )
    # delta-spark makes file times increase with the version (a clock step back gives version v the time of
    # the version before it plus 1 ms), across versions it left out too
    for newer, older in zip(reversed(out[:-1]), reversed(out[1:]), strict=True):
        if newer["timestamp"] <= older["timestamp"]:
            newer["timestamp"] = older["timestamp"] + 1
    return out


# Table features whose tables delta-spark reads as plainly as their commit files say (schema, configuration,
# commit times). Any other feature (in-commit timestamps, type widening, catalog-managed or coordinated commits,
# collations, one this code does not know) sends the question to delta-spark.
_PLAIN_FEATURES = frozenset(
    {
        "appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns",
        "allowColumnDefaults", "columnMapping", "identityColumns", "deletionVectors", "rowTracking",
        "timestampNtz", "domainMetadata", "v2Checkpoint", "vacuumProtocolCheck", "variantType",
        "variantType-preview", "clustering",
    }
)  # fmt: skip
# Field metadata delta-spark keeps to itself or acts on (column defaults): read such a schema through it.
_INTERNAL_FIELD_KEYS = ("delta.", "__", "CURRENT_DEFAULT", "EXISTS_DEFAULT")
# Commits a catalog or commit coordinator holds before they are published as commit files.
_UNPUBLISHED = ("_staged_commits", "_commits")


@dataclass(frozen=True)
class _LogState:
    """What a walk back through a log found: the newest metaData and protocol actions as of ``version``."""

    first: tuple[int, ...]  # the table's first commit file, as os.stat identifies it
    version: int
    metadata: dict[str, Any]
    protocol: dict[str, Any]


# The newest actions seen per local log. Commit files never change once written, so a later call reads only the
# commits after that version; a table removed and created again at the same path has a new first commit file
# (another inode, device or change time), and is read afresh.
_METADATA_SEEN: dict[str, _LogState] = {}


def _first_commit_id(log: str) -> tuple[int, ...] | None:
    try:
        st = os.stat(os.path.join(log, f"{0:020d}.json"))
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _internal_schema(data_type: Any) -> bool:
    """True when a schema (JSON form) holds, at any depth, a void column or field metadata of delta-spark's own
    (column mapping, type changes, identity, generation, defaults): delta-spark's read schema differs there."""
    if data_type == "void":
        return True
    if not isinstance(data_type, dict):
        return False
    kind = data_type.get("type")
    if kind == "struct":
        return any(
            any(str(k).startswith(_INTERNAL_FIELD_KEYS) for k in (f.get("metadata") or {}))
            or _internal_schema(f.get("type"))
            for f in data_type.get("fields", [])
        )
    if kind == "array":
        return _internal_schema(data_type.get("elementType"))
    if kind == "map":
        return _internal_schema(data_type.get("keyType")) or _internal_schema(data_type.get("valueType"))
    return False


def _plain_protocol(protocol: Mapping[str, Any]) -> bool:
    """True when delta-spark reads a table of this protocol exactly as its commit files say."""
    features = {*protocol.get("readerFeatures", ()), *protocol.get("writerFeatures", ())}
    if int(protocol.get("minReaderVersion", 1)) == 2:
        return False  # reader version 2 is column mapping
    return features <= _PLAIN_FEATURES


def _unpublished_commits(log: str) -> bool:
    for name in _UNPUBLISHED:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if os.listdir(os.path.join(log, name)):
                return True
    return False


def _log_state(log: str, version: int) -> _LogState | None:
    """The newest metaData and protocol actions as of ``version``, read from the commit files; None when a
    commit file the walk needs is gone (log cleanup after a checkpoint)."""
    first = _first_commit_id(log)
    if first is None:
        return None
    seen = _METADATA_SEEN.get(log)
    if seen is not None and (seen.first != first or seen.version > version):
        seen = None
    metadata: dict[str, Any] | None = None
    protocol: dict[str, Any] | None = None
    for v in range(version, -1 if seen is None else seen.version, -1):
        try:
            with open(os.path.join(log, f"{v:020d}.json"), encoding="utf-8") as handle:
                for line in handle:
                    if metadata is None and '"metaData"' in line:
                        metadata = json.loads(line).get("metaData")
                    if protocol is None and '"protocol"' in line:
                        protocol = json.loads(line).get("protocol")
        except FileNotFoundError:
            return None
        if metadata is not None and protocol is not None:
            break
    if seen is not None:
        metadata = metadata if metadata is not None else seen.metadata
        protocol = protocol if protocol is not None else seen.protocol
    if metadata is None or protocol is None:
        return None
    state = _LogState(first, version, metadata, protocol)
    previous = _METADATA_SEEN.get(log)
    if previous is None or previous.first != first or previous.version <= version:
        _METADATA_SEEN[log] = state
    return state


def _log_metadata(log: str, version: int) -> dict[str, Any] | None:
    """The table's ``metaData`` action as of ``version`` (its schema, description, configuration), read from the
    commit files; None when a commit file it needs is gone, commits are not all published as files yet, or the
    table uses a feature delta-spark reads differently from its commit files (column mapping, in-commit
    timestamps, type widening, internal column metadata, a void column, a feature unknown here): the caller
    then asks delta-spark."""
    if _unpublished_commits(log):
        return None
    state = _log_state(log, version)
    if state is None or not _plain_protocol(state.protocol):
        return None
    found = state.metadata
    if (found.get("configuration") or {}).get("delta.columnMapping.mode", "none") != "none":
        return None
    if _internal_schema(json.loads(found.get("schemaString") or "{}")):
        return None
    return found


# Error conditions (Spark/Delta error classes) and Java exception classes -> this product's errors.
_CONCURRENT = (
    "DELTA_CONCURRENT",
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
)
_CONFLICT = (
    "DELTA_REPLACE_WHERE_MISMATCH",
    "DELTA_NOT_NULL_CONSTRAINT_VIOLATED",
    "DELTA_VIOLATE_CONSTRAINT_WITH_VALUES",
    "DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE",
    "DELTA_TABLE_ALREADY_EXISTS",
    "TABLE_OR_VIEW_ALREADY_EXISTS",
    "InvariantViolationException",
)
_SCHEMA = (
    "DELTA_FAILED_TO_MERGE_FIELDS",
    "DELTA_METADATA_MISMATCH",
    "_LEGACY_ERROR_TEMP_DELTA_0007",  # "A schema mismatch detected when writing to the Delta table"
    "DELTA_PARTITION_COLUMN",
    "DELTA_MERGE_UNRESOLVED_EXPRESSION",
    "UNRESOLVED_COLUMN",
    "DELTA_SCHEMA_CHANGED",
)
_NOT_FOUND = (
    "DELTA_MISSING_DELTA_TABLE",
    "DELTA_TABLE_NOT_FOUND",
    "TABLE_OR_VIEW_NOT_FOUND",
    "PATH_NOT_FOUND",
)


def _condition(exc: BaseException) -> str:
    """The error condition (``DELTA_...``) and Java class of an exception from delta-spark, as one string."""
    parts = []
    get = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    if callable(get):
        with contextlib.suppress(Exception):  # py4j may fail on a dead gateway; the text below still applies
            parts.append(str(get() or ""))
    text = str(exc)
    parts += re.findall(r"\[([A-Z][A-Z0-9_]+(?:\.[A-Z0-9_]+)?)\]", text)
    parts += re.findall(r"(?:io\.delta|org\.apache\.spark)[\w.]*\.(\w+(?:Exception|Error))", text)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        with contextlib.suppress(Exception):
            parts.append(java.getClass().getName())
    return " ".join(parts)


def _message(exc: BaseException) -> str:
    """The line of delta-spark's error that says what went wrong: a py4j error's own first line is only
    "An error occurred while calling o96.save."; the Java exception's message (or the first line naming an
    error condition) is the one a user needs."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    java = getattr(exc, "java_exception", None)
    if java is not None:
        with contextlib.suppress(Exception):
            cause = java
            while cause.getCause() is not None and not re.search(
                r"\[[A-Z][A-Z0-9_]+\]", str(cause.getMessage())
            ):
                cause = cause.getCause()
            text = str(cause.getMessage() or "").strip()
            if text:
                return text.splitlines()[0][:500]
    named = [line for line in lines if re.search(r"\[[A-Z][A-Z0-9_]+(?:\.[A-Z0-9_]+)?\]", line)]
    return (named or lines or [type(exc).__name__])[0][:500]


def _translate(exc: BaseException, table: TableRef, what: str) -> BaseException:
    """delta-spark's exception as a MedallionError (or the exception itself when it is no known case)."""
    if isinstance(exc, MedallionError):
        return exc
    condition = _condition(exc)
    first = _message(exc)
    if any(c in condition for c in _CONCURRENT):
        return ConcurrentCommitError(
            f"{table.name}: another writer committed meanwhile; {what} was not committed: {first}"
        )
    if any(c in condition for c in _CONFLICT):
        return WriteConflictError(f"{table.name}: {what} was not committed: {first}")
    if any(c in condition for c in _SCHEMA):
        return SchemaMismatchError(f"{table.name}: {what}: {first}")
    if any(c in condition for c in _NOT_FOUND):
        return TableNotFoundError(f"{table.name}: no Delta table at {table.location}: {first}")
    return exc


def _sql_name(table: TableRef) -> str:
    if table.kind == "catalog":
        return ".".join(f"`{part}`" for part in table.location.split("."))
    return "delta.`" + table.location.replace("`", "``") + "`"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _create_table_sql(
    table: TableRef,
    schema: StructType,
    partition_by: Sequence[str],
    description: str | None,
    properties: Mapping[str, str] | None,
) -> str:
    """``CREATE TABLE`` of a catalog table: columns with their types, NOT NULL and comments."""

    def ident(name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    columns = []
    for field in schema.fields:
        column = f"{ident(field.name)} {field.dataType.simpleString()}"
        if not field.nullable:
            column += " NOT NULL"
        if field.metadata.get("comment"):
            column += f" COMMENT {_quote(str(field.metadata['comment']))}"
        columns.append(column)
    sql = f"CREATE TABLE {_sql_name(table)} ({', '.join(columns)}) USING DELTA"
    if partition_by:
        sql += f" PARTITIONED BY ({', '.join(ident(c) for c in partition_by)})"
    if description:
        sql += f" COMMENT {_quote(description)}"
    if properties:
        sql += (
            " TBLPROPERTIES ("
            + ", ".join(f"{_quote(k)} = {_quote(str(v))}" for k, v in properties.items())
            + ")"
        )
    return sql


class NativeDeltaStore(DeltaStore):
    engine = "native"

    # ---- handles ------------------------------------------------------------------------------------
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
        log = _local_log(table)
        if log is not None:
            return bool(_log_versions(log))
        return bool(DeltaTable.isDeltaTable(self.spark, table.location))

    def version(self, table: TableRef) -> int | None:
        log = _local_log(table)
        if log is not None:
            # A local folder: its newest commit file is the version, without delta-spark's snapshot update
            # (a log listing plus a Spark job on this machine, for every call).
            versions = _log_versions(log)
            return versions[0] if versions else None
        if not self.exists(table):
            return None
        row = self._delta_table(table).history(1).select("version").first()
        return int(row[0]) if row else None

    def _metadata(self, table: TableRef, version: int | None = None) -> dict[str, Any] | None:
        """The metaData action of a local path table, from its log (None: ask delta-spark)."""
        log = _local_log(table)
        if log is None:
            return None
        versions = _log_versions(log)
        if not versions:
            raise TableNotFoundError(f"{table.name}: no Delta table at {table.location}")
        if version is not None and version not in versions:
            return None  # not a version this log holds: delta-spark says why
        return _log_metadata(log, versions[0] if version is None else version)

    def schema(self, table: TableRef, version: int | None = None) -> StructType:
        """A local table's schema from its log (no Spark job: about a second less per call); delta-spark's
        otherwise."""
        from pyspark.sql.types import StructType

        metadata = self._metadata(table, version)
        if metadata is None:
            return self.read(table, version).schema
        return StructType.fromJson(json.loads(metadata["schemaString"]))

    def read(self, table: TableRef, version: int | None = None) -> DataFrame:
        if not self.exists(table):
            raise TableNotFoundError(f"{table.name}: no Delta table at {table.location}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        try:
            return reader.table(table.location) if table.kind == "catalog" else reader.load(table.location)
        except Exception as exc:
            translated = _translate(exc, table, f"read of version {version}")
            if translated is exc:
                raise StorageError(
                    f"{table.name}: cannot read version {version}: {str(exc).splitlines()[0]}"
                ) from None
            raise translated from None

    # ---- commit metadata and own-commit results ---------------------------------------------------------
    @contextmanager
    def _user_metadata(self, metadata: Mapping[str, Any]) -> Iterator[None]:
        """Commit metadata for the DeltaTable API and SQL commands (they take it from the session conf)."""
        previous = self.spark.conf.get(USER_METADATA_CONF, None)
        self.spark.conf.set(USER_METADATA_CONF, json.dumps(dict(metadata), default=str))
        try:
            yield
        finally:
            if previous is None:
                self.spark.conf.unset(USER_METADATA_CONF)
            else:
                self.spark.conf.set(USER_METADATA_CONF, previous)

    def _own_result(self, table: TableRef, operation: str, write_id: str, before: int | None) -> WriteResult:
        commit = find_commit(lambda limit: self.history(table, limit), write_id)
        if commit is None:
            # delta-spark commits nothing for a DELETE/UPDATE/MERGE that changes no file.
            return WriteResult(
                table=table.name, operation=operation, version=before if before is not None else -1
            )
        metrics = dict(commit["operationMetrics"] or {})

        def as_int(*keys: str) -> int:
            for key in keys:
                if metrics.get(key) not in (None, ""):
                    return int(metrics[key])
            return 0

        written = as_int("numTargetRowsInserted") if operation == "MERGE" else as_int("numOutputRows")
        return WriteResult(
            table=table.name,
            operation=operation,
            version=int(commit["version"]),
            rows_written=written,
            rows_updated=as_int("numTargetRowsUpdated", "numUpdatedRows"),
            rows_deleted=as_int("numTargetRowsDeleted", "numDeletedRows"),
            files_added=as_int("numTargetFilesAdded", "numAddedFiles", "numFiles"),
            files_removed=as_int("numTargetFilesRemoved", "numRemovedFiles"),
            metrics=metrics,
        )

    # ---- create and write -----------------------------------------------------------------------------
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
        from delta.tables import DeltaTable

        if self.exists(table):
            raise WriteConflictError(f"{table.name}: a table already exists at {table.location}")
        if table.kind == "catalog":
            # SQL, not DeltaTable.create(): open-source delta-spark's builder parses a table name of at most two
            # parts, so catalog.schema.table fails there (ParseException).
            create: Any = _create_table_sql(table, schema, partition_by, description, properties)
        else:
            builder = DeltaTable.create(self.spark).location(table.location).addColumns(schema)
            if partition_by:
                builder = builder.partitionedBy(*partition_by)
            if description:
                builder = builder.comment(description)
            for key, value in (properties or {}).items():
                builder = builder.property(key, str(value))
            create = builder
        write_id = new_write_id()
        try:
            with self._user_metadata(with_write_id(None, write_id)):
                if isinstance(create, str):
                    self.spark.sql(create)
                else:
                    create.execute()
                for name, expr in (constraints or {}).items():
                    self.spark.sql(f"ALTER TABLE {_sql_name(table)} ADD CONSTRAINT `{name}` CHECK ({expr})")
        except Exception as exc:
            raise _translate(exc, table, "CREATE") from None
        return WriteResult(table=table.name, operation="CREATE", version=int(self.version(table) or 0))

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
        check_write_mode(table, mode, replace_where)
        write_id = new_write_id()
        metadata = with_write_id(commit_info, write_id)
        if not self.exists(table):
            return self._create_with_data(df, table, mode, partition_by, description, properties, metadata)
        if not (overwrite_schema and mode == "overwrite" and not replace_where):
            df = conform(df, self.schema(table), table.name)
        if properties:
            self.set_properties(table, properties)  # before the data commit, which marks the step done
        before = self.version(table)
        writer = df.write.format("delta").mode(mode).option("userMetadata", json.dumps(metadata, default=str))
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if replace_where:
            writer = writer.option("replaceWhere", replace_where)
        if overwrite_schema:
            writer = writer.option("overwriteSchema", "true")
        try:
            if table.kind == "catalog":
                writer.saveAsTable(table.location)
            else:
                writer.save(table.location)
        except Exception as exc:
            raise _translate(exc, table, "the write") from None
        return self._own_result(table, "WRITE" if not replace_where else "REPLACE WHERE", write_id, before)

    def _create_with_data(
        self,
        df: DataFrame,
        table: TableRef,
        mode: str,
        partition_by: Sequence[str],
        description: str | None,
        properties: Mapping[str, str] | None,
        metadata: Mapping[str, Any],
    ) -> WriteResult:
        """A new table. With a description or properties: created first (version 0: schema with its column
        comments, partitioning, description, properties), then the data commit, which is the last one, as
        it marks the step done. Without: the data commit alone (version 0).

        Not CREATE TABLE AS SELECT nor DataFrameWriterV2: a Spark Observation on the written DataFrame (how the
        data-quality checks count in the write pass) gets no metrics through either."""
        missing = [c for c in partition_by if c not in df.columns]
        if missing:
            raise SchemaMismatchError(f"{table.name}: partition column(s) {missing} are not in the data")
        if description or properties:
            created = self.create(
                table, as_nullable(df.schema), partition_by=partition_by, description=description,
                properties=properties,
            )  # fmt: skip
            try:
                return self.write(
                    df, table, "append", commit_info={k: v for k, v in metadata.items() if k != WRITE_ID_KEY}
                )
            except BaseException:
                # The first write failed (a fail check, a constraint, ...): no table, as before it began.
                if self.version(table) == created.version:
                    self.drop_new_table(table)
                raise
        writer = (
            df.write.format("delta")
            .mode(mode)
            .option("userMetadata", json.dumps(dict(metadata), default=str))
        )
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        try:
            writer.saveAsTable(table.location) if table.kind == "catalog" else writer.save(table.location)
        except Exception as exc:
            raise _translate(exc, table, "the write creating the table") from None
        return self._own_result(table, "CREATE", str(metadata[WRITE_ID_KEY]), None)

    def drop_new_table(self, table: TableRef) -> None:
        """Remove a table this write created a moment ago and could not fill (nobody else committed to it)."""
        import shutil
        from pathlib import Path

        if table.kind == "catalog":
            self.spark.sql(f"DROP TABLE IF EXISTS {_sql_name(table)}")
        elif Path(table.location).is_dir():
            _METADATA_SEEN.pop(str(_local_log(table)), None)
            shutil.rmtree(table.location, ignore_errors=True)

    # ---- merge / delete / update ---------------------------------------------------------------------------
    def merge(
        self,
        source: DataFrame,
        table: TableRef,
        spec: MergeSpec,
        *,
        commit_info: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        target = self._delta_table(table)
        schema = target.toDF().schema
        check_merge_keys(table, spec, schema, source)
        source = conform(source, schema, table.name)
        builder = target.alias("t").merge(source.alias("s"), merge_predicate(spec))
        if spec.delete_condition:
            builder = builder.whenMatchedDelete(condition=spec.delete_condition)
        if spec.update:
            builder = builder.whenMatchedUpdateAll(condition=spec.update_condition)
        if spec.insert:
            builder = builder.whenNotMatchedInsertAll(condition=spec.insert_condition)
        if spec.delete_not_matched_by_source:
            builder = builder.whenNotMatchedBySourceDelete(condition=spec.not_matched_by_source_condition)
        write_id = new_write_id()
        before = self.version(table)
        crash_point("merge.started")
        try:
            with self._user_metadata(with_write_id(commit_info, write_id)):
                builder.execute()
        except Exception as exc:
            raise _translate(exc, table, "MERGE") from None
        return self._own_result(table, "MERGE", write_id, before)

    def delete(self, table: TableRef, predicate: str | None = None) -> WriteResult:
        target = self._delta_table(table)
        write_id = new_write_id()
        before = self.version(table)
        try:
            with self._user_metadata(with_write_id(None, write_id)):
                target.delete(predicate) if predicate else target.delete()
        except Exception as exc:
            raise _translate(exc, table, f"DELETE WHERE {predicate}") from None
        return self._own_result(table, "DELETE", write_id, before)

    def update(
        self, table: TableRef, set_exprs: Mapping[str, str], predicate: str | None = None
    ) -> WriteResult:
        target = self._delta_table(table)
        write_id = new_write_id()
        before = self.version(table)
        try:
            with self._user_metadata(with_write_id(None, write_id)):
                target.update(condition=predicate, set=dict(set_exprs))
        except Exception as exc:
            raise _translate(exc, table, "UPDATE") from None
        return self._own_result(table, "UPDATE", write_id, before)

    # ---- history and metadata ----------------------------------------------------------------------------
    def history(self, table: TableRef, limit: int | None = None) -> list[dict[str, Any]]:
        log = _local_log(table)
        if log is not None:
            # A local folder: its commit files, newest first (delta-spark's history() is a Spark job per call, and
            # a run asks it for every table it plans).
            versions = _log_versions(log)
            if not versions:
                raise TableNotFoundError(
                    f"{table.name}: no Delta table at {table.location} (run the job that builds it)"
                )
            if _log_metadata(log, versions[0]) is not None:
                return _log_full_history(log, versions[:limit] if limit else versions)
        handle = self._delta_table(table)
        rows = handle.history(limit) if limit else handle.history()
        out = []
        for row in rows.collect():
            custom = parse_custom({USER_METADATA: row["userMetadata"]} if row["userMetadata"] else {})
            out.append(
                {
                    "version": int(row["version"]),
                    "timestamp": round(row["timestamp"].timestamp() * 1000),  # int() could lose a ms
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
        """Only what differs is committed (nothing at all when the comments are already there)."""
        name = _sql_name(table)
        if description is not None and self.properties(table).get("comment", "") != description:
            if table.kind == "catalog":
                self.spark.sql(f"COMMENT ON TABLE {name} IS {_quote(description)}")
            else:
                self.spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ('comment' = {_quote(description)})")
        if columns:
            fields = {f.name: f for f in self.schema(table).fields}
            unknown = [c for c in columns if c not in fields]
            if unknown:
                raise SchemaMismatchError(
                    f"{table.name}: comments name unknown column(s): {', '.join(unknown)}"
                )
            for column, comment in columns.items():
                if fields[column].metadata.get("comment") != comment:
                    self.spark.sql(f"ALTER TABLE {name} ALTER COLUMN `{column}` COMMENT {_quote(comment)}")

    def set_properties(self, table: TableRef, properties: Mapping[str, str]) -> None:
        current = self.properties(table)
        changed = {k: str(v) for k, v in properties.items() if current.get(k) != str(v)}
        if not changed:
            return
        pairs = ", ".join(f"{_quote(k)} = {_quote(v)}" for k, v in changed.items())
        self.spark.sql(f"ALTER TABLE {_sql_name(table)} SET TBLPROPERTIES ({pairs})")

    def add_columns(self, table: TableRef, fields: StructType) -> None:
        existing = set(self._delta_table(table).toDF().columns)
        clash = [f.name for f in fields.fields if f.name in existing]
        if clash:
            raise SchemaMismatchError(f"{table.name}: column(s) {', '.join(clash)} exist already")
        columns = ", ".join(
            f"`{f.name.replace('`', '``')}` {f.dataType.simpleString()}" for f in fields.fields
        )
        try:
            self.spark.sql(f"ALTER TABLE {_sql_name(table)} ADD COLUMNS ({columns})")
        except Exception as exc:
            raise _translate(exc, table, "ADD COLUMNS") from None

    def properties(self, table: TableRef) -> dict[str, str]:
        metadata = self._metadata(table)
        if metadata is not None:
            props = {k: str(v) for k, v in (metadata.get("configuration") or {}).items()}
            if metadata.get("description"):
                props["comment"] = metadata["description"]
            return props
        detail = self._delta_table(table).detail().first()
        props = dict(detail["properties"] or {}) if detail else {}
        if detail and detail["description"]:
            props["comment"] = detail["description"]
        return props

    # ---- maintenance ----------------------------------------------------------------------------------------
    def optimize(self, table: TableRef, zorder_by: Sequence[str] = ()) -> dict[str, Any]:
        optimizer = self._delta_table(table).optimize()
        result = optimizer.executeZOrderBy(*zorder_by) if zorder_by else optimizer.executeCompaction()
        row = result.first()
        metrics = row.asDict(recursive=True).get("metrics", {}) if row else {}
        return dict(metrics or {})

    def vacuum(self, table: TableRef, retention_hours: float | None = None) -> list[str]:
        """Files deleted (those VACUUM's dry run lists, then VACUUM itself). Never below the table's
        retention (RetentionError); delta-spark's own retention check stays on."""
        hours = check_retention(table, retention_hours, self.retention_hours(table))
        name = _sql_name(table)
        retain = f"RETAIN {hours:.6f}".rstrip("0").rstrip(".") + " HOURS"
        doomed = [str(r[0]) for r in self.spark.sql(f"VACUUM {name} {retain} DRY RUN").collect()]
        if doomed:
            self.spark.sql(f"VACUUM {name} {retain}").collect()
        return doomed
