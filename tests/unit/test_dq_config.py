"""YAML mistakes in data-quality checks fail when the configuration loads, naming file, table and check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.config import load_settings
from pipelines.errors import ConfigError

pytestmark = pytest.mark.fast

CONF = Path(__file__).resolve().parents[2] / "conf"


def conf_with_check(tmp_path: Path, check: dict[str, object], table: str = "silver.weather") -> Path:
    target = tmp_path / "conf"
    shutil.copytree(CONF, target)
    path = target / "tables" / "silver.yml"
    data = yaml.safe_load(path.read_text())
    data["tables"][table]["expectations"].append(check)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


@pytest.mark.parametrize(
    ("check", "says"),
    [
        (
            {"name": "c1", "type": "not_nul", "column": "temp"},
            "unknown check type 'not_nul' (did you mean 'not_null'?)",
        ),
        ({"name": "c1", "type": "not_null", "column": "temperature"}, "column 'temperature' is not a column"),
        (
            {"name": "c1", "type": "not_null", "column": "temp", "action": "explode"},
            "action 'explode' is not allowed",
        ),
        (
            {"name": "c1", "type": "unique", "columns": ["origin"], "action": "quarantine"},
            "allowed: warn, fail",
        ),
        ({"name": "c1", "type": "between", "column": "temp"}, "needs min, max or both"),
        ({"name": "c1", "type": "between", "column": "temp", "min": "cold"}, "min must be a number"),
        ({"name": "c1", "type": "regex", "column": "origin", "pattern": "(["}, "not a valid regex"),
        ({"name": "c1", "type": "not_null", "column": "temp", "pattern": "x"}, "takes no pattern"),
        ({"name": "c1", "type": "in_set", "column": "origin"}, "needs values"),
        (
            {
                "name": "c1",
                "type": "foreign_key",
                "column": "origin",
                "ref_table": "silver.nowhere",
                "ref_column": "x",
            },
            "ref_table 'silver.nowhere' is not a declared table",
        ),  # fmt: skip
        (
            {"name": "temp_plausible", "type": "not_null", "column": "temp"},
            "declares the check 'temp_plausible' twice",
        ),
        ({"name": "c1", "type": "not_null", "column": "temp", "colour": "red"}, "unknown key"),
    ],
)
def test_check_mistakes_are_reported_at_load_time(
    tmp_path: Path, check: dict[str, object], says: str
) -> None:
    conf = conf_with_check(tmp_path, check)
    with pytest.raises(ConfigError) as err:
        load_settings("local", conf)
    message = str(err.value)
    assert says in message
    assert "silver.yml" in message
    assert "silver.weather" in message
    if "unknown key" not in says:
        assert f"check {check['name']!r}" in message


def test_declared_checks_load() -> None:
    settings = load_settings("local", CONF)
    flights = settings.table("silver.flights")
    by_name = {c.name: c for c in flights.expectations}
    assert by_name["dest_in_airports"].action == "warn"
    assert by_name["carrier_in_airlines"].action == "quarantine"
    assert flights.declared_in.endswith("silver.yml")
