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

pytestmark = pytest.mark.fast

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


def test_files_no_source_takes_are_reported_and_recorded(landed: Any) -> None:
    found = {info.name: why for info, why in report_unmatched(landed, "r1")}
    assert sorted(found) == sorted(UNMATCHED)
    assert all(found.values())
    recorded = landed.read("bronze.rejected_files").where("table IS NULL").count()
    assert recorded == len(UNMATCHED)
    report_unmatched(landed, "r2")
    assert landed.read("bronze.rejected_files").where("table IS NULL").count() == recorded


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


def test_on_bad_file_fail_stops_the_source_before_anything_is_ingested(lakehouse: Any) -> None:
    folder = lakehouse.settings.landing_dir / "airlines"
    _w(folder / "a.csv", HEADER + "AA,American\n")
    _w(folder / "b.csv", "code,label\nXX,Nowhere\n")
    with pytest.raises(IngestionError):
        _ingest(lakehouse, "bronze.airlines", "airlines", on_bad_file="fail")
    assert not lakehouse.exists("bronze.airlines")


WEATHER = {"origin": "EWR", "year": "2013", "month": "1", "day": "1", "hour": "1", "temp": 39.02}


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
    result = _ingest(lakehouse, "bronze.weather", "weather")
    assert [why.split(":")[0] for why in result.rejected] == ["weather/utf16.jsonl"]
    rows = lakehouse.read("bronze.weather").collect()
    hours = sorted(r["hour"] for r in rows if r["_corrupt_record"] is None and r["_rescue_reason"] is None)
    assert hours == ["1", "2", "3", "4", "5", "6", "7"]  # a repeated key: the first one counts, no crash
    assert next(r for r in rows if r["hour"] == "1")["temp"] == "39.02"  # numbers as landed text
    corrupt = sorted(r["_corrupt_record"] for r in rows if r["_corrupt_record"])
    assert corrupt == ["[1, 2]", '{"origin": "EWR", "hour": ']
    assert json.loads(next(r for r in rows if r["hour"] == "5")["_rescued_data"]) == {"sensor": '{"id":7}'}
    flagged = [r for r in rows if r["hour"] == "9"]
    assert len(flagged) == 1 and "UTF-8" in flagged[0]["_rescue_reason"]
