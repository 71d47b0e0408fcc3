"""Shared fixtures: one real local SparkSession for the whole run, built by the project's own factory.

- ``settings``: ``conf/`` loaded for env ``local`` with MEDALLION_HOME in a temporary folder, the Spark section
  tuned for speed (``local[1]``, one shuffle partition, no whole-stage codegen, fast-starting JVM).
- ``spark``: the session from :func:`pipelines.session.get_session` (stopped at the end of the run).
- ``lakehouse``: a :class:`pipelines.lakehouse.Lakehouse` on the offline engine whose lakehouse folder is a fresh
  ``tmp_path`` per test; ``lakehouse_factory(**offline_overrides)`` builds more of them (e.g. a small merge bound).
- ``golden_table(name)``: copies the delta-spark table ``tests/fixtures/delta/tables/<name>`` to ``tmp_path`` and
  returns the copy (tests never write into the fixtures; ``tests/fixtures/make_delta_fixtures.py`` made them).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import run_cli

from pipelines.config import Settings, load_settings

FAST_JAVA_OPTIONS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
# Path overrides that would silently redirect the test lakehouse into a user's real folders.
_PATH_ENV_VARS = ("MEDALLION_LAKEHOUSE", "MEDALLION_LANDING", "MEDALLION_STATE")


GOLDEN_DIR = Path(__file__).resolve().parent / "fixtures" / "delta"
# The pseudonymisation key of every test run (the product reads it from the environment; subprocesses inherit
# it). Never a user's own key: a test that wants another key or none sets or removes it itself.
TEST_PSEUDONYM_KEY = "test-key-0123456789abcdef0123456789abcdef"
os.environ["MEDALLION_PSEUDONYM_KEY"] = TEST_PSEUDONYM_KEY
os.environ.pop("MEDALLION_PSEUDONYM_KEY_FILE", None)
os.environ.pop("MEDALLION_SECRET_SCOPE", None)
os.environ.pop("MEDALLION_SECRETS", None)
# `medallion setup` writes this machine's key under XDG_CONFIG_HOME: never into the user's own ~/.config.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="medallion-test-config-")


def golden_dir() -> Path:
    """Folder of the Delta tables written by real delta-spark, with delta-spark's rows per version."""
    return GOLDEN_DIR


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("medallion-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDALLION_HOME", str(home))
        for var in _PATH_ENV_VARS:
            mp.delenv(var, raising=False)
        loaded = load_settings("local")
        # session.py sets spark.driver.extraJavaOptions to the derby home; conf wins, so keep both flags.
        java_options = f"-Dderby.system.home={loaded.state_dir} {FAST_JAVA_OPTIONS}"
        yield dataclasses.replace(
            loaded,
            spark=dataclasses.replace(
                loaded.spark,
                master="local[1]",
                shuffle_partitions=1,
                conf={
                    "spark.sql.codegen.wholeStage": "false",
                    "spark.driver.extraJavaOptions": java_options,
                },
            ),
        )


@pytest.fixture(scope="session")
def spark(settings: Settings) -> Iterator[Any]:
    """The one session of the run. With the Delta jars (``medallion setup``) it is a native session, which
    also serves the offline engine: that one needs nothing but plain Spark."""
    from pipelines.session import get_session, stop_session

    session, _info = get_session(settings)
    yield session
    stop_session()


def native_unavailable(settings: Settings) -> str | None:
    """Why this run has no native engine (None: it has one). Fails the test run where a Maven repository is
    reachable but the jars are missing: a native case may be skipped only where Maven is unreachable."""
    from pipelines import delta_jars
    from pipelines.session import get_session

    _session, info = get_session(settings)
    if info.engine == "native":
        return None
    if delta_jars.reachable(timeout=5):
        pytest.fail(
            f"the test session runs the {info.engine} engine ({info.reason}), but the Maven repository "
            f"{delta_jars.maven_repository()} is reachable: run `medallion setup` to fetch the Delta jars"
        )
    return f"native engine: no Delta jars and no Maven repository reachable ({info.reason})"


@pytest.fixture
def native_store_or_none(spark: Any, settings: Settings) -> Any:
    """A delta-spark store, or None where no Maven repository is reachable (so no jars can exist)."""
    if native_unavailable(settings):
        return None
    from pipelines.lakehouse.native import NativeDeltaStore

    return NativeDeltaStore(spark)


@pytest.fixture
def native_store_factory(spark: Any, settings: Settings) -> Callable[[], Any]:
    """``native_store_factory()`` -> a delta-spark store on the session (skips only without Maven)."""

    def make() -> Any:
        reason = native_unavailable(settings)
        if reason:
            pytest.skip(reason)
        from pipelines.lakehouse.native import NativeDeltaStore

        return NativeDeltaStore(spark)

    return make


