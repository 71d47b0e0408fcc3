"""Which Delta engine and names a process gets, decided without starting a JVM."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipelines.config import load_settings
from pipelines.errors import SessionError
from pipelines.lakehouse import resolve
from pipelines.session import decide_engine, find_delta_jars

pytestmark = pytest.mark.fast
CONF = Path(__file__).resolve().parents[2] / "conf"


def test_databricks_runtime_selects_native_and_catalog_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "18.0")
    settings = load_settings("prod", CONF)
    info = decide_engine(settings)
    assert (info.engine, info.where) == ("native", "databricks")
    ref = resolve(settings, "bronze.flights")
    assert (ref.kind, ref.location) == ("catalog", "medallion_prod.bronze.flights")


def test_offline_is_refused_on_databricks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "18.0")
    settings = load_settings("local", CONF)
    settings = dataclasses.replace(settings, storage=dataclasses.replace(settings.storage, engine="offline"))
    with pytest.raises(SessionError):
        decide_engine(settings)


def test_local_without_jars_is_offline_with_path_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.delenv("MEDALLION_DELTA_JARS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.m2 or ivy cache here
    monkeypatch.setenv("MEDALLION_HOME", str(tmp_path / "home"))
    settings = load_settings("local", CONF)
    assert find_delta_jars(settings) == ()
    info = decide_engine(settings)
    assert (info.engine, info.where) == ("offline", "local-offline")
    assert resolve(settings, "bronze.flights").location == str(
        tmp_path / "home" / "lakehouse" / "bronze" / "flights"
    )


def test_native_requested_without_jars_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.delenv("MEDALLION_DELTA_JARS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings("local", CONF)
    settings = dataclasses.replace(settings, storage=dataclasses.replace(settings.storage, engine="native"))
    with pytest.raises(SessionError):
        decide_engine(settings)


def test_jar_folder_selects_native(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "delta-spark_2.13-4.4.1.jar").write_bytes(b"")
    (jars / "delta-storage-4.4.1.jar").write_bytes(b"")
    monkeypatch.setenv("MEDALLION_DELTA_JARS", str(jars))
    info = decide_engine(load_settings("local", CONF))
    assert info.engine == "native" and info.where == "local-jars" and len(info.jars) == 2


def test_jar_folder_without_delta_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.setenv("MEDALLION_DELTA_JARS", str(tmp_path))
    with pytest.raises(SessionError):
        decide_engine(load_settings("local", CONF))


def test_databricks_job_environment_names_every_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a job task sets (jobs/tasks.py): catalog and per-layer schemas from the bundle, read by config."""
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "18.0")
    monkeypatch.setenv("MEDALLION_CATALOG", "team")
    monkeypatch.setenv("MEDALLION_SCHEMA_SILVER", "dev_someone_silver")
    settings = load_settings("dev", CONF)
    assert decide_engine(settings).engine == "native"
    assert resolve(settings, "silver.flights").location == "team.dev_someone_silver.flights"
    assert resolve(settings, "bronze.flights").location == "team.bronze.flights"  # not overridden
    assert settings.storage.ingest == "autoloader"


def test_local_environment_keeps_the_manifest_ingest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert load_settings("local", CONF).storage.ingest == "manifest"


def test_model_is_registered_beside_gold_in_unity_catalog() -> None:
    from pipelines.config import load_settings
    from pipelines.ml.tracking import registered_name

    assert registered_name(load_settings("local")) == "flight_delay"
    assert registered_name(load_settings("dev")) == "medallion_dev.gold.flight_delay"
    assert registered_name(load_settings("prod")) == "medallion_prod.gold.flight_delay"
