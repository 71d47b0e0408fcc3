"""The storage interface every job uses, whichever Delta engine is behind it.

Code both engines need lives here once: write-mode checks, fitting data to a table's schema, the commit
metadata that lets a write find its own commit (``medallion.write_id``), the MERGE key predicate.
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.errors import RetentionError, SchemaMismatchError, StorageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

WRITE_MODES = ("append", "overwrite")
#: Commit metadata key holding a unique id per write: how a write finds its own commit (not the latest one,
#: which under a race may belong to another writer).
WRITE_ID_KEY = "medallion.write_id"


#: The table property that says how long removed files stay for time travel and for writes in flight, and
#: the Delta default when a table does not set it (7 days). VACUUM never goes below it (see check_retention).
RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"
DEFAULT_RETENTION_HOURS = 168.0
_INTERVAL_UNITS = {
    "week": 168.0,
    "day": 24.0,
    "hour": 1.0,
    "minute": 1 / 60,
    "second": 1 / 3600,
    "millisecond": 1 / 3_600_000,
    "microsecond": 1 / 3_600_000_000,
    "nanosecond": 1 / 3_600_000_000_000,
}


def interval_hours(text: str) -> float | None:
    """Hours of a Delta interval property (``interval 7 days``, ``168 hours``, ``1 day 12 hours``);
    None when it is no such interval (months and years are not: Delta refuses them here too)."""
    words = text.strip().lower().split()
    if words[:1] == ["interval"]:
        words = words[1:]
    if not words or len(words) % 2:
        return None
    total = 0.0
    for number, unit in zip(words[::2], words[1::2], strict=True):
        factor = _INTERVAL_UNITS.get(unit.removesuffix("s"))
        if factor is None or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", number):
            return None
        total += float(number) * factor
    return total


def table_retention_hours(table: TableRef, properties: Mapping[str, str]) -> float:
    """The table's ``delta.deletedFileRetentionDuration`` in hours (the Delta default when unset)."""
    raw = properties.get(RETENTION_PROPERTY)
    if raw is None:
        return DEFAULT_RETENTION_HOURS
    hours = interval_hours(raw)
    if hours is None:
        raise StorageError(
            f"{table.name}: {RETENTION_PROPERTY} is {raw!r}, not an interval such as 'interval 7 days': "
            "VACUUM needs it to know which files time travel and writes in flight still use"
        )
    return hours


def check_retention(table: TableRef, requested: float | None, minimum: float) -> float:
    """The retention a VACUUM uses: ``requested`` (None: the table's own), never below the table's
    ``minimum``: a shorter one would delete files that time travel or a write in flight still needs."""
    if requested is None:
        return minimum
    if requested < 0 or requested < minimum:
        raise RetentionError(
            f"{table.name}: VACUUM with a retention of {requested:g} h is below the table's {RETENTION_PROPERTY} "
            f"of {minimum:g} h; it would delete files that time travel and writes in flight still need. "
            f"To keep less history, lower the table's property first (ALTER TABLE ... SET TBLPROPERTIES "
            f"('{RETENTION_PROPERTY}' = 'interval 24 hours'))"
        )
    return requested


# Commits that change no rows: maintenance and metadata. Anything else counts as new data.
NON_DATA_OPERATIONS = frozenset(
    {
        "OPTIMIZE",
        "VACUUM START",
        "VACUUM END",
        "SET TBLPROPERTIES",
        "UNSET TBLPROPERTIES",
        "UPDATE FIELD METADATA",
        "UPDATE TABLE METADATA",
        "CHANGE COLUMN",
        "ADD CONSTRAINT",
        "DROP CONSTRAINT",
        "SET TABLE DESCRIPTION",
        "ADD COLUMNS",
        "ADD COLUMN",
    }
)


def data_version(history: Sequence[Mapping[str, Any]], version: int) -> int:
    """The version whose rows ``version`` shows: ``version`` itself, or, when it is a comment, property or
    maintenance commit, the data commit before it (those change no row)."""
    operations = {int(c["version"]): (c.get("operation") or "").upper() for c in history}
    while version > 0 and operations.get(version) in NON_DATA_OPERATIONS:
        version -= 1
    return version


#: commitInfo field where both engines keep a commit's custom metadata (a JSON object as a string), as
#: delta-spark's ``userMetadata`` option and session setting do.
USER_METADATA = "userMetadata"


