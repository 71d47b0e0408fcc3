"""Bad deliveries never block a source and never vanish.

A catalogue of odd and broken landed files (CSV and JSON lines), all landed at once beside good ones: every
file is either ingested (rows as landed, odd parts flagged) or rejected on its own with a reason in
``bronze.rejected_files``; files no source takes are reported; nothing is lost and nothing blocks another.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import IngestionError
from pipelines.lakehouse.ingest import ingest, report_unmatched

# The fast tier is the tests marked fast; the heavier ones here run in the full suite only.

HEADER = "carrier,name\n"


def _w(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


# name -> (bytes, what must happen): ("rows", {carrier: name}) / ("rejected", None)
CSV_CASES: dict[str, tuple[bytes | str, tuple[str, Any]]] = {
    "good.csv": (HEADER + "AA,American\nUA,United\n", ("rows", {"AA": "American", "UA": "United"})),
    "bom.csv": ("\ufeff" + HEADER + "B6,JetBlue\n", ("rows", {"B6": "JetBlue"})),
    "reordered.csv": ("name,carrier\nDelta,DL\n", ("rows", {"DL": "Delta"})),
    "extra_column.csv": ("carrier,name,country\nAC,Air Canada,CA\n", ("rows", {"AC": "Air Canada"})),
    "missing_column.csv": ("carrier\nZZ\n", ("rows", {"ZZ": None})),
    "semicolon.csv": ("carrier;name\nWN;Southwest\n", ("rows", {"WN": "Southwest"})),
    "tabs.csv": ("carrier\tname\nF9\tFrontier\n", ("rows", {"F9": "Frontier"})),
    "gzipped.csv.gz": (gzip.compress((HEADER + "AS,Alaska\n").encode()), ("rows", {"AS": "Alaska"})),
    "bzipped.csv.bz2": (bz2.compress((HEADER + "HA,Hawaiian\n").encode()), ("rows", {"HA": "Hawaiian"})),
    "UPPER.CSV": (HEADER + "NK,Spirit\n", ("rows", {"NK": "Spirit"})),
    "quoted_newline.csv": (HEADER + 'MQ,"Envoy\nAir"\n9E,Endeavor\n', ("rows", {"MQ": "Envoy\nAir", "9E": "Endeavor"})),
    "crlf.csv": ("carrier,name\r\nYV,Mesa\r\n", ("rows", {"YV": "Mesa"})),
    "trailing_blank_lines.csv": (HEADER + "OO,SkyWest\n\n\n", ("rows", {"OO": "SkyWest"})),
    "spaced_header.csv": (" carrier , name \nEV,ExpressJet\n", ("rows", {"EV": "ExpressJet"})),
    "empty.csv": ("", ("rows", {})),
    "header_only.csv": (HEADER, ("rows", {})),
    "invalid_utf8.csv": (HEADER.encode() + b"XE,Bad\xff\xfeName\nX2,Fine\n", ("rows", {"XE": "Bad\ufffd\ufffdName", "X2": "Fine"})),
    "utf16.csv": ((HEADER + "U1,Wide\n").encode("utf-16"), ("rejected", None)),
    "wrong_file.csv": ("code,label\nAA,American\n", ("rejected", None)),
    "duplicate_header.csv": ("carrier,carrier,name\nAA,AA,x\n", ("rejected", None)),
    "truncated.csv.gz": (gzip.compress((HEADER + "TT,Truncated\n" * 50).encode())[:40], ("rejected", None)),
}  # fmt: skip
# Files with broken lines: (content, carriers of the lines that parse, lines kept whole in _corrupt_record).
# A quote never closed is read line by line (like Spark's reader without multiLine): its line parses.
BROKEN_LINES = {
    "unbalanced_quote.csv": (HEADER + 'UQ,"Unclosed\nOK,Fine\n', ["OK", "UQ"], 0),
    "too_many_fields.csv": (HEADER + "TM,Too,Many\nT2,Two\n", ["T2"], 1),
}
UNMATCHED = [
    "airlines/old/airlines_2012.csv",
    "airlines/_copying.csv",
    "airlines/.DS_Store",
    "cargo/cargo.csv",
]


@pytest.fixture
def landed(lakehouse: Any) -> Any:
    folder = lakehouse.settings.landing_dir / "airlines"
    for name, (data, _) in {**CSV_CASES, **{k: (v[0], None) for k, v in BROKEN_LINES.items()}}.items():
        _w(folder / name, data)
    for name in UNMATCHED:
        _w(lakehouse.settings.landing_dir / name, HEADER + "QQ,Unmatched\n")
    return lakehouse


def _ingest(lh: Any, table: str, source_name: str, run_id: str = "r1", **source_changes: Any) -> Any:
    conf = lh.settings.tables[table]
    source = dataclasses.replace(lh.settings.sources[source_name], **source_changes)
    return ingest(lh, table, conf, source_name, source, run_id)


@pytest.mark.fast
def test_every_bad_csv_file_is_ingested_flagged_or_rejected_alone(landed: Any) -> None:
    lh = landed
    result = _ingest(lh, "bronze.airlines", "airlines")
    rows = lh.read("bronze.airlines").collect()
    by_file: dict[str, list[Any]] = {}
    for r in rows:
        by_file.setdefault(r["_source_file"].rsplit("/", 1)[-1], []).append(r)

    rejected = {
        r["file_name"].rsplit("/", 1)[-1]: r["reason"] for r in lh.read("bronze.rejected_files").collect()
    }
    for name, (_data, (outcome, want)) in CSV_CASES.items():
        if outcome == "rejected":
            assert name in rejected and rejected[name], name
            assert name not in by_file, name
            continue
        assert name not in rejected, (name, rejected.get(name))
        got = {r["carrier"]: r["name"] for r in by_file.get(name, [])}
        assert got == want, name
    # Flags: a new column is rescued, a missing one named, bytes that are not UTF-8 flagged.
    assert json.loads(by_file["extra_column.csv"][0]["_rescued_data"]) == {"country": "CA"}
    assert json.loads(by_file["missing_column.csv"][0]["_rescued_data"]) == {"_missing_columns": ["name"]}
    flagged = {r["carrier"]: r["_rescue_reason"] for r in by_file["invalid_utf8.csv"]}
    assert flagged["XE"] and "UTF-8" in flagged["XE"] and flagged["X2"] is None
    assert (
        by_file["good.csv"][0]["_rescued_data"] is None and by_file["good.csv"][0]["_rescue_reason"] is None
    )
    # Broken lines are kept whole and flagged; the file's good lines are ingested.
    for name, (_data, good, broken) in BROKEN_LINES.items():
        kept = by_file[name]
        assert sorted(r["carrier"] for r in kept if r["_corrupt_record"] is None) == good, name
        assert sum(1 for r in kept if r["_corrupt_record"] and r["_rescue_reason"]) == broken, name
    # The step says what it did: rejections with reasons, notes on the odd files it took.
    assert sorted(why.split(":", 1)[0].rsplit("/", 1)[-1] for why in result.rejected) == sorted(
        n for n, (_d, (o, _w)) in CSV_CASES.items() if o == "rejected"
    )
    notes = " ".join(result.notes)
    for word in ("byte-order mark", "delimiter ';'", "another order", "country", "line breaks"):
        assert word in notes, word
    # Rejected files stay in landing; the manifest never lists them, so nothing was lost.
    for name in rejected:
        assert (lh.settings.landing_dir / "airlines" / name).exists()


@pytest.mark.fast
def test_a_rerun_ingests_nothing_and_records_no_rejection_twice(landed: Any) -> None:
    lh = landed
    _ingest(lh, "bronze.airlines", "airlines")
    version = lh.version("bronze.airlines")
    rejected = lh.read("bronze.rejected_files").count()
    again = _ingest(lh, "bronze.airlines", "airlines", run_id="r2")
    assert again.rows_written == 0 and lh.version("bronze.airlines") == version
    assert len(again.rejected) == rejected  # still reported: the files are still there
    assert lh.read("bronze.rejected_files").count() == rejected  # but recorded once
    # A fixed delivery of a rejected file is taken on the next run.
    _w(lh.settings.landing_dir / "airlines" / "wrong_file.csv", HEADER + "FX,Fixed\n")
    fixed = _ingest(lh, "bronze.airlines", "airlines", run_id="r3")
    assert fixed.files_new == 1 and fixed.rows_written == 1


@pytest.mark.fast
def test_files_no_source_takes_are_reported_and_recorded(landed: Any) -> None:
    found = {info.name: why for info, why in report_unmatched(landed, "r1")}
    assert sorted(found) == sorted(UNMATCHED)
    assert all(found.values())
    recorded = landed.read("bronze.rejected_files").where("table IS NULL").count()
    assert recorded == len(UNMATCHED)
    report_unmatched(landed, "r2")
    assert landed.read("bronze.rejected_files").where("table IS NULL").count() == recorded


@pytest.mark.fast
def test_schema_evolution_policies(lakehouse: Any) -> None:
    folder = lakehouse.settings.landing_dir / "airlines"
    _w(folder / "a.csv", HEADER + "AA,American\n")
    _w(folder / "b.csv", "carrier,name,country\nAC,Air Canada,CA\n")
    # fail: the file with a new column is rejected, the other one goes in
    result = _ingest(lakehouse, "bronze.airlines", "airlines", schema_evolution="fail")
    assert [why.split(":")[0] for why in result.rejected] == ["airlines/b.csv"]
    assert [r["carrier"] for r in lakehouse.read("bronze.airlines").collect()] == ["AA"]
    # add_columns: the next delivery's new column becomes a column of the table; older rows read null
    _w(folder / "c.csv", "carrier,name,alliance\nLH,Lufthansa,Star\n")
    _ingest(lakehouse, "bronze.airlines", "airlines", run_id="r2", schema_evolution="add_columns")
    rows = {r["carrier"]: r.asDict() for r in lakehouse.read("bronze.airlines").collect()}
    assert rows["LH"]["alliance"] == "Star" and rows["AA"]["alliance"] is None
    assert rows["AC"]["country"] == "CA" and rows["LH"]["_rescued_data"] is None


@pytest.mark.fast
def test_on_bad_file_fail_stops_the_source_before_anything_is_ingested(lakehouse: Any) -> None:
    folder = lakehouse.settings.landing_dir / "airlines"
    _w(folder / "a.csv", HEADER + "AA,American\n")
    _w(folder / "b.csv", "code,label\nXX,Nowhere\n")
    with pytest.raises(IngestionError):
        _ingest(lakehouse, "bronze.airlines", "airlines", on_bad_file="fail")
    assert not lakehouse.exists("bronze.airlines")


WEATHER = {"origin": "EWR", "year": "2013", "month": "1", "day": "1", "hour": "1", "temp": 39.02}


@pytest.mark.fast
def test_json_lines_deliveries(lakehouse: Any) -> None:
    folder = lakehouse.settings.landing_dir / "weather"
    line = json.dumps(WEATHER)
    _w(folder / "good.jsonl", line + "\n" + json.dumps({**WEATHER, "hour": "2"}) + "\n")
    _w(folder / "bom.jsonl", "\ufeff" + json.dumps({**WEATHER, "hour": "3"}) + "\n")
    _w(
        folder / "broken.jsonl",
        json.dumps({**WEATHER, "hour": "4"}) + '\n{"origin": "EWR", "hour": \n[1, 2]\n\n',
    )
    _w(folder / "extra_key.jsonl", json.dumps({**WEATHER, "hour": "5", "sensor": {"id": 7}}) + "\n")
    _w(folder / "gz.jsonl.gz", gzip.compress((json.dumps({**WEATHER, "hour": "6"}) + "\n").encode()))
    _w(folder / "dup_key.jsonl", '{"origin": "EWR", "hour": "7", "hour": "8", "temp": 1}\n')
    _w(folder / "bad_bytes.jsonl", b'{"origin": "EWR", "hour": "9", "temp": "\xff"}\n')
    _w(folder / "utf16.jsonl", (line + "\n").encode("utf-16"))
    _w(
        folder / "numbers.jsonl",
        '{"origin": "EWR", "hour": "10", "temp": 1e3, "dewp": 1.50, "pressure": 1013.250}\n',
    )
    result = _ingest(lakehouse, "bronze.weather", "weather")
    assert [why.split(":")[0] for why in result.rejected] == ["weather/utf16.jsonl"]
    rows = lakehouse.read("bronze.weather").collect()
    hours = sorted(r["hour"] for r in rows if r["_corrupt_record"] is None and r["_rescue_reason"] is None)
    # a repeated key: the last one counts, as in Spark's (and Auto Loader's) JSON reader; no crash
    assert hours == ["1", "10", "2", "3", "4", "5", "6", "8"]
    assert next(r for r in rows if r["hour"] == "1")["temp"] == "39.02"  # numbers as landed text
    exact = next(r for r in rows if r["hour"] == "10")
    assert (exact["temp"], exact["dewp"], exact["pressure"]) == ("1e3", "1.50", "1013.250")
    corrupt = sorted(r["_corrupt_record"] for r in rows if r["_corrupt_record"])
    assert corrupt == ["[1, 2]", '{"origin": "EWR", "hour": ']
    assert json.loads(next(r for r in rows if r["hour"] == "5")["_rescued_data"]) == {
        "sensor": '{"id": 7}'
    }  # as written
    flagged = [r for r in rows if r["hour"] == "9"]
    assert len(flagged) == 1 and "UTF-8" in flagged[0]["_rescue_reason"]


@pytest.mark.fast
def test_json_keys_no_spark_schema_can_hold_are_rescued_not_lost(lakehouse: Any) -> None:
    """`Origin` beside the declared `origin` (Spark's schema is case-insensitive) and an empty key: the lines
    are parsed into maps instead, and those keys land in _rescued_data."""
    folder = lakehouse.settings.landing_dir / "weather"
    _w(folder / "case.jsonl", '{"origin": "EWR", "hour": "1", "Origin": "JFK", "": "blank", "a`b": 2}\n')
    result = _ingest(lakehouse, "bronze.weather", "weather")
    assert result.rows_written == 1 and not result.rejected
    row = lakehouse.read("bronze.weather").collect()[0]
    assert (row["origin"], row["hour"], row["_corrupt_record"]) == ("EWR", "1", None)
    assert json.loads(row["_rescued_data"]) == {"Origin": "JFK", "": "blank", "a`b": "2"}


JSON_CASES = {
    "good.jsonl": json.dumps({**WEATHER, "time_hour": "2013-01-01T06:00:00Z"}) + "\n",
    "bom.jsonl": "\ufeff" + json.dumps({**WEATHER, "hour": "3", "time_hour": "2013-01-01T08:00:00Z"}) + "\n",
    "broken.jsonl": '{"origin": "EWR", "hour": \n[1, 2]\n\n'
    + json.dumps({**WEATHER, "hour": "4", "time_hour": "2013-01-01T09:00:00Z"})
    + "\n",
    "extra_key.jsonl": json.dumps({**WEATHER, "sensor": 7, "time_hour": "2013-01-01T10:00:00Z"}) + "\n",
    "no_time.jsonl": json.dumps(WEATHER) + "\n",  # no key: quarantined by key_present
    "future.jsonl": json.dumps({**WEATHER, "time_hour": "2099-01-01T10:00:00Z"}) + "\n",  # implausible
    "wind.jsonl": json.dumps({**WEATHER, "wind_speed": "1048", "time_hour": "2013-01-01T11:00:00Z"}) + "\n",
    "bad_bytes.jsonl": b'{"origin": "EWR", "temp": "\xff", "time_hour": "2013-01-01T12:00:00Z"}\n',
    "gz.jsonl.gz": gzip.compress(
        (json.dumps({**WEATHER, "time_hour": "2013-01-01T13:00:00Z"}) + "\n").encode()
    ),
    "empty.jsonl": "",
    "utf16.jsonl": (json.dumps(WEATHER) + "\n").encode("utf-16"),
    "dup_in_one_delivery.jsonl": "".join(
        json.dumps({**WEATHER, "temp": t, "time_hour": "2013-01-02T01:00:00Z"}) + "\n" for t in (1, 2)
    ),
}


def test_the_catalogue_of_bad_deliveries_leaves_no_row_unaccounted(landed: Any) -> None:
    """30+ bad deliveries (CSV and JSON lines) through bronze and silver: `medallion audit` accounts for every
    landed row (silver, quarantine, superseded, rejected file), and each file's records all reached bronze."""
    import os

    from pipelines.audit import audit, check
    from pipelines.errors import DataQualityError
    from pipelines.runner import run_pipeline

    lh = landed
    for name, data in JSON_CASES.items():
        _w(lh.settings.landing_dir / "weather" / name, data)
    assert len(CSV_CASES) + len(BROKEN_LINES) + len(JSON_CASES) + len(UNMATCHED) >= 30
    run_pipeline(lh, ["bronze.airlines", "bronze.weather", "silver.airlines"], "r1")
    # Two readings of one hour in one delivery: counted by key_unique, whose action (fail) stops silver.
    with pytest.raises(DataQualityError):
        run_pipeline(lh, ["silver.weather"], "r1")
    dq = lh.read("gold.dq_results").where("check_name = 'key_unique'").collect()
    assert dq[-1]["rows_failed"] == 1 and not dq[-1]["passed"]
    # The source re-delivers the file, corrected: the new delivery supersedes both old readings.
    fixed = lh.settings.landing_dir / "weather" / "dup_in_one_delivery.jsonl"
    _w(fixed, json.dumps({**WEATHER, "temp": 3, "time_hour": "2013-01-02T01:00:00Z"}) + "\n")
    later = fixed.stat().st_mtime + 60
    os.utime(fixed, (later, later))
    run_pipeline(lh, ["bronze.weather", "silver.weather"], "r2")

    accounts = audit(lh)
    check(accounts)  # raises AuditError on any unaccounted row
    by_file = {a.file.rsplit("/", 1)[-1]: a for a in accounts}
    assert by_file["future.jsonl"].quarantine == 1 and by_file["wind.jsonl"].quarantine == 1
    assert by_file["no_time.jsonl"].quarantine == 1 and by_file["bad_bytes.jsonl"].quarantine == 1
    assert by_file["broken.jsonl"].bronze == 3 and by_file["broken.jsonl"].quarantine == 2
    assert by_file["utf16.jsonl"].rejected and by_file["wrong_file.csv"].rejected
    assert by_file["good.csv"].file_rows == by_file["good.csv"].bronze == by_file["good.csv"].silver == 2
    assert by_file["quoted_newline.csv"].file_rows == 2 and by_file["unbalanced_quote.csv"].file_rows == 2
    assert sum(a.superseded for a in accounts) >= 1  # carriers landed in more than one file
    dup = [a for a in accounts if a.file.endswith("dup_in_one_delivery.jsonl")]
    assert sorted((a.bronze, a.silver, a.superseded) for a in dup) == [(1, 1, 0), (2, 0, 2)]
