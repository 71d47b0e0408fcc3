"""The one place a SparkSession is made.

Three cases, decided once at start-up:

1. **Databricks**: ``DATABRICKS_RUNTIME_VERSION`` is set; the cluster's active session is used as it is,
   with native Delta and Unity Catalog.
2. **Local with Delta jars**: a folder of jars (``storage.delta_jars`` or ``MEDALLION_DELTA_JARS``), a Maven
   layout (``~/.m2/repository/io/delta/...``) or the ivy cache holds delta-spark's jars; the session gets
   delta-spark's SQL extension and catalog, and tables are written natively.
3. **Local offline** (the default on machines without Maven access): plain Spark; the storage layer commits
   Delta tables with the ``deltalake`` package (see :mod:`pipelines.lakehouse.offline`).
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import Settings
from pipelines.errors import SessionError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

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


def _delta_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("delta-spark")
    except Exception:
        return None


def find_delta_jars(settings: Settings | None = None) -> tuple[str, ...]:
    """Locate delta-spark and delta-storage jars on this machine, or return ()."""
    folder = os.environ.get("MEDALLION_DELTA_JARS") or (settings.storage.delta_jars if settings else None)
    if folder:
        jars = sorted(glob.glob(os.path.join(os.path.expanduser(folder), "*.jar")))
        if not any(Path(j).name.startswith("delta-spark") for j in jars):
            raise SessionError(
                f"MEDALLION_DELTA_JARS / storage.delta_jars points at {folder}, which holds no delta-spark_*.jar"
            )
        return tuple(jars)
    version = _delta_version()
    if not version:
        return ()
    candidates: list[str] = []
    m2 = Path.home() / ".m2" / "repository" / "io" / "delta"
    candidates += glob.glob(str(m2 / "delta-spark_2.13" / version / f"delta-spark_2.13-{version}.jar"))
    candidates += glob.glob(str(m2 / "delta-storage" / version / f"delta-storage-{version}.jar"))
    for ivy in glob.glob(str(Path.home() / ".ivy2*" / "jars")):
        candidates += glob.glob(os.path.join(ivy, f"io.delta_delta-spark_2.13-{version}.jar"))
        candidates += glob.glob(os.path.join(ivy, f"io.delta_delta-storage-{version}.jar"))
    spark_jar = [c for c in candidates if "delta-spark" in Path(c).name]
    storage_jar = [c for c in candidates if "delta-storage" in Path(c).name]
    if spark_jar and storage_jar:
        return (spark_jar[0], storage_jar[0])
    return ()


def decide_engine(settings: Settings) -> SessionInfo:
    """Pick the Delta engine from config and what this machine has (no JVM is started)."""
    wanted = settings.storage.engine
    if on_databricks():
        if wanted == "offline":
            raise SessionError(
                "storage.engine is 'offline' but this is a Databricks cluster: use native or auto"
            )
        return SessionInfo("native", "databricks", "Databricks runtime: Delta is built in")
    jars = find_delta_jars(settings) if wanted != "offline" else ()
    if wanted == "native" and not jars:
        raise SessionError(
            "storage.engine is 'native' but no Delta jars were found: put delta-spark_2.13 and delta-storage "
            "jars in a folder named by MEDALLION_DELTA_JARS, or use engine 'auto' / 'offline'"
        )
    if jars:
        return SessionInfo("native", "local-jars", f"Delta jars found: {', '.join(jars)}", jars)
    return SessionInfo(
        "offline",
        "local-offline",
        "no Delta jars on this machine: Spark writes parquet, deltalake (delta-rs) commits the Delta log",
    )


_SESSION: SparkSession | None = None
_INFO: SessionInfo | None = None


def get_session(settings: Settings) -> tuple[SparkSession, SessionInfo]:
    """Return the SparkSession and the engine decision; builds the session on first call."""
    global _SESSION, _INFO
    info = decide_engine(settings)
    if info.where == "databricks":
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is None:
            active = SparkSession.builder.getOrCreate()
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
        )
    for key, value in extra.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        raise SessionError(f"could not start local Spark ({conf.master}): {exc}".splitlines()[0]) from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stop_session() -> None:
    """Stop the session this module built (tests and the CLI call it on exit)."""
    global _SESSION, _INFO
    if _SESSION is not None:
        _SESSION.stop()
    _SESSION = None
    _INFO = None
