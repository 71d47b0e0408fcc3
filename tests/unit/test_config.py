"""Config loading: merged files, frozen dataclasses, precise errors. No Spark."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from pipelines.config import load_settings
from pipelines.errors import ConfigError

pytestmark = pytest.mark.fast
CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.fixture
def conf_copy(tmp_path: Path) -> Path:
    target = tmp_path / "conf"
    shutil.copytree(CONF, target)
    return target


def test_every_environment_loads_and_differs_only_by_config() -> None:
    local, dev, prod = (load_settings(env, CONF) for env in ("local", "dev", "prod"))
    assert local.storage.naming == "path" and local.storage.engine == "auto"
    assert dev.storage.naming == prod.storage.naming == "catalog"
    assert (dev.storage.catalog, prod.storage.catalog) == ("medallion_dev", "medallion_prod")
    assert {
        "bronze.flights",
        "bronze.weather",
        "bronze.airlines",
        "bronze.airports",
        "bronze.planes",
        "silver.flights",
        "silver.weather",
        "silver.airlines",
        "silver.airports",
        "silver.planes",
    } <= set(local.tables)
    assert set(local.tables) == set(dev.tables) == set(prod.tables)
    assert local.sources["flights"].columns[:3] == ("year", "month", "day")
    assert len(local.sources["flights"].columns) == 19


def test_settings_are_frozen() -> None:
    settings = load_settings("local", CONF)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.storage.engine = "native"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.sources["x"] = settings.sources["flights"]  # type: ignore[index]


def test_unknown_key_names_file_key_and_allowed_keys(conf_copy: Path) -> None:
    (conf_copy / "local.yml").write_text("storage:\n  engin: offline\n")
    with pytest.raises(ConfigError) as err:
        load_settings("local", conf_copy)
    message = str(err.value)
    assert "local.yml" in message and "storage.engin" in message and "engine" in message


def test_unknown_key_in_a_table_file(conf_copy: Path) -> None:
    (conf_copy / "tables" / "extra.yml").write_text(
        "tables:\n  bronze.x:\n    layer: bronze\n    source: flights\n    description: d\n    partitoin_by: [a]\n"
    )
    with pytest.raises(ConfigError, match="extra.yml"):
        load_settings("local", conf_copy)


@pytest.mark.parametrize(
    "yaml_text",
    [
        "storage:\n  engine: turbo\n",
        "storage:\n  naming: catalog\n",  # catalog naming without a catalog
        "spark:\n  shuffle_partitions: many\n",
        "sources:\n  flights:\n    format: xml\n",
        "sources:\n  flights:\n    redelivery: sometimes\n",
    ],
)
def test_bad_values_are_config_errors(conf_copy: Path, yaml_text: str) -> None:
    (conf_copy / "local.yml").write_text(yaml_text)
    with pytest.raises(ConfigError):
        load_settings("local", conf_copy)


def test_unknown_environment_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="local"):
        load_settings("staging", CONF)


def test_table_reference_to_undeclared_input(conf_copy: Path) -> None:
    (conf_copy / "tables" / "gold.yml").unlink(missing_ok=True)  # gold reads the silver tables replaced here
    (conf_copy / "tables" / "silver.yml").write_text(
        "tables:\n  silver.x:\n    layer: silver\n    description: d\n    transform: m:f\n    inputs: [bronze.nope]\n"
    )
    with pytest.raises(ConfigError, match="bronze.nope"):
        load_settings("local", conf_copy)


def test_environment_variables_override_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDALLION_HOME", str(tmp_path))
    monkeypatch.setenv("MEDALLION_LANDING", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MEDALLION_ENGINE", "offline")
    settings = load_settings("local", CONF)
    assert settings.lakehouse_dir == tmp_path / "lakehouse"
    assert settings.landing_dir == tmp_path / "elsewhere"
    assert settings.storage.engine == "offline"


def test_unknown_table_lookup_suggests_close_names() -> None:
    settings = load_settings("local", CONF)
    with pytest.raises(ConfigError, match="bronze.flights"):
        settings.table("bronze.flight")


# ---- names that become folders and catalog names are identifiers ------------------------------------------

BAD_NAMES = ["../x", "/an/absolute/path", "a.b", "a`b", "a b", "..", "1abc", "x/y"]


@pytest.mark.parametrize("value", BAD_NAMES)
def test_schema_and_catalog_names_from_files_are_identifiers(conf_copy: Path, value: str) -> None:
    for yaml_text in (
        f"storage:\n  schemas: {{gold: '{value}'}}\n",
        f"storage:\n  naming: catalog\n  catalog: '{value}'\n",
    ):
        (conf_copy / "local.yml").write_text(yaml_text)
        with pytest.raises(ConfigError) as err:
            load_settings("local", conf_copy)
        assert repr(value) in str(err.value)


@pytest.mark.parametrize("var", ["MEDALLION_SCHEMA_GOLD", "MEDALLION_SCHEMA_BRONZE", "MEDALLION_CATALOG"])
@pytest.mark.parametrize("value", BAD_NAMES)
def test_schema_and_catalog_names_from_the_environment_are_identifiers(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings("local", CONF)
    assert var in str(err.value) and repr(value) in str(err.value)


def test_good_names_from_the_environment_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDALLION_SCHEMA_GOLD", "gold_dev_2")
    monkeypatch.setenv("MEDALLION_CATALOG", "_Main")
    settings = load_settings("prod", CONF)
    assert settings.storage.schemas["gold"] == "gold_dev_2" and settings.storage.catalog == "_Main"


@pytest.mark.parametrize("table", ["gold.`x`", "gold.a-b", "gold.x y"])
def test_declared_table_names_are_identifiers(conf_copy: Path, table: str) -> None:
    (conf_copy / "tables" / "extra.yml").write_text(
        f"tables:\n  '{table}':\n    layer: gold\n    description: d\n    transform: m:f\n"
    )
    with pytest.raises(ConfigError):
        load_settings("local", conf_copy)


@pytest.mark.parametrize(
    "name",
    ["gold./an/absolute/path", "gold.../x", "gold..x", "gold.a.b", "gold.`x`", "gold.x y", "gold.", "x"],
)
def test_resolve_refuses_names_that_are_no_identifiers(name: str) -> None:
    from pipelines.errors import UsageError
    from pipelines.lakehouse import resolve

    settings = load_settings("local", CONF)
    with pytest.raises(UsageError):
        resolve(settings, name)
    assert resolve(settings, "gold.route_daily_stats").location.startswith(str(settings.lakehouse_dir))


@pytest.mark.parametrize("naming", ["path", "catalog"])
def test_resolve_refuses_a_schema_or_catalog_that_is_no_identifier(naming: str) -> None:
    """Settings made in code (not loaded) are checked too, when a name is resolved."""
    from pipelines.lakehouse import resolve

    settings = load_settings("local", CONF)
    storage = settings.storage
    bad = {"gold": "../../etc"} if naming == "path" else dict(storage.schemas)
    storage = dataclasses.replace(
        storage, naming=naming, catalog="cat`; DROP", schemas={**storage.schemas, **bad}
    )
    with pytest.raises(ConfigError):
        resolve(dataclasses.replace(settings, storage=storage), "gold.route_daily_stats")
