"""Table I/O behind one small interface; logical names -> physical tables per environment.

Use :func:`open_lakehouse` to get a :class:`Lakehouse`: it resolves ``bronze.flights`` to a folder (local) or
to ``catalog.schema.table`` (Unity Catalog) and hands every operation to the engine the session factory
picked: native delta-spark, or the offline engine (Spark writes, deltalake commits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.config import Settings, identifier_problem
from pipelines.errors import ConfigError, UsageError
from pipelines.lakehouse.base import DeltaStore, MergeSpec, TableRef, WriteResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["DeltaStore", "Lakehouse", "MergeSpec", "TableRef", "WriteResult", "open_lakehouse", "resolve"]


def resolve(settings: Settings, name: str) -> TableRef:
    """Map a logical name ``<layer>.<table>`` (or ``<layer>.<table>_quarantine`` etc.) to a TableRef.

    Every part is checked to be an identifier (:data:`pipelines.config.IDENTIFIER`): a table part such as
    ``/an/absolute/path`` or ``..`` would otherwise resolve outside the lakehouse (UsageError), a schema or
    catalog that is not one is a configuration mistake (ConfigError)."""
    layer, _, short = name.partition(".")
    if layer not in settings.storage.schemas or not short or identifier_problem(short, "") is not None:
        raise UsageError(
            f"table name {name!r} must be <layer>.<table> with layer one of {', '.join(settings.storage.schemas)} "
            "and a table of letters, digits and underscores"
        )
    schema = settings.storage.schemas[layer]
    parts: list[tuple[str | None, str]] = [(schema, f"storage.schemas.{layer}")]
    if settings.storage.naming == "catalog":
        parts.append((settings.storage.catalog, "storage.catalog"))
    for value, what in parts:
        problem = identifier_problem(value, what)
        if problem:
            raise ConfigError(f"{problem} (resolving {name})")
    if settings.storage.naming == "catalog":
        return TableRef(name, "catalog", f"{settings.storage.catalog}.{schema}.{short}")
    return TableRef(name, "path", str(Path(settings.lakehouse_dir) / schema / short))


def make_store(
    spark: SparkSession | None,
    engine: str,
    settings: Settings,
    start: Callable[[], SparkSession] | None = None,
) -> DeltaStore:
    """The engine's store over ``spark``, or over the session ``start`` makes when one is first needed."""
    if engine == "native":
        from pipelines.lakehouse.native import NativeDeltaStore

        return NativeDeltaStore(spark, start=start)
    from pipelines.lakehouse.offline import OfflineDeltaStore

    return OfflineDeltaStore(spark, settings.storage.offline, start=start)


