"""Bronze ingestion selection and the Auto Loader options built from the declared sources (no Spark).

The Auto Loader stream itself needs a Databricks runtime (``cloudFiles``); the integration test
tests/integration/test_autoloader_stream.py runs the same stream with Spark's own file source.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from pipelines.config import load_settings
from pipelines.errors import ConfigError
from pipelines.lakehouse import autoloader, ingest

pytestmark = pytest.mark.fast
CONF = Path(__file__).resolve().parents[2] / "conf"


def test_config_selects_the_ingestion_per_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDALLION_HOME", raising=False)
    assert ingest.ingest_function(load_settings("local", CONF)) is ingest.ingest
    for env in ("dev", "prod"):
        assert ingest.ingest_function(load_settings(env, CONF)) is autoloader.ingest


def test_an_unknown_ingest_mode_is_a_config_error(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "local.yml").write_text("storage:\n  ingest: kafka\n")
    with pytest.raises(ConfigError):
        load_settings("local", conf)


def test_csv_source_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDALLION_HOME", raising=False)
    settings = load_settings("dev", CONF)
    flights = settings.sources["flights"]
    assert flights.redelivery == "reingest"
    assert autoloader.autoloader_options("flights", flights) == {
        "cloudFiles.format": "csv",
        "cloudFiles.includeExistingFiles": "true",
        "cloudFiles.allowOverwrites": "true",
        "mode": "PERMISSIVE",
        "columnNameOfCorruptRecord": "_corrupt_record",
        "header": "true",
        "enforceSchema": "false",
    }
    assert (
        autoloader.source_glob(settings, flights)
        == "/Volumes/medallion_dev/landing/files/landing/flights/*.csv"
    )
    assert autoloader.checkpoint_location(settings, "bronze.flights") == (
        "/Volumes/medallion_dev/landing/files/state/checkpoints/bronze.flights"
    )


def test_jsonl_source_with_skip_policy() -> None:
    weather = dataclasses.replace(load_settings("dev", CONF).sources["weather"], redelivery="skip")
    options = autoloader.autoloader_options("weather", weather)
    assert options["cloudFiles.format"] == "json" and options["cloudFiles.allowOverwrites"] == "false"
    assert "header" not in options
    assert options["rescuedDataColumn"] == "_rescued_data"  # undeclared keys are rescued, not dropped


def test_fail_policy_has_no_auto_loader_equivalent() -> None:
    weather = dataclasses.replace(load_settings("dev", CONF).sources["weather"], redelivery="fail")
    with pytest.raises(ConfigError):
        autoloader.autoloader_options("weather", weather)


def test_schema_is_every_declared_column_as_text_plus_the_rescue_column() -> None:
    airlines = load_settings("dev", CONF).sources["airlines"]
    assert autoloader.schema_ddl(airlines) == "`carrier` string, `name` string, _corrupt_record string"
