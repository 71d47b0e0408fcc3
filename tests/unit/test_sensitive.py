"""Sensitive columns (pipelines/sensitive.py): the treatments on real Spark, the key's sources and errors, the
declarations' validation, and the fingerprint that makes a new key rebuild what holds pseudonyms."""

from __future__ import annotations

import dataclasses
import os
import stat
import types
from pathlib import Path
from typing import Any

import pytest

from pipelines import sensitive
from pipelines.config import SensitiveConf, Settings, load_settings
from pipelines.errors import ConfigError, PseudonymKeyError
from pipelines.runner import table_fingerprint

KEY = b"k" * 40
OTHER = b"o" * 40
ROOT = Path(__file__).resolve().parents[2]


def test_a_pseudonym_is_keyed_stable_per_domain_and_survives_silvers_cleaning() -> None:
    p = sensitive.pseudonym(KEY, "tailnum", "N14228")
    assert p == sensitive.pseudonym(KEY, "tailnum", "N14228")  # stable: joins work across runs and tables
    assert p.startswith("PS") and len(p) == 26 and "N14228" not in p
    assert p != sensitive.pseudonym(OTHER, "tailnum", "N14228")  # another key, another pseudonym
    assert p != sensitive.pseudonym(KEY, "owner", "N14228")  # another domain never links
    assert p == sensitive.pseudonym(KEY, "tailnum", " N14228 ")  # silver trims landed text
    assert p.upper() == p and p.strip() == p  # silver.planes upper-cases: the pseudonym is unchanged
    for marker in ("", "NA", "NaN", "null", "NULL"):  # "no value" identifies nobody and stays null in silver
        assert sensitive.pseudonym(KEY, "tailnum", marker) == marker


def test_spark_pseudonymise_and_mask_match_the_reference(spark: Any) -> None:
    values = ["N14228", " N14228", "AB", "NA", "", None, "N1é"]
    df = spark.createDataFrame([(v,) for v in values], "t string")
    rows = df.select(
        sensitive.pseudonymise(df.t, KEY, "tailnum").alias("p"), sensitive.mask(df.t, 1, 2).alias("m")
    ).collect()
    assert [r.p for r in rows] == [
        None if v is None else sensitive.pseudonym(KEY, "tailnum", v) for v in values
    ]
    assert [r.m for r in rows] == ["N***28", "N***28", "**", "NA", "", None, "***"]


def _settings_with(settings: Settings, **sources_sensitive: dict[str, SensitiveConf]) -> Settings:
    sources = dict(settings.sources)
    for name, cols in sources_sensitive.items():
        sources[name] = dataclasses.replace(sources[name], sensitive=types.MappingProxyType(cols))
    return dataclasses.replace(settings, sources=types.MappingProxyType(sources))


def test_protect_treats_bronze_reads_only_and_each_treatment_does_what_it_says(
    spark: Any, settings: Settings
) -> None:
    declared = _settings_with(
        settings,
        planes={
            "tailnum": SensitiveConf("pseudonymise"),
            "model": SensitiveConf("mask", keep_first=2),
            "engine": SensitiveConf("drop"),
            "seats": SensitiveConf("keep", reason="not personal"),
        },
    )
    df = spark.createDataFrame(
        [("N1", "A320-232", "Turbo-fan", "180")], "tailnum string, model string, engine string, seats string"
    )
    out = sensitive.protect(declared, "bronze.planes", df)
    assert out.columns == ["tailnum", "model", "seats"]
    row = out.first()
    key = os.environ["MEDALLION_PSEUDONYM_KEY"].encode()
    assert (row.tailnum, row.model, row.seats) == (
        sensitive.pseudonym(key, "tailnum", "N1"),
        "A3******",
        "180",
    )
    # A line bronze could not parse may hold any value: it leaves bronze as its length only.
    broken = spark.createDataFrame([("N1,A320,bad", None)], "_corrupt_record string, tailnum string")
    assert sensitive.protect(declared, "bronze.planes", broken).first()._corrupt_record == (
        "[withheld: a line of a source with sensitive columns, 11 characters; bronze keeps it]"
    )
    # Beyond bronze the values were treated before they were written: a read passes them through.
    assert sensitive.protect(declared, "silver.planes", df).first() == df.first()
    assert sensitive.needs_protection(declared, "bronze.planes")
    assert not sensitive.needs_protection(declared, "bronze.airlines")