class Lakehouse:
    """Logical-name front of a :class:`DeltaStore`."""

    def __init__(self, settings: Settings, store: DeltaStore) -> None:
        self.settings = settings
        self.store = store

    @property
    def spark(self) -> SparkSession:
        """The Spark session (started now if this Lakehouse was opened lazily and none runs yet)."""
        return self.store.spark

    @property
    def spark_started(self) -> bool:
        return self.store.spark_started

    @property
    def engine(self) -> str:
        return self.store.engine

    def ref(self, name: str) -> TableRef:
        return resolve(self.settings, name)

    def exists(self, name: str) -> bool:
        return self.store.exists(self.ref(name))

    def version(self, name: str) -> int | None:
        return self.store.version(self.ref(name))

    def read(self, name: str, version: int | None = None) -> DataFrame:
        return self.store.read(self.ref(name), version)

    def read_treated(self, name: str, version: int | None = None) -> DataFrame:
        """``read`` as the table's rows may leave it: a bronze table's sensitive columns pseudonymised, masked
        or dropped as declared (:func:`pipelines.sensitive.protect`); any other table as stored. Everything
        that reads a table for something other than bronze's own bookkeeping reads it this way."""
        from pipelines.sensitive import protect

        return protect(self.settings, name, self.read(name, version))

    def create(self, name: str, schema: StructType, **kwargs: Any) -> WriteResult:
        return self.store.create(self.ref(name), schema, **kwargs)

    def schema(self, name: str, version: int | None = None) -> StructType:
        return self.store.schema(self.ref(name), version)

    def write(self, df: DataFrame, name: str, mode: str = "append", **kwargs: Any) -> WriteResult:
        return self.store.write(df, self.ref(name), mode, **kwargs)

    def merge(self, source: DataFrame, name: str, spec: MergeSpec, **kwargs: Any) -> WriteResult:
        return self.store.merge(source, self.ref(name), spec, **kwargs)

    def delete(self, name: str, predicate: str | None = None) -> WriteResult:
        return self.store.delete(self.ref(name), predicate)

    def update(self, name: str, set_exprs: Mapping[str, str], predicate: str | None = None) -> WriteResult:
        return self.store.update(self.ref(name), set_exprs, predicate)

    def distinct_values(self, name: str, column: str, limit: int) -> list[Any] | None:
        """At most ``limit`` distinct values of ``column`` as stored (None: more, or not served this way: a
        bronze column declared sensitive, whose values only leave bronze through :meth:`read_treated`)."""
        from pipelines.sensitive import declared

        table = self.settings.tables.get(name)
        if table is not None and table.layer == "bronze" and column in declared(self.settings, name):
            return None
        return self.store.distinct_values(self.ref(name), column, limit)

    def read_rows(
        self,
        name: str,
        columns: Sequence[str],
        version: int | None = None,
        where: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[tuple[Any, ...]]:
        """``columns`` of the rows of a small table as tuples (see :meth:`DeltaStore.read_rows`)."""
        return self.store.read_rows(self.ref(name), columns, version, where)

    def append_rows(
        self, name: str, rows: list[tuple[Any, ...]], ddl: str, commit_info: Mapping[str, Any] | None = None
    ) -> int:
        return self.store.append_rows(self.ref(name), rows, ddl, commit_info)

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        return self.store.history(self.ref(name), limit)

    def set_comments(
        self, name: str, description: str | None = None, columns: Mapping[str, str] | None = None
    ) -> None:
        self.store.set_comments(self.ref(name), description, columns)

    def add_columns(self, name: str, fields: StructType) -> None:
        self.store.add_columns(self.ref(name), fields)

    def set_properties(self, name: str, properties: Mapping[str, str]) -> None:
        self.store.set_properties(self.ref(name), properties)

    def properties(self, name: str) -> dict[str, str]:
        return self.store.properties(self.ref(name))

    def optimize(self, name: str, zorder_by: Sequence[str] = ()) -> dict[str, Any]:
        return self.store.optimize(self.ref(name), zorder_by)

    def retention_hours(self, name: str) -> float:
        return self.store.retention_hours(self.ref(name))

    def vacuum(self, name: str, retention_hours: float | None = None) -> list[str]:
        return self.store.vacuum(self.ref(name), retention_hours)


def open_lakehouse(
    settings: Settings,
    spark: SparkSession | None = None,
    engine: str | None = None,
    *,
    lazy: bool = False,
    on_start: Callable[[], None] | None = None,
) -> Lakehouse:
    """Session + engine + name resolution in one call (what jobs and the CLI use).

    ``lazy``: the engine is decided now, the Spark session started only when something first needs it
    (``on_start`` is called just before): a run with nothing to do reads logs and small tables alone."""
    if lazy and spark is None:
        from pipelines.session import decide_engine, get_session

        def start() -> SparkSession:
            if on_start is not None:
                on_start()
            return get_session(settings)[0]

        return Lakehouse(settings, make_store(None, decide_engine(settings).engine, settings, start))
    if spark is None or engine is None:
        from pipelines.session import get_session

        spark, info = get_session(settings)
        engine = info.engine
    return Lakehouse(settings, make_store(spark, engine, settings))