def _settings_in(settings: Settings, home: Path, **offline: Any) -> Settings:
    """``settings`` with its lakehouse under ``home`` (absolute, so MEDALLION_HOME cannot redirect it)."""
    return dataclasses.replace(
        settings,
        paths=dataclasses.replace(
            settings.paths,
            home=str(home),
            lakehouse=str(home / "lakehouse"),
            landing=str(home / "landing"),
            state=str(home / "state"),
        ),
        storage=dataclasses.replace(
            settings.storage, offline=dataclasses.replace(settings.storage.offline, **offline)
        ),
    )


@pytest.fixture
def lakehouse_factory(settings: Settings, spark: Any, tmp_path: Path) -> Callable[..., Any]:
    """``lakehouse_factory(**offline_conf_overrides)`` -> an offline-engine Lakehouse in this test's tmp_path."""
    from pipelines.lakehouse import Lakehouse
    from pipelines.lakehouse.offline import OfflineDeltaStore

    def make(**offline: Any) -> Lakehouse:
        local = _settings_in(settings, tmp_path, **offline)
        return Lakehouse(local, OfflineDeltaStore(spark, local.storage.offline))

    return make


@pytest.fixture
def lakehouse(lakehouse_factory: Callable[..., Any]) -> Any:
    return lakehouse_factory()


@pytest.fixture(scope="session")
def golden_root() -> Path:
    """The folder of golden tables (read only: copy with ``golden_table`` before anything writes)."""
    return golden_dir()


@pytest.fixture
def golden_table(tmp_path: Path) -> Callable[[str], Path]:
    """``golden_table(name)`` -> a private copy of the golden table ``name`` under tmp_path."""

    def copy(name: str) -> Path:
        source = golden_dir() / "tables" / name
        if not (source / "_delta_log").is_dir():
            raise FileNotFoundError(f"no golden Delta table {name!r} in {golden_dir()}")
        target = tmp_path / "golden" / name
        shutil.copytree(source, target)
        return target

    return copy


# ---- row comparison shared by the Delta interop and golden-table tests -----------------------------------


def _canonical(value: Any) -> Any:
    """One comparable Python form per value, whichever reader produced it."""
    import datetime as dt
    from decimal import Context, Decimal

    if isinstance(value, dt.datetime):
        # Delta TIMESTAMP is an instant: compare in UTC. (Naive values stay naive: a reader that drops
        # the zone shows up as a difference instead of being silently fixed here.)
        return value.astimezone(dt.UTC) if value.tzinfo is not None else value
    if isinstance(value, float) and value != value:
        return "NaN"  # NaN equals nothing, not even itself
    if isinstance(value, Decimal):
        return value.normalize(Context(prec=100)) if value.is_finite() else value  # exact, no rounding
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict):
        return tuple((k, _canonical(v)) for k, v in value.items())
    if isinstance(value, list) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        # Arrow maps come back as lists of (key, value) pairs: their order carries no meaning.
        return ("map", tuple(sorted(((_canonical(k), _canonical(v)) for k, v in value), key=repr)))
    if isinstance(value, list | tuple):
        return tuple(_canonical(v) for v in value)
    return value


def canonical_rows(table: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows sorted canonically) of a pyarrow Table (or anything with ``to_pylist``)."""
    import pyarrow as pa

    if not isinstance(table, pa.Table):
        table = pa.table(table)
    names = list(table.column_names)
    rows = [tuple(_canonical(row[n]) for n in names) for row in table.to_pylist()]
    return names, sorted(rows, key=repr)


@pytest.fixture(scope="session")
def rows_of() -> Callable[[Any], tuple[list[str], list[tuple[Any, ...]]]]:
    """``rows_of(arrow_table)`` -> (column names, canonical sorted rows)."""
    return canonical_rows


@pytest.fixture(scope="session")
def canonical() -> Callable[[Any], Any]:
    """The canonical form ``rows_of`` gives each value (for building expected rows by hand)."""
    return _canonical


# ---- the slow tier: one full run of the README's first command, shared by every module that needs it ------


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(home, *args)``: the ``medallion`` command in a subprocess with MEDALLION_HOME=home."""
    return run_cli


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """(MEDALLION_HOME, the completed ``medallion run``) after landing and building everything once."""
    home = tmp_path_factory.mktemp("full-sample")
    first = run_cli(home, "run")
    assert first.returncode == 0, first.stderr
    return home, first


@pytest.fixture(scope="session")
def full_lakehouse(full_run: tuple[Path, Any], settings: Settings, spark: Any) -> Any:
    """A Lakehouse (this session's Spark, offline engine) over the tables of :func:`full_run`."""
    from pipelines.lakehouse import Lakehouse
    from pipelines.lakehouse.offline import OfflineDeltaStore

    local = _settings_in(settings, full_run[0])
    return Lakehouse(local, OfflineDeltaStore(spark, local.storage.offline))
