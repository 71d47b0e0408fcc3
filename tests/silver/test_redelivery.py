"""A month re-delivered with corrections: silver changes exactly the corrected rows, quarantines the malformed
one with its reason, and duplicates nothing."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pipelines.landing import land_sample
from pipelines.runner import run_pipeline, select_tables


def _flight_id(row: dict[str, str]) -> str:
    return f"{int(row['year']):04d}{int(row['month']):02d}{int(row['day']):02d}-{row['carrier']}-{row['flight']}-{row['origin']}"


def test_redelivered_month_updates_exactly_the_changed_rows(lakehouse_factory: Any) -> None:
    lh = lakehouse_factory()
    settings = lh.settings
    land_sample(settings, months=[1], sources=["flights", "airlines", "airports", "planes"])
    tables = [t for t in select_tables(settings, ["bronze", "silver"]) if not t.endswith("weather")]
    run_pipeline(lh, tables, "r1")
    before = {
        r["flight_id"]: r
        for r in lh.read("silver.flights").select("flight_id", "arr_delay", "_row_hash").collect()
    }
    assert len(before) == 27_004

    path = settings.landing_dir / "flights" / "flights_2013_01.csv"
    text = path.read_text()
    reader = list(csv.DictReader(io.StringIO(text)))
    header = list(reader[0].keys())
    changed: list[str] = []
    for row in reader[1000:]:
        if row["arr_delay"] != "NA" and len(changed) < 10:
            row["arr_delay"] = str(int(row["arr_delay"]) + 7)
            changed.append(_flight_id(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(reader)
    out.write("2013,1,1,a malformed line with too few fields\n")
    path.write_text(out.getvalue())

    results = {r.table: r for r in run_pipeline(lh, tables, "r2")}
    assert results["bronze.flights"].rows_written == 27_005
    assert results["silver.flights"].detail.startswith("10 updated")

    after = {
        r["flight_id"]: r
        for r in lh.read("silver.flights").select("flight_id", "arr_delay", "_row_hash", "_run_id").collect()
    }
    assert len(after) == len(before) == lh.read("silver.flights").count()  # nothing duplicated
    differing = sorted(k for k in after if after[k]["_row_hash"] != before[k]["_row_hash"])
    assert differing == sorted(changed)
    assert all(after[k]["arr_delay"] == before[k]["arr_delay"] + 7 for k in changed)
    assert sorted(k for k, r in after.items() if r["_run_id"] == "r2") == sorted(changed)

    quarantine = lh.read("silver.flights_quarantine").collect()
    assert len(quarantine) == 1
    bad = quarantine[0]
    assert "well_formed" in bad["failed_checks"] and bad["run_id"] == "r2"
    source = json.loads(bad["source_record"])
    # flights has a sensitive column: the unparsed line leaves bronze withheld (bronze keeps it whole).
    assert source["_corrupt_record"].startswith("[withheld:")
    assert "2013,1,1,a malformed line" not in bad["source_record"]  # its parsed fields are kept, treated
    landed = lh.read("bronze.flights").where("_corrupt_record IS NOT NULL").collect()
    assert len(landed) == 1 and "a malformed line" in landed[0]["_corrupt_record"]
    assert "declared columns" in source["_rescue_reason"]

    dq = {
        r["check_name"]: r
        for r in lh.read(lh.settings.system_table("dq_results"))
        .where("run_id = 'r2' AND table_name = 'silver.flights'")
        .collect()
    }
    assert dq["well_formed"]["rows_failed"] == 1
    assert dq["well_formed"]["rows_checked"] == 27_005
    assert dq["well_formed"]["table_version"] == lh.version("silver.flights")
    # medallion audit follows every landed row of flights (pseudonymised tail numbers, the withheld line)
    # into silver or quarantine, as silver read it.
    from pipelines.audit import account_table, check

    accounts = account_table(lh, "bronze.flights")
    check(accounts)  # AuditError on any unaccounted row
    assert sum(a.quarantine for a in accounts) == 1 and sum(a.silver for a in accounts) == 27_004
