"""The one place a SparkSession is made.

Three cases, decided once at start-up:

1. **Databricks**: ``DATABRICKS_RUNTIME_VERSION`` is set; the cluster's active session is used as it is,
   with native Delta and Unity Catalog.
2. **Local with Delta jars** (the default once ``medallion setup`` fetched them, see
   :mod:`pipelines.delta_jars`; or a folder named by ``storage.delta_jars`` / ``MEDALLION_DELTA_JARS``): the
   session gets delta-spark's SQL extension and catalog, and tables are written natively. Nothing is
   downloaded here: the jars are on disk or this case does not apply.
3. **Local offline** (no jars, e.g. no Maven access at install time, or ``storage.engine: offline`` /
   ``MEDALLION_ENGINE=offline``): plain Spark; the storage layer commits Delta tables with the ``deltalake``
   package (see :mod:`pipelines.lakehouse.offline`).

A local native session with ``storage.naming: catalog`` (three-part names, as the Databricks targets use)
keeps its catalog in Spark's Hive metastore (embedded Derby), so that ``spark_catalog.<schema>.<table>``
outlives the process: in ``$MEDALLION_METASTORE`` when set (the local job run of the bundle sets it for all
its tasks, as a workspace has one metastore), else ``<paths.state>/metastore``; managed tables live in its
``warehouse/``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import Settings
from pipelines.errors import SessionError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: SQL settings of the session that runs analyst SQL (``medallion sql``): no ``csv.`/path``` / ``delta.`/path```
#: tables, and no ``${...}`` substitution of configuration values and environment variables into the text.
ANALYST_CONF = {"spark.sql.runSQLOnFiles": "false", "spark.sql.variable.substitute": "false"}

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def on_databricks() -> bool:
    """True inside a Databricks runtime (the variable every Databricks cluster sets)."""
    return bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))


@dataclass(frozen=True)
class SessionInfo:
    """What the factory decided: the engine the storage layer must use, and why."""

    engine: str  # "native" or "offline"
    where: str  # "databricks", "local-jars", "local-offline"
    reason: str
    jars: tuple[str, ...] = ()


def find_delta_jars(settings: Settings | None = None) -> tuple[str, ...]:
    """The Delta jars this machine has for the installed pyspark and delta-spark, or ()."""
    found = _locate_jars(settings)
    return found[0] if found else ()


def _locate_jars(settings: Settings | None) -> tuple[tuple[str, ...], str] | None:
    """(jars, where they came from) or None; a folder named explicitly must be right (else SessionError)."""
    from pipelines import delta_jars

    folder = os.environ.get("MEDALLION_DELTA_JARS") or (settings.storage.delta_jars if settings else None)
    if folder:
        named = delta_jars.located(folder)
        return named.jars, f"Delta jars of {named.coordinate} in {named.folder}"
    try:
        coord = delta_jars.coordinate()
    except SessionError:
        return None  # no pyspark / delta-spark installed: nothing to run natively with
    cached = delta_jars.read_manifest(delta_jars.default_folder(coord))
    if cached is None or cached.coordinate != coord:
        return None
    return cached.jars, f"Delta jars of {coord} in {cached.folder} (from `medallion setup`)"


def decide_engine(settings: Settings) -> SessionInfo:
    """Pick the Delta engine from config and what this machine has (no JVM is started)."""
    wanted = settings.storage.engine
    if on_databricks():
        if wanted == "offline":
            raise SessionError(
                "storage.engine is 'offline' but this is a Databricks cluster: use native or auto"
            )
        return SessionInfo("native", "databricks", "Databricks runtime: Delta is built in")
    if wanted == "offline":
        return SessionInfo(
            "offline",
            "local-offline",
            "storage.engine / MEDALLION_ENGINE is 'offline': Spark writes parquet, deltalake (delta-rs) commits",
        )
    found = _locate_jars(settings)
    if found is None:
        if wanted == "native":
            raise SessionError(
                "storage.engine is 'native' but this machine has no Delta jars for the installed delta-spark: "
                "run `medallion setup` (fetches them from Maven Central once), or use engine 'auto' / 'offline'"
            )
        return SessionInfo(
            "offline",
            "local-offline",
            "no Delta jars on this machine (`medallion setup` fetches them): Spark writes parquet, "
            "deltalake (delta-rs) commits the Delta log",
        )
    jars, where = found
    return SessionInfo("native", "local-jars", where, jars)


def hive_catalog_conf(metastore: str | Path) -> dict[str, str]:
    """Spark conf of a persistent ``spark_catalog``: Hive's metastore in embedded Derby under ``metastore``,
    managed tables in its ``warehouse/``."""
    folder = Path(metastore)
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(folder / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={folder / 'metastore_db'};create=true",
    }


_SESSION: SparkSession | None = None
_INFO: SessionInfo | None = None


#: Planner settings every session of the pipeline gets. Constraint propagation off: with it, Spark infers a
#: `<=>` constraint per alias and combines them, which grows exponentially with the aliased columns of a
#: table like silver.flights; delta-spark's MERGE of a second delivery then held 2^20 EqualNullSafe
#: expressions and ran the driver out of heap on a few hundred rows. Only filter inference is lost.
PLANNER_CONF = {"spark.sql.constraintPropagation.enabled": "false"}


def get_session(settings: Settings) -> tuple[SparkSession, SessionInfo]:
    """Return the SparkSession and the engine decision; builds the session on first call."""
    global _SESSION, _INFO
    info = decide_engine(settings)
    if info.where == "databricks":
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is None:
            active = SparkSession.builder.getOrCreate()
        for key, value in PLANNER_CONF.items():
            # Serverless compute refuses most settings: there the platform's own planner settings stand.
            with contextlib.suppress(Exception):
                active.conf.set(key, value)
        return active, info
    if _SESSION is not None and _INFO is not None:
        if _INFO.engine != info.engine:
            raise SessionError(
                f"a {_INFO.engine} Spark session already runs in this process; cannot switch to {info.engine}"
            )
        return _SESSION, _INFO
    _SESSION = build_local_session(settings, info)
    _INFO = info
    return _SESSION, info


def build_local_session(settings: Settings, info: SessionInfo) -> SparkSession:
    """A local SparkSession tuned for a laptop: loopback, UI off, UTC, INT64 timestamps."""
    # Workers must run the same interpreter (it has pyarrow); set before the JVM starts.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SessionError(
            "pyspark is not installed: install the local extra (pip install -e '.[local]')"
        ) from exc

    conf = settings.spark
    warehouse = settings.state_dir / "spark-warehouse"
    builder = (
        SparkSession.builder.master(conf.master)
        .appName(conf.app_name)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", conf.driver_memory)
        .config("spark.ui.enabled", str(conf.ui).lower())
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(conf.shuffle_partitions))
        .config("spark.default.parallelism", str(max(conf.shuffle_partitions, 2)))
        .config("spark.sql.session.timeZone", conf.timezone)
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.sources.partitionOverwriteMode", "static")
        .config("spark.sql.warehouse.dir", str(warehouse))
        # File listings (Delta's VACUUM among them) are split into this many tasks (default 10,000: minutes
        # of empty tasks for a laptop's table).
        .config(
            "spark.sql.sources.parallelPartitionDiscovery.parallelism", str(max(conf.shuffle_partitions, 2))
        )
    )
    log4j = Path(__file__).with_name("log4j2.properties")
    java_opts = f"-Dderby.system.home={settings.state_dir} -Dlog4j2.configurationFile={log4j.as_uri()}"
    extra = dict(conf.conf)
    if "spark.driver.extraJavaOptions" in extra:
        java_opts += " " + extra.pop("spark.driver.extraJavaOptions")
    builder = builder.config("spark.driver.extraJavaOptions", java_opts)
    if info.engine == "native":
        builder = (
            builder.config("spark.jars", ",".join(info.jars))
            .config("spark.sql.extensions", DELTA_EXTENSION)
            .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
            # Delta replays its log into this many partitions (default 50: 50 tasks per snapshot of a
            # tiny local table, seconds each time); a laptop's table needs as few as its shuffles.
            .config("spark.databricks.delta.snapshotPartitions", str(conf.shuffle_partitions))
        )
        if settings.storage.naming == "catalog":
            metastore = os.environ.get("MEDALLION_METASTORE") or str(settings.state_dir / "metastore")
            for key, value in hive_catalog_conf(metastore).items():
                builder = builder.config(key, value)
    for key, value in {**PLANNER_CONF, **extra}.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        raise SessionError(f"could not start local Spark ({conf.master}): {exc}".splitlines()[0]) from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def analyst_session(spark: SparkSession) -> SparkSession:
    """A session for analyst SQL on ``spark``'s context (same engine, catalog and jars) with its own SQL
    settings (:data:`ANALYST_CONF`) and its own temporary views; where sessions cannot be split (Spark
    Connect), ``spark`` itself with those settings."""
    try:
        session = spark.newSession()
    except Exception:  # pragma: no cover - Spark Connect has no newSession
        session = spark
    for key, value in ANALYST_CONF.items():
        session.conf.set(key, value)
    check_analyst_session(session)
    return session


def check_analyst_session(session: SparkSession) -> None:
    """SessionError unless every setting of :data:`ANALYST_CONF` holds in ``session``."""
    wrong = {k: session.conf.get(k, None) for k, v in ANALYST_CONF.items() if session.conf.get(k, None) != v}
    if wrong:
        raise SessionError(
            "the analyst session does not hold its read-only settings ("
            + ", ".join(f"{k}={v}" for k, v in wrong.items())
            + "): refusing to run SQL in it"
        )


def stop_session() -> None:
    """Stop the session this module built (tests and the CLI call it on exit)."""
    global _SESSION, _INFO
    if _SESSION is not None:
        _SESSION.stop()
    _SESSION = None
    _INFO = None