def parse_custom(commit_info: Mapping[str, Any], known: Collection[str] = ()) -> dict[str, Any]:
    """A commit's custom metadata: ``userMetadata`` parsed (a JSON object, or kept as text), plus any other
    field not in ``known`` (what earlier versions of the offline engine wrote at the top level)."""
    import json

    out = {k: v for k, v in commit_info.items() if k not in known and k != USER_METADATA}
    raw = commit_info.get(USER_METADATA)
    if raw:
        try:
            parsed = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            parsed = None
        out.update(parsed if isinstance(parsed, dict) else {USER_METADATA: raw})
    return out


def ddl_columns(ddl: str) -> list[str]:
    """The column names of a DDL string such as ``"a STRING, b ARRAY<STRING>, c DECIMAL(10, 2)"``."""
    parts, depth, current = [], 0, ""
    for char in ddl:
        depth += char in "<("
        depth -= char in ">)"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p.strip().split(" ", 1)[0].strip("`") for p in [*parts, current] if p.strip()]


def new_write_id() -> str:
    return uuid.uuid4().hex


def check_write_mode(table: TableRef, mode: str, replace_where: str | None) -> None:
    if mode not in WRITE_MODES:
        raise StorageError(f"{table.name}: unknown write mode {mode!r}; use append or overwrite (or merge)")
    if replace_where and mode != "overwrite":
        raise StorageError(f"{table.name}: replace_where needs mode 'overwrite'")


def with_write_id(commit_info: Mapping[str, Any] | None, write_id: str) -> dict[str, Any]:
    """The commit metadata of a write: the caller's keys plus this write's id."""
    return {**{str(k): v for k, v in (commit_info or {}).items()}, WRITE_ID_KEY: write_id}


def find_commit(
    history: Callable[[int | None], list[dict[str, Any]]], write_id: str, recent: int = 20
) -> dict[str, Any] | None:
    """The commit (as :meth:`DeltaStore.history` returns it) whose metadata carries ``write_id``."""
    for limit in (recent, None):
        for commit in history(limit):
            if str(commit.get("custom", {}).get(WRITE_ID_KEY)) == write_id:
                return commit
    return None


def strip_nullability(dtype: Any) -> str:
    """A type's shape without nullability, for comparisons."""
    return re.sub(r'"(nullable|containsNull|valueContainsNull)":(true|false)', "", dtype.json())


def as_nullable(schema: StructType) -> StructType:
    """Every field, nested ones too, nullable: what delta-spark gives a table created from a DataFrame
    (NOT NULL comes only from a declared schema, see :meth:`DeltaStore.create`)."""
    import json

    from pyspark.sql.types import StructType

    text = re.sub(r'"(nullable|containsNull|valueContainsNull)":\s*false', r'"\1":true', schema.json())
    return StructType.fromJson(json.loads(text))


def conform(df: DataFrame, schema: StructType, name: str) -> DataFrame:
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
        if strip_nullability(incoming[c].dataType) != strip_nullability(expected[c].dataType)
    ]
    if wrong:
        raise SchemaMismatchError(f"{name}: column type(s) differ: {'; '.join(wrong)}")
    return df.select(*[f"`{c}`" for c in expected])


def with_comments(df: DataFrame, comments: Mapping[str, str]) -> DataFrame:
    """``df`` with ``comments`` as its columns' comment metadata (columns it lacks are ignored), in one
    projection rather than one ``withMetadata`` (a new plan to analyse) per column."""
    from pyspark.sql import functions as F

    wanted = {c: text for c, text in comments.items() if c in df.columns}
    if not wanted:
        return df
    quoted = {c: "`" + c.replace("`", "``") + "`" for c in df.columns}
    return df.select(
        *[
            F.col(quoted[c]).alias(c, metadata={"comment": wanted[c]}) if c in wanted else F.col(quoted[c])
            for c in df.columns
        ]
    )


def merge_predicate(spec: MergeSpec) -> str:
    return " AND ".join(f"t.`{k}` = s.`{k}`" for k in spec.keys)


