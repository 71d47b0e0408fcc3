"""The Auto Loader ingestion path, run with Spark's own file source instead of ``cloudFiles`` (which exists
only on Databricks): same options, schema, bronze transformation and checkpointed streaming write."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import SourceConf
from pipelines.errors import IngestionError
from pipelines.lakehouse.autoloader import build_stream, checkpoint_location, rows_ingested

SOURCE = SourceConf(format="csv", pattern="carriers/*.csv", columns=("carrier", "name"))


def _settings_in(settings: Any, home: Path) -> Any:
    return dataclasses.replace(
        settings,
        paths=dataclasses.replace(
            settings.paths, home=str(home), landing=str(home / "landing"), state=str(home / "state")
        ),
    )


def _run(spark: Any, settings: Any, out: Path, run_id: str) -> int:
    stream = build_stream(spark, settings, "carriers", SOURCE, run_id, stream_format="csv")
    query = (
        stream.writeStream.format("parquet")
        .option("path", str(out))
        .option("checkpointLocation", checkpoint_location(settings, "bronze.carriers"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(120)
    return rows_ingested(query)


@pytest.mark.fast
def test_stream_takes_each_file_once_and_keeps_bad_records(spark: Any, settings: Any, tmp_path: Path) -> None:
    local = _settings_in(settings, tmp_path)
    landing = tmp_path / "landing" / "carriers"
    landing.mkdir(parents=True)
    (landing / "a.csv").write_text('carrier,name\nAA,American\nUA,"United\nDL,Delta,extra\n')
    out = tmp_path / "bronze"

    assert _run(spark, local, out, "r1") == 3  # every record, the malformed one included
    rows = spark.read.parquet(str(out)).collect()
    good = [r for r in rows if r["_corrupt_record"] is None]
    assert sorted((r["carrier"], r["name"]) for r in good) == [("AA", "American"), ("UA", "United")]
    assert all(r["_source_file"].endswith("carriers/a.csv") and r["_run_id"] == "r1" for r in rows)
    bad = [r for r in rows if r["_corrupt_record"] is not None]
    assert [r["_corrupt_record"] for r in bad] == ["DL,Delta,extra"] and bad[0]["_rescue_reason"]

    assert _run(spark, local, out, "r2") == 0  # the checkpoint remembers a.csv
    (landing / "b.csv").write_text("carrier,name\nB6,JetBlue\n")
    assert _run(spark, local, out, "r3") == 1
    runs = sorted(r["_run_id"] for r in spark.read.parquet(str(out)).collect())
    assert runs == ["r1", "r1", "r1", "r3"]


@pytest.mark.fast
def test_a_csv_header_that_does_not_match_fails_the_stream(spark: Any, settings: Any, tmp_path: Path) -> None:
    local = _settings_in(settings, tmp_path)
    landing = tmp_path / "landing" / "carriers"
    landing.mkdir(parents=True)
    (landing / "a.csv").write_text("code,label\nAA,American\n")
    from pyspark.errors import StreamingQueryException

    with pytest.raises(StreamingQueryException):
        _run(spark, local, tmp_path / "bronze", "r1")


@pytest.mark.fast
def test_autoloader_ingest_refuses_the_offline_engine(lakehouse: Any) -> None:
    from pipelines.lakehouse.autoloader import ingest

    conf = lakehouse.settings.tables["bronze.airlines"]
    source = lakehouse.settings.sources["airlines"]
    with pytest.raises(IngestionError):
        ingest(lakehouse, "bronze.airlines", conf, "airlines", source, "r1")


@pytest.mark.native
def test_autoloader_path_into_a_real_delta_table_is_exactly_once(
    spark: Any, settings: Any, tmp_path: Path, native_store_factory: Any
) -> None:
    """The ingestion the bundle runs (storage.ingest: autoloader), with the open-source file stream: a real
    Delta sink and its checkpoint; a rerun takes nothing, a new file is taken once, bad records are kept."""
    from pipelines.lakehouse import Lakehouse
    from pipelines.lakehouse.autoloader import ingest

    store = native_store_factory()
    local = _settings_in(settings, tmp_path)
    local = dataclasses.replace(
        local, paths=dataclasses.replace(local.paths, lakehouse=str(tmp_path / "lake"))
    )
    lh = Lakehouse(local, store)
    conf = local.tables["bronze.airlines"]
    source = local.sources["airlines"]
    landing = local.landing_dir / source.pattern.split("/")[0]
    landing.mkdir(parents=True)
    header = ",".join(source.columns)
    (landing / "airlines_1.csv").write_text(
        f'{header}\nAA,American Airlines Inc.\nUA,"United\nDL,Delta,extra\n'
    )

    first = ingest(lh, "bronze.airlines", conf, "airlines", source, "r1")
    assert (first.files_new, first.rows_written) == (1, 3)
    # created first (v0, with its description), then one data commit: the manifest path's versions
    assert first.version == 1
    history = lh.history("bronze.airlines")
    assert [h["operation"] for h in history] == ["STREAMING UPDATE", "CREATE TABLE"]  # newest first
    assert history[0]["custom"]["medallion.run_id"] == "r1"  # the stream's commit carries the run id
    again = ingest(lh, "bronze.airlines", conf, "airlines", source, "r2")
    assert (again.files_new, again.rows_written) == (0, 0)
    assert lh.version("bronze.airlines") == first.version
    (landing / "airlines_2.csv").write_text(f"{header}\nB6,JetBlue Airways\n")
    third = ingest(lh, "bronze.airlines", conf, "airlines", source, "r3")
    assert (third.files_new, third.rows_written) == (1, 1)
    rows = lh.read("bronze.airlines").collect()
    assert sorted(r["_run_id"] for r in rows) == ["r1", "r1", "r1", "r3"]
    assert [r["_corrupt_record"] for r in rows if r["_corrupt_record"]] == ["DL,Delta,extra"]
    assert lh.properties("bronze.airlines")["comment"] == conf.description
    # The table is a Delta table any reader opens: deltalake agrees row for row.
    from deltalake import DeltaTable

    assert DeltaTable(lh.ref("bronze.airlines").location).to_pyarrow_table().num_rows == 4


@pytest.mark.native
def test_a_first_autoloader_stream_that_fails_leaves_no_table(
    settings: Any, tmp_path: Path, native_store_factory: Any
) -> None:
    from pipelines.lakehouse import Lakehouse
    from pipelines.lakehouse.autoloader import ingest

    local = _settings_in(settings, tmp_path)
    local = dataclasses.replace(
        local, paths=dataclasses.replace(local.paths, lakehouse=str(tmp_path / "lake"))
    )
    lh = Lakehouse(local, native_store_factory())
    conf = local.tables["bronze.airlines"]
    source = local.sources["airlines"]
    landing = local.landing_dir / source.pattern.split("/")[0]
    landing.mkdir(parents=True)
    (landing / "airlines_1.csv").write_text("code,label\nAA,American Airlines Inc.\n")  # not the declared header

    with pytest.raises(IngestionError, match="nothing of this batch was committed"):
        ingest(lh, "bronze.airlines", conf, "airlines", source, "r1")
    assert not lh.exists("bronze.airlines")
