"""Bronze ingestion on real landed sample files: exactly once, incremental, nothing lost on bad input."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import time
import zipfile
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from pipelines.errors import IngestionError
from pipelines.lakehouse.ingest import reconcile_manifest
from pipelines.landing import land_sample, sample_data_dir
from pipelines.runner import run_table

MANIFEST = "bronze.ingest_manifest"  # as declared in conf/tables/system.yml

# The fast tier is the tests marked fast; the heavier ones here run in the full suite only.


def _expected_month_rows(month: int) -> int:
    """Independent count: rows of the packaged flights CSV for ``month``, read with the csv module."""
    with zipfile.ZipFile(sample_data_dir() / "flights.csv.zip") as archive:
        reader = csv.DictReader(io.StringIO(archive.read("flights.csv").decode()))
        return sum(1 for row in reader if int(row["month"]) == month)


def test_ingests_each_file_once_and_picks_up_new_ones(lakehouse) -> None:
    land_sample(lakehouse.settings, months=[1], sources=["flights"])
    first = run_table(lakehouse, "bronze.flights", "run-1")
    jan = _expected_month_rows(1)
    assert first.rows_written == jan
    assert lakehouse.read("bronze.flights").count() == jan
    assert DeltaTable(lakehouse.ref("bronze.flights").location).to_pyarrow_table().num_rows == jan

    again = run_table(lakehouse, "bronze.flights", "run-2")
    assert again.rows_written == 0 and again.status == "skipped"
    assert lakehouse.version("bronze.flights") == first.version

    land_sample(lakehouse.settings, months=[2], sources=["flights"])
    second = run_table(lakehouse, "bronze.flights", "run-3")
    assert second.rows_written == _expected_month_rows(2)
    df = lakehouse.read("bronze.flights")
    assert df.count() == jan + second.rows_written
    per_run = {r["_run_id"]: r["count"] for r in df.groupBy("_run_id").count().collect()}
    assert per_run == {"run-1": jan, "run-3": second.rows_written}
    manifest = lakehouse.read(MANIFEST).where(F.col("table") == "bronze.flights")
    assert sorted(r.file_name for r in manifest.collect()) == [
        "flights/flights_2013_01.csv",
        "flights/flights_2013_02.csv",
    ]


@pytest.mark.fast
def test_bronze_keeps_landed_text_and_metadata(lakehouse) -> None:
    land_sample(lakehouse.settings, months=[1], sources=["flights"])
    run_table(lakehouse, "bronze.flights", "run-meta")
    df = lakehouse.read("bronze.flights")
    assert df.columns[:19] == list(lakehouse.settings.sources["flights"].columns)
    assert {f.dataType.simpleString() for f in df.schema.fields[:19]} == {"string"}
    row = df.where("flight = '1545' AND day = '1' AND dep_time = '517'").first()
    assert (row.carrier, row.tailnum, row.arr_delay, row.time_hour) == (
        "UA",
        "N14228",
        "11",
        "2013-01-01T10:00:00Z",
    )
    assert row._source_file.endswith("flights/flights_2013_01.csv")
    assert row._run_id == "run-meta" and row._corrupt_record is None and row._rescue_reason is None
    # "NA" stays as landed text in bronze; silver types it.
    assert df.where("dep_time = 'NA'").count() > 0


@pytest.mark.fast
def test_malformed_records_are_kept_with_raw_text_and_reason(lakehouse) -> None:
    landing = lakehouse.settings.landing_dir / "flights"
    landing.mkdir(parents=True)
    header = ",".join(lakehouse.settings.sources["flights"].columns)
    good = "2013,1,1,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-01-01T10:00:00Z"
    (landing / "flights_bad.csv").write_text(f"{header}\n{good}\nthis,line,is,short\n{good}\n")
    result = run_table(lakehouse, "bronze.flights", "run-bad")
    assert result.rows_written == 3
    bad = lakehouse.read("bronze.flights").where("_corrupt_record IS NOT NULL").collect()
    assert len(bad) == 1
    assert bad[0]._corrupt_record == "this,line,is,short"
    assert "19 declared columns" in bad[0]._rescue_reason


@pytest.mark.fast
def test_malformed_json_line_is_rescued(lakehouse) -> None:
    landing = lakehouse.settings.landing_dir / "weather"
    landing.mkdir(parents=True)
    (landing / "weather_x.jsonl").write_text(
        '{"origin": "EWR", "temp": 39.02, "wind_gust": null}\n{not json\n'
    )
    run_table(lakehouse, "bronze.weather", "run-json")
    rows = {r._corrupt_record: r for r in lakehouse.read("bronze.weather").collect()}
    assert set(rows) == {None, "{not json"}
    assert rows[None].origin == "EWR" and rows[None].temp == "39.02" and rows[None].wind_gust is None
    assert "JSON" in rows["{not json"]._rescue_reason


@pytest.mark.fast
def test_a_file_whose_header_names_no_declared_column_is_rejected_on_its_own(lakehouse) -> None:
    """Not this source's file (or no header): rejected with why, recorded, nothing of it written; the run goes
    on (``on_bad_file: fail`` stops instead: tests/integration/test_bad_deliveries.py)."""
    landing = lakehouse.settings.landing_dir / "airlines"
    landing.mkdir(parents=True)
    (landing / "airlines_snapshot.csv").write_text("code,label\n9E,Endeavor Air Inc.\n")
    result = run_table(lakehouse, "bronze.airlines", "run-h")
    assert result.rows_written == 0
    assert not lakehouse.exists("bronze.airlines") or lakehouse.read("bronze.airlines").count() == 0
    (rejected,) = lakehouse.read("bronze.rejected_files").collect()
    assert (rejected.table, rejected.file_name) == ("bronze.airlines", "airlines/airlines_snapshot.csv")
    assert "names none of the declared columns" in rejected.reason


@pytest.mark.fast
def test_redelivered_file_is_reingested_by_default(lakehouse) -> None:
    land_sample(lakehouse.settings, sources=["airlines"])
    run_table(lakehouse, "bronze.airlines", "run-a")
    time.sleep(0.01)
    land_sample(lakehouse.settings, sources=["airlines"], force=True)
    result = run_table(lakehouse, "bronze.airlines", "run-b")
    assert result.rows_written == 16
    df = lakehouse.read("bronze.airlines")
    assert df.count() == 32
    assert df.select("_source_modified_at").distinct().count() == 2
    statuses = sorted(r.status for r in lakehouse.read(MANIFEST).collect())
    assert statuses == ["new", "redelivered"]


@pytest.mark.fast
def test_redelivery_policy_skip_and_fail(lakehouse) -> None:
    settings = lakehouse.settings
    land_sample(settings, sources=["airlines"])
    run_table(lakehouse, "bronze.airlines", "run-a")
    land_sample(settings, sources=["airlines"], force=True)
    skip = dataclasses.replace(settings.sources["airlines"], redelivery="skip")
    lakehouse.settings = dataclasses.replace(settings, sources={**settings.sources, "airlines": skip})
    assert run_table(lakehouse, "bronze.airlines", "run-b").rows_written == 0
    fail = dataclasses.replace(settings.sources["airlines"], redelivery="fail")
    lakehouse.settings = dataclasses.replace(settings, sources={**settings.sources, "airlines": fail})
    with pytest.raises(IngestionError):
        run_table(lakehouse, "bronze.airlines", "run-c")
    assert lakehouse.read("bronze.airlines").count() == 16


@pytest.mark.fast
def test_crash_between_bronze_and_manifest_commits_does_not_duplicate(lakehouse) -> None:
    land_sample(lakehouse.settings, sources=["airlines"])
    run_table(lakehouse, "bronze.airlines", "run-a")
    # Simulate a run that died after its bronze commit: drop the manifest rows it wrote.
    lakehouse.delete(MANIFEST, "\"table\" = 'bronze.airlines'")
    assert lakehouse.read(MANIFEST).count() == 0
    assert reconcile_manifest(lakehouse, "bronze.airlines") == 1
    result = run_table(lakehouse, "bronze.airlines", "run-b")
    assert result.rows_written == 0
    assert lakehouse.read("bronze.airlines").count() == 16


@pytest.mark.fast
def test_landing_twice_changes_nothing(lakehouse) -> None:
    first = land_sample(lakehouse.settings, months=[3], sources=["flights", "weather"])
    mtimes = {f.path: os.stat(f.path).st_mtime_ns for f in first}
    second = land_sample(lakehouse.settings, months=[3], sources=["flights", "weather"])
    assert {f.status for f in first} == {"new"} and {f.status for f in second} == {"unchanged"}
    assert {f.path: os.stat(f.path).st_mtime_ns for f in second} == mtimes
    weather = (
        Path(lakehouse.settings.landing_dir / "weather" / "weather_2013_03.jsonl").read_text().splitlines()
    )
    assert len(weather) == first[1].rows


@pytest.mark.fast
def test_a_run_reads_the_manifest_once_and_sees_another_writers_change(lakehouse, monkeypatch) -> None:
    """The manifest is read when its version is not the one the run knows; the run's own appends keep it
    known. A change by another writer (a new version) is read, not missed."""
    from pipelines.lakehouse import Lakehouse

    land_sample(lakehouse.settings, sources=["airlines", "airports"])
    reads: list[str] = []
    original = Lakehouse.read_rows

    def counting(self, name, columns, version=None):
        if name == MANIFEST:
            reads.append(name)
        return original(self, name, columns, version)

    monkeypatch.setattr(Lakehouse, "read_rows", counting)
    tables = ["bronze.airlines", "bronze.airports"]
    assert [run_table(lakehouse, t, "r1").rows_written for t in tables] == [16, 1458]
    # airlines: no manifest yet; airports: read once (airlines created it); the rerun: nothing read.
    assert [run_table(lakehouse, t, "r2").status for t in tables] == ["skipped", "skipped"]
    assert len(reads) == 1

    # airports is delivered again, changed, and another writer records that delivery as taken: a new manifest
    # version, which this run reads, so it does not take the file a second time.
    from datetime import datetime

    from pipelines.lakehouse.ingest import _write_manifest, list_landed

    source = lakehouse.settings.sources["airports"]
    path = list_landed(lakehouse.settings.landing_dir, source)[0].path
    with open(path, "a", encoding="utf-8") as f:
        f.write("ZZZ,Nowhere,0,0,0,0,A,America/New_York\n")
    changed = list_landed(lakehouse.settings.landing_dir, source)[0]
    other = Lakehouse(lakehouse.settings, lakehouse.store)
    taken = ("bronze.airports", changed.name, changed.size, changed.modified_ms, 1, "other", "redelivered")
    _write_manifest(other, [(*taken, datetime.now())])
    again = run_table(lakehouse, "bronze.airports", "r3")
    assert (again.status, again.rows_written, len(reads)) == ("skipped", 0, 2)
    assert lakehouse.read("bronze.airports").count() == 1458
