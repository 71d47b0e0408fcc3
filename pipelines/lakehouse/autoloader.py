"""Bronze ingestion with Databricks Auto Loader (``cloudFiles``): the ``storage.ingest: autoloader`` path.

Selected by configuration (``conf/dev.yml``, ``conf/prod.yml``), never by an ``if`` on the environment: the
runner asks :func:`pipelines.lakehouse.ingest.ingest_function` for the ingestion the config names.

What it does, per bronze table: an Auto Loader stream over ``<landing>/<source.pattern>``, the same pure
:func:`pipelines.bronze.records.bronze_records` transformation as the manifest path, appended to the bronze
Delta table with ``trigger(availableNow=True)``: every new file once, then the stream stops. The checkpoint
(under ``<paths.state>/checkpoints/<table>``) is Auto Loader's record of the files already taken; it is
what the manifest table is for the local path.

The declared ``redelivery`` policy of a source maps to ``cloudFiles.allowOverwrites``: ``reingest`` ->
true (a file rewritten under the same name is taken again), ``skip`` -> false. ``fail`` has no Auto Loader
equivalent and is refused with a :class:`ConfigError` before anything runs.

Off Databricks (open-source Spark has no ``cloudFiles`` source) the same code runs with Spark's own file
source of the same format: the same options but the ``cloudFiles.*`` ones, schema, bronze transformation,
checkpointed streaming write into the Delta table (delta-spark's sink, so the native engine). That file source
remembers files by name: a file rewritten under the same name is not taken again (``reingest`` behaves as
``skip`` there; the run says so), and it has no rescued-data column: JSON keys the source does not declare are
rescued into ``_rescued_data`` on Databricks only (``rescuedDataColumn``), not by the open-source stream. Each micro-batch commit carries the run id, like every pipeline commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.config import Settings, SourceConf, TableConf
from pipelines.errors import ConfigError, IngestionError
from pipelines.outputs import IngestResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from pipelines.lakehouse import Lakehouse

#: Spark's file format name for each declared source format.
SPARK_FORMATS = {"csv": "csv", "jsonl": "json"}


def reader_options(source: SourceConf) -> dict[str, str]:
    """Options of the file reader itself (shared by Auto Loader and Spark's own file sources).

    Every declared column is read as text, an unparsable record is kept whole in ``_corrupt_record``
    (PERMISSIVE), and a CSV header that does not name the declared columns fails the read
    (``enforceSchema=false``), as the manifest path refuses such a file.
    """
    from pipelines.bronze.records import CORRUPT_COLUMN

    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
    if source.format == "csv":
        options |= {"header": "true", "enforceSchema": "false"}
    return options


def autoloader_options(source_name: str, source: SourceConf) -> dict[str, str]:
    """The ``cloudFiles.*`` options of a source, plus :func:`reader_options`."""
    if source.format not in SPARK_FORMATS:
        raise ConfigError(f"sources.{source_name}.format {source.format!r} has no Auto Loader format")
    if source.redelivery == "fail":
        raise ConfigError(
            f"sources.{source_name}.redelivery is 'fail', which Auto Loader cannot enforce (it either takes a "
            "rewritten file again or ignores it): use reingest or skip, or storage.ingest: manifest"
        )
    options = {
        "cloudFiles.format": SPARK_FORMATS[source.format],
        "cloudFiles.includeExistingFiles": "true",
        "cloudFiles.allowOverwrites": "true" if source.redelivery == "reingest" else "false",
        **reader_options(source),
    }
    if source.format == "jsonl":
        # Keys the schema does not declare are kept as JSON in the rescued-data column (Auto Loader only; the
        # manifest path rescues them itself), not dropped.
        from pipelines.bronze.records import RESCUED_COLUMN

        options[RESCUED_OPTION] = RESCUED_COLUMN
    return options


#: Auto Loader's option naming the column that receives what the schema does not hold (Databricks only).
RESCUED_OPTION = "rescuedDataColumn"


def source_glob(settings: Settings, source: SourceConf) -> str:
    """Where the stream looks: the landing folder (a UC volume path on Databricks) and the source's pattern."""
    return str(Path(settings.landing_dir) / source.pattern)


def checkpoint_location(settings: Settings, table: str) -> str:
    return str(Path(settings.state_dir) / "checkpoints" / table)


def schema_ddl(source: SourceConf) -> str:
    from pipelines.bronze.records import CORRUPT_COLUMN

    return ", ".join(f"`{c}` string" for c in source.columns) + f", {CORRUPT_COLUMN} string"


def build_stream(
    spark: SparkSession,
    settings: Settings,
    source_name: str,
    source: SourceConf,
    run_id: str,
    stream_format: str = "cloudFiles",
) -> DataFrame:
    """The streaming DataFrame of bronze rows. ``stream_format="cloudFiles"`` on Databricks; the tests pass
    the plain file format (``csv``/``json``), with which the ``cloudFiles.*`` options are left out."""
    from pyspark.sql import functions as F

    from pipelines.bronze.records import RESCUED_COLUMN, bronze_records

    options = autoloader_options(source_name, source)
    if stream_format != "cloudFiles":
        options = {
            k: v for k, v in options.items() if not k.startswith("cloudFiles.") and k != RESCUED_OPTION
        }
    raw = (
        spark.readStream.format(stream_format)
        .schema(schema_ddl(source))
        .options(**options)
        .load(source_glob(settings, source))
    )
    rescued = F.col(RESCUED_COLUMN) if RESCUED_OPTION in options else None
    return bronze_records(raw, source.columns, source.format, run_id, rescued_json=rescued)


def stream_format_here(source: SourceConf) -> str:
    """``cloudFiles`` on Databricks, else the plain file source of the source's format."""
    from pipelines.session import on_databricks

    return "cloudFiles" if on_databricks() else SPARK_FORMATS[source.format]


def ingest(
    lh: Lakehouse, table: str, conf: TableConf, source_name: str, source: SourceConf, run_id: str
) -> IngestResult:
    """Append every landed file not yet taken to ``table`` (Auto Loader, available-now trigger)."""
    if lh.engine != "native":
        raise IngestionError(
            f"{table}: storage.ingest is 'autoloader', which needs native Delta (Databricks, or locally the jars "
            "of `medallion setup`); use storage.ingest: manifest with the offline engine"
        )
    import json

    from pipelines.lakehouse.base import as_nullable
    from pipelines.lakehouse.native import USER_METADATA_CONF

    ref = lh.ref(table)
    stream_format = stream_format_here(source)
    stream = build_stream(lh.spark, lh.settings, source_name, source, run_id, stream_format=stream_format)
    # A new table is created first (version 0: schema and description), as the manifest path creates it, so
    # the first data commit is version 1 on both paths. Left to the streaming sink, the table would be created
    # (v0), appended (v1), then commented (v2).
    created = None
    if not lh.exists(table):
        created = lh.create(table, as_nullable(stream.schema), description=conf.description).version
    writer = (
        stream.writeStream.format("delta")
        .outputMode("append")
        .option("checkpointLocation", checkpoint_location(lh.settings, table))
        .queryName(f"bronze_{table.partition('.')[2]}_{run_id}".replace("-", "_"))
        .trigger(availableNow=True)
    )
    # Every micro-batch commit carries the run id (the downstream tables read their changes by it).
    lh.spark.conf.set(USER_METADATA_CONF, json.dumps({"medallion.run_id": run_id}))
    try:
        query = writer.toTable(ref.location) if ref.kind == "catalog" else writer.start(ref.location)
        query.awaitTermination()
    except Exception as exc:
        if created is not None and lh.version(table) == created:
            from pipelines.lakehouse.native import NativeDeltaStore

            if isinstance(lh.store, NativeDeltaStore):  # the engine is native (checked above)
                lh.store.drop_new_table(ref)  # a first stream that failed leaves no table, as a first write
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:400]
        raise IngestionError(
            f"{table}: the ingestion stream over {source_glob(lh.settings, source)} failed ({first}); nothing of "
            "this batch was committed and its checkpoint did not advance: fix the file and run again"
        ) from None
    finally:
        lh.spark.conf.unset(USER_METADATA_CONF)
    rows = rows_ingested(query)
    files = 0
    if rows:
        from pyspark.sql import functions as F

        first_row = (
            lh.read(table).where(F.col("_run_id") == run_id).agg(F.countDistinct("_source_file")).first()
        )
        files = int(first_row[0]) if first_row else 0
        lh.set_comments(table, conf.description)
    return IngestResult(table, files, 0, 0, rows, lh.version(table))


def rows_ingested(query: Any) -> int:
    """Rows the (finished) streaming query read, summed over its micro-batches."""
    total = 0
    for progress in query.recentProgress or []:
        rows = getattr(progress, "numInputRows", None)
        if rows is None:  # older PySpark: progress as a dict
            rows = progress.get("numInputRows", 0)
        total += int(rows or 0)
    return total