def check_merge_keys(table: TableRef, spec: MergeSpec, schema: StructType, source: DataFrame) -> None:
    missing = [k for k in spec.keys if k not in schema.fieldNames() or k not in source.columns]
    if missing or not spec.keys:
        raise SchemaMismatchError(
            f"{table.name}: merge key(s) {missing or '(none)'} missing from the table or source"
        )


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

    def __init__(
        self, spark: SparkSession | None = None, *, start: Callable[[], SparkSession] | None = None
    ) -> None:
        """``spark``: the session; or ``start``, called the first time a session is needed (a run that finds
        nothing to do, asking only the tables' logs and small system tables, never starts a JVM)."""
        if spark is None and start is None:
            raise ValueError("a DeltaStore needs a SparkSession or a way to start one")
        self._spark = spark
        self._start = start

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            assert self._start is not None
            self._spark = self._start()
        return self._spark

    @property
    def spark_started(self) -> bool:
        return self._spark is not None

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
        """Create an empty table with this exact schema (NOT NULL where a field is not nullable) and CHECK
        ``constraints`` (name -> SQL boolean); refuses a table that exists (WriteConflictError)."""

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

        With ``replace_where`` every written row must match the predicate (else WriteConflictError). A new
        table takes the data's schema with every column nullable (as delta-spark does); an existing table's
        schema is kept: missing, extra or retyped columns are a SchemaMismatchError. The result's version is
        this write's own commit."""

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
        for checks. Read with deltalake where the table allows it (no Spark job: reference keys are small),
        with Spark's DISTINCT otherwise."""
        if self._small_table_rows(table):
            from pipelines.lakehouse.offline import rows as small

            try:
                return small.distinct_values(table, column, limit)
            except (small.UnsupportedTableFeatureError, small.NotServedHere):
                pass
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
    ) -> int:
        """Append a few driver-side rows to an existing table (system tables), with no Spark job where the
        table allows it (:mod:`pipelines.lakehouse.offline.rows`), through Spark otherwise. Returns the
        version committed."""
        if self._small_table_rows(table):
            from pipelines.lakehouse.offline import rows as small

            try:
                return small.append_rows(table, rows, ddl_columns(ddl), commit_info)
            except (small.UnsupportedTableFeatureError, small.NotServedHere):
                pass  # Spark writes these (nothing was written): its checks, its errors
        return self.write(
            self.spark.createDataFrame(rows, ddl), table, "append", commit_info=commit_info
        ).version

    def read_rows(
        self,
        table: TableRef,
        columns: Sequence[str],
        version: int | None = None,
        where: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[tuple[Any, ...]]:
        """``columns`` of every row of a small table (system tables), as tuples on the driver; with no Spark
        job where the table allows it. ``where``: only the rows matching one of its mappings (each a set of
        column = value equalities), e.g. ``[{"table_name": "silver.x", "check_name": "c"}]``. Values are
        Python scalars; timestamps are not normalised across the two ways, so ask for names, numbers and
        text (or compare timestamps of one call only)."""
        if self._small_table_rows(table):
            from pipelines.lakehouse.offline import rows as small

            try:
                return small.read_rows(table, columns, version, where)
            except small.UnsupportedTableFeatureError:
                pass
        if where is not None and not where:
            return []
        frame = self.read(table, version)
        if where is not None:
            from functools import reduce

            from pyspark.sql import functions as F

            def matches(alt: Mapping[str, Any]) -> Any:
                return reduce(lambda a, b: a & b, [F.col(f"`{c}`") == F.lit(v) for c, v in alt.items()])

            frame = frame.where(reduce(lambda a, b: a | b, [matches(alt) for alt in where]))
        frame = frame.select(*[f"`{c}`" for c in columns])
        return [tuple(r) for r in frame.collect()]

    def _small_table_rows(self, table: TableRef) -> bool:
        """Whether :meth:`read_rows` and :meth:`append_rows` try deltalake before Spark."""
        from pipelines.lakehouse.offline import rows as small

        return small.served(table)

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
    def add_columns(self, table: TableRef, fields: StructType) -> None:
        """Add nullable columns at the end of the table's schema (one metadata commit); existing rows read
        them as null. Columns the table has already are an error (SchemaMismatchError)."""

    @abstractmethod
    def properties(self, table: TableRef) -> dict[str, str]: ...

    @abstractmethod
    def optimize(self, table: TableRef, zorder_by: Sequence[str] = ()) -> dict[str, Any]: ...

    def retention_hours(self, table: TableRef) -> float:
        """The table's ``delta.deletedFileRetentionDuration`` in hours (168 when unset)."""
        return table_retention_hours(table, self.properties(table))

    @abstractmethod
    def vacuum(self, table: TableRef, retention_hours: float | None = None) -> list[str]:
        """Delete files no longer referenced by versions within the retention; returns what was removed.

        ``retention_hours``: None keeps the table's own retention; less than it is a RetentionError (to vacuum
        closer, lower the table's ``delta.deletedFileRetentionDuration`` first: the Delta way)."""
