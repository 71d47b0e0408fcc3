"""Which Delta engine and names a process gets, decided without starting a JVM."""

from __future__ import annotations

import dataclasses
import json
import shutil
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


@pytest.fixture
def no_jars(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A machine without Delta jars: empty HOME, cache and no jar folder named."""
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.delenv("MEDALLION_DELTA_JARS", raising=False)
    monkeypatch.delenv("MEDALLION_ENGINE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MEDALLION_DELTA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDALLION_HOME", str(tmp_path / "home"))
    return tmp_path


def test_local_without_jars_is_offline_with_path_names(no_jars: Path) -> None:
    settings = load_settings("local", CONF)
    assert find_delta_jars(settings) == ()
    info = decide_engine(settings)
    assert (info.engine, info.where) == ("offline", "local-offline")
    assert "medallion setup" in info.reason
    assert resolve(settings, "bronze.flights").location == str(
        no_jars / "home" / "lakehouse" / "bronze" / "flights"
    )


def test_native_requested_without_jars_is_a_clear_error(no_jars: Path) -> None:
    settings = load_settings("local", CONF)
    settings = dataclasses.replace(settings, storage=dataclasses.replace(settings.storage, engine="native"))
    with pytest.raises(SessionError):
        decide_engine(settings)


def _fake_setup_folder(folder: Path, coordinate: str) -> None:
    """What `medallion setup` leaves: the jars and the manifest that lists them (sizes included)."""
    from pipelines.delta_jars import MANIFEST

    folder.mkdir(parents=True)
    names = [
        f"io.delta_{coordinate.split(':')[1]}-{coordinate.split(':')[2]}.jar",
        "io.delta_delta-storage.jar",
    ]
    for name in names:
        (folder / name).write_bytes(b"jar")
    entry = [{"name": n, "size": 3} for n in names]
    (folder / MANIFEST).write_text(json.dumps({"coordinate": coordinate, "via": "spark", "jars": entry}))


def test_jars_fetched_by_setup_select_native_by_default(no_jars: Path) -> None:
    from pipelines import delta_jars

    coordinate = delta_jars.coordinate()
    _fake_setup_folder(delta_jars.default_folder(coordinate), coordinate)
    info = decide_engine(load_settings("local", CONF))
    assert (info.engine, info.where, len(info.jars)) == ("native", "local-jars", 2)
    assert "medallion setup" in info.reason


def test_engine_offline_wins_over_present_jars(no_jars: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import delta_jars

    coordinate = delta_jars.coordinate()
    _fake_setup_folder(delta_jars.default_folder(coordinate), coordinate)
    monkeypatch.setenv("MEDALLION_ENGINE", "offline")
    info = decide_engine(load_settings("local", CONF))
    assert info.engine == "offline" and "offline" in info.reason


def test_jars_of_other_versions_or_a_truncated_jar_are_not_used(no_jars: Path) -> None:
    from pipelines import delta_jars

    coordinate = delta_jars.coordinate()
    _fake_setup_folder(delta_jars.default_folder(coordinate), "io.delta:delta-spark_4.0_2.13:4.0.0")
    assert decide_engine(load_settings("local", CONF)).engine == "offline"
    folder = delta_jars.default_folder(coordinate)
    shutil.rmtree(folder)
    _fake_setup_folder(folder, coordinate)
    next(folder.glob("*.jar")).write_bytes(b"j")  # a download cut short
    assert decide_engine(load_settings("local", CONF)).engine == "offline"


def test_jar_folder_selects_native(no_jars: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import delta_jars

    _group, artifact, version = delta_jars.coordinate().split(":")
    jars = no_jars / "jars"
    jars.mkdir()
    (jars / f"{artifact}-{version}.jar").write_bytes(b"")
    (jars / f"delta-storage-{version}.jar").write_bytes(b"")
    monkeypatch.setenv("MEDALLION_DELTA_JARS", str(jars))
    info = decide_engine(load_settings("local", CONF))
    assert info.engine == "native" and info.where == "local-jars" and len(info.jars) == 2


@pytest.mark.parametrize("name", [None, "delta-spark_2.13-3.3.0.jar"])
def test_jar_folder_without_the_right_delta_is_an_error(
    no_jars: Path, monkeypatch: pytest.MonkeyPatch, name: str | None
) -> None:
    if name:
        (no_jars / name).write_bytes(b"")
    monkeypatch.setenv("MEDALLION_DELTA_JARS", str(no_jars))
    with pytest.raises(SessionError):
        decide_engine(load_settings("local", CONF))


def test_delta_coordinate_follows_delta_s_naming_rule() -> None:
    from pipelines.delta_jars import coordinate

    assert coordinate("4.1.4", "4.4.0") == "io.delta:delta-spark_4.1_2.13:4.4.0"
    assert coordinate("4.0.1", "4.0.0") == "io.delta:delta-spark_4.0_2.13:4.0.0"


def test_setup_without_a_reachable_repository_succeeds_and_says_offline(
    no_jars: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import run_cli

    monkeypatch.setenv("MEDALLION_MAVEN_REPO", "http://127.0.0.1:9/maven2/")  # nothing listens on port 9
    assert run_cli(["setup"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    about_jars = [line for line in lines if "pseudonymisation key" not in line]  # setup also makes the key
    assert len(about_jars) == 1 and "unreachable" in about_jars[0] and "offline" in about_jars[0]
    assert decide_engine(load_settings("local", CONF)).engine == "offline"


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