@pytest.mark.parametrize(
    ("conf", "fragment"),
    [
        ({"treatment": "hash"}, "allowed: pseudonymise, mask, drop, keep"),
        ({"treatment": "keep"}, "needs a reason"),
        ({"treatment": "pseudonymise", "keep_first": 2}, "belong to treatment mask"),
        ({"treatment": "mask", "domain": "x"}, "belongs to treatment pseudonymise"),
    ],
)
def test_bad_declarations_are_refused_at_load(tmp_path: Path, conf: dict[str, Any], fragment: str) -> None:
    import shutil

    import yaml

    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    path = tmp_path / "conf" / "sources.yml"
    data = yaml.safe_load(path.read_text())
    data["sources"]["planes"]["sensitive"] = {"tailnum": conf}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=fragment):
        load_settings("local", tmp_path / "conf")


def test_a_declared_column_the_source_does_not_deliver_is_refused(tmp_path: Path) -> None:
    import shutil

    import yaml

    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    path = tmp_path / "conf" / "sources.yml"
    data = yaml.safe_load(path.read_text())
    data["sources"]["planes"]["sensitive"] = {"tail_number": {"treatment": "drop"}}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="tail_number"):
        load_settings("local", tmp_path / "conf")


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in (
        "MEDALLION_PSEUDONYM_KEY",
        "MEDALLION_PSEUDONYM_KEY_FILE",
        "MEDALLION_SECRETS",
        "DATABRICKS_RUNTIME_VERSION",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def test_the_key_comes_from_the_environment_a_file_or_setups_key_file_and_its_absence_is_clear(
    settings: Settings, no_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        PseudonymKeyError, match=r"bronze\.flights\.tailnum.*MEDALLION_PSEUDONYM_KEY.*medallion setup"
    ):
        sensitive.load_key(settings)
    path, created = sensitive.create_key_file()
    assert created and path == no_key / "config" / "medallion" / "pseudonym.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    from_setup = sensitive.load_key(settings)
    assert sensitive.create_key_file() == (path, False) and sensitive.load_key(settings) == from_setup  # kept
    other = no_key / "other.key"
    other.write_text("f" * 40 + "\n")
    monkeypatch.setenv("MEDALLION_PSEUDONYM_KEY_FILE", str(other))
    assert sensitive.load_key(settings) == b"f" * 40
    monkeypatch.setenv("MEDALLION_PSEUDONYM_KEY", "e" * 40)  # the variable wins over both files
    assert sensitive.load_key(settings) == b"e" * 40
    monkeypatch.setenv("MEDALLION_PSEUDONYM_KEY", "short")
    with pytest.raises(PseudonymKeyError, match="at least 32"):
        sensitive.load_key(settings)


def test_a_secret_scope_key_is_read_from_the_scope_even_when_a_laptop_variable_is_set(
    settings: Settings, no_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scoped = dataclasses.replace(
        settings, pseudonym_key=dataclasses.replace(settings.pseudonym_key, secret_scope="medallion-dev")
    )
    with pytest.raises(PseudonymKeyError, match="only a Databricks cluster reads"):
        sensitive.load_key(scoped)
    scopes = no_key / "scopes"
    monkeypatch.setenv("MEDALLION_SECRETS", str(scopes))
    monkeypatch.setenv("MEDALLION_PSEUDONYM_KEY", "e" * 40)
    with pytest.raises(PseudonymKeyError, match="does not exist"):
        sensitive.load_key(scoped)
    (scopes / "medallion-dev").mkdir(parents=True)
    (scopes / "medallion-dev" / "pseudonym-key").write_text("s" * 64)
    assert sensitive.load_key(scoped) == b"s" * 64


def test_the_environment_names_the_secret_scope(no_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDALLION_SECRET_SCOPE", "team-scope")
    assert load_settings("local").pseudonym_key.secret_scope == "team-scope"


def test_a_new_key_changes_the_fingerprint_of_every_table_holding_pseudonyms_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {n: table_fingerprint(settings, t) for n, t in settings.tables.items() if t.built_by_runner}
    monkeypatch.setenv("MEDALLION_PSEUDONYM_KEY", "n" * 40)
    after = {n: table_fingerprint(settings, t) for n, t in settings.tables.items() if t.built_by_runner}
    changed = {n for n in before if before[n] != after[n]}
    assert {"silver.flights", "silver.planes", "gold.flight_features"} <= changed
    assert not any(n.startswith("bronze.") for n in changed)  # bronze keeps what landed
    assert "silver.weather" not in changed and "silver.airlines" not in changed  # no tail number upstream
    assert all(
        after[n].changes(before[n]) == ["sensitive columns' treatment or pseudonymisation key changed"]
        for n in changed
    )
