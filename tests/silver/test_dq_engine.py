"""The data-quality engine through the real runner: every check type and action, on real Delta tables."""

from __future__ import annotations

import json

import pytest
from dq_support import ROWS, check, ids, results, with_table

from pipelines.config import ExpectationConf
from pipelines.errors import ConfigError, DataQualityError
from pipelines.lakehouse import Lakehouse
from pipelines.runner import run_table
from pipelines.system import quarantine_name

pytestmark = pytest.mark.fast


def test_each_row_check_type_counts_the_right_rows(lakehouse: Lakehouse) -> None:
    lh = with_table(
        lakehouse,
        check("code_present", "not_null", column="code"),
        check("amount_range", "between", column="amount", min=0, max=100),
        check("code_known", "in_set", column="code", values=("A", "B")),
        check("email_format", "regex", column="email", pattern=r"^[^@]+@[^@]+$"),
        check("note_short", "expression", expr="length(note) <= 7"),
        check("code_in_codes", "foreign_key", column="code", ref_table="silver.codes", ref_column="code"),
    )
    step = run_table(lh, "silver.items", "run-1")
    assert ids(lh) == [1, 2, 3, 4, 5]  # warn keeps every row
    got = results(lh, "run-1")
    failed = {name: r["rows_failed"] for name, r in got.items()}
    assert failed == {
        "code_present": 1,  # id 3
        "amount_range": 2,  # ids 2, 5
        "code_known": 1,  # id 4 (null passes: not_null's job)
        "email_format": 1,  # id 4 (null email passes)
        "note_short": 2,  # "no code" is 7, "too big" 7; "bad code and email", "negative" longer
        "code_in_codes": 0,  # Z is in silver.codes
    }
    assert all(r["rows_checked"] == 5 and r["table_version"] == step.version for r in got.values())
    assert {r["passed"] for n, r in got.items() if n == "code_in_codes"} == {True}
    assert got["amount_range"]["action"] == "warn" and got["amount_range"]["passed"] is False


def test_drop_and_quarantine_move_rows_with_reasons(lakehouse: Lakehouse) -> None:
    lh = with_table(
        lakehouse,
        check("code_present", "not_null", column="code", action="quarantine"),
        check("code_known", "in_set", column="code", values=("A", "B"), action="quarantine"),
        check("amount_range", "between", column="amount", min=0, max=100, action="drop"),
    )
    step = run_table(lh, "silver.items", "run-q")
    assert ids(lh) == [1]  # 2 and 5 dropped (amount), 3 and 4 quarantined
    assert step.rows_written == 1
    quarantine = {r["record"]: r for r in lh.read(quarantine_name("silver.items")).collect()}
    by_id = {json.loads(k)["id"]: v for k, v in quarantine.items()}
    assert sorted(by_id) == [3, 4]
    assert by_id[3]["failed_checks"] == ["code_present"]
    assert by_id[4]["failed_checks"] == ["code_known"]
    assert {r["run_id"] for r in by_id.values()} == {"run-q"}
    got = results(lh, "run-q")
    assert (got["amount_range"]["rows_failed"], got["code_present"]["rows_failed"]) == (2, 1)


def test_a_row_failing_drop_and_quarantine_is_quarantined_not_lost(lakehouse: Lakehouse) -> None:
    lh = with_table(
        lakehouse,
        check("amount_range", "between", column="amount", min=0, max=100, action="drop"),
        check("email_present", "not_null", column="email", action="quarantine"),
    )
    run_table(lh, "silver.items", "run-b")
    assert ids(lh) == [1, 3, 4]
    q = lh.read(quarantine_name("silver.items")).collect()
    assert [sorted(r["failed_checks"]) for r in q] == [["amount_range", "email_present"]]


def test_fail_stops_before_the_write_and_leaves_the_previous_version(lakehouse: Lakehouse) -> None:
    lh = with_table(
        lakehouse, check("amount_range", "between", column="amount", min=-10, max=1000, action="fail")
    )
    first = run_table(lh, "silver.items", "run-ok")
    assert ids(lh) == [1, 2, 3, 4, 5]
    bad_rows = [*ROWS, (6, "A", 5000.0, "f@x.org", "huge")]
    lh = with_table(lakehouse, *lh.settings.tables["silver.items"].expectations, rows=bad_rows)
    with pytest.raises(DataQualityError, match="amount_range"):
        run_table(lh, "silver.items", "run-bad")
    assert lh.version("silver.items") == first.version
    assert ids(lh) == [1, 2, 3, 4, 5]
    got = results(lh, "run-bad")["amount_range"]
    assert (got["rows_failed"], got["rows_checked"], got["passed"], got["table_version"]) == (
        1,
        6,
        False,
        None,
    )


def test_dataset_checks_unique_rowcount_drift_freshness(lakehouse: Lakehouse) -> None:
    dup_rows = [*ROWS, (1, "A", 1.0, "dup@x.org", "dup")]
    lh = with_table(
        lakehouse,
        check("id_unique", "unique", columns=("id",)),
        check("enough_rows", "row_count", min=10),
        check("drift", "row_count_drift", max_change_pct=50),
        check("fresh", "freshness", column="ts", max_age_hours=24),
        rows=dup_rows,
    )
    from pyspark.sql import functions as F

    lh.write(
        lh.read("bronze.items").withColumn("ts", F.current_timestamp()),
        "bronze.items",
        "overwrite",
        overwrite_schema=True,
    )
    run_table(lh, "silver.items", "run-d1")
    got = results(lh, "run-d1")
    assert got["id_unique"]["rows_failed"] == 1  # one surplus copy of id 1
    assert got["enough_rows"]["passed"] is False and got["enough_rows"]["rows_checked"] == 6
    assert got["drift"]["passed"] is True  # nothing to compare with yet
    assert got["fresh"]["passed"] is True
    # Second run with 2 rows: -67% against 6 rows breaks the 50% drift bound.
    lh.write(lh.read("bronze.items").limit(2), "bronze.items", "overwrite")
    run_table(lh, "silver.items", "run-d2", full_refresh=True)
    assert results(lh, "run-d2")["drift"]["passed"] is False


def test_dataset_checks_judged_in_the_write_pass_count_like_the_aggregate(lakehouse: Lakehouse) -> None:
    """Surplus copies (null keys not compared), the batch's rows and the newest value, from the write pass; a
    fail-level unique check aborts the write and is counted and recorded on the failure path."""
    rows = [*ROWS, (1, "A", 1.0, "dup@x.org", "dup"), (1, "A", 2.0, "d2", "d2"), (None, "N", 1.0, "n", "n")]
    rows += [(None, "N", 1.0, "n2", "n2")]
    lh = with_table(
        lakehouse,
        check("id_unique", "unique", columns=("id",)),
        check("pair_unique", "unique", columns=("id", "code")),
        check("enough_rows", "row_count", min=100),
        rows=rows,
    )
    run_table(lh, "silver.items", "run-p1")
    got = results(lh, "run-p1")
    assert got["id_unique"]["rows_failed"] == 2 and got["id_unique"]["rows_checked"] == len(rows)
    assert got["pair_unique"]["rows_failed"] == 2
    enough = got["enough_rows"]
    assert enough["passed"] is False and enough["table_version"] == lh.version("silver.items")
    assert lh.read("silver.items").count() == len(rows)  # warn: everything written

    failing = with_table(lakehouse, check("id_unique", "unique", columns=("id",), action="fail"), rows=rows)
    before = failing.version("silver.items")
    with pytest.raises(DataQualityError, match=r"id_unique: 2 row\(s\) repeat a key of \(id\)"):
        run_table(failing, "silver.items", "run-p2", full_refresh=True)
    assert failing.version("silver.items") == before
    assert results(failing, "run-p2")["id_unique"]["rows_failed"] == 2


def test_a_freshness_check_may_judge_an_in_flight_column(lakehouse: Lakehouse) -> None:
    """In-flight columns are visible to checks and never written: judged in the write pass all the same."""
    import dataclasses

    lh = with_table(lakehouse, check("arrived", "freshness", column="__arrived_at", max_age_hours=1))
    tables = dict(lh.settings.tables)
    tables["silver.items"] = dataclasses.replace(
        tables["silver.items"], transform="dq_support:with_arrival_time"
    )
    lh = Lakehouse(dataclasses.replace(lh.settings, tables=tables), lh.store)
    run_table(lh, "silver.items", "run-f")
    got = results(lh, "run-f")["arrived"]
    assert got["passed"] is True and got["rows_checked"] == len(ROWS)
    assert "__arrived_at" not in lh.read("silver.items").columns


def test_failed_unique_check_with_fail_action_writes_nothing(lakehouse: Lakehouse) -> None:
    lh = with_table(
        lakehouse,
        check("id_unique", "unique", columns=("id",), action="fail"),
        rows=[*ROWS, (2, "B", 1.0, "x", "y")],
    )
    with pytest.raises(DataQualityError, match="id_unique"):
        run_table(lh, "silver.items", "run-u")
    assert not lh.exists("silver.items")
    assert results(lh, "run-u")["id_unique"]["table_version"] is None


def test_all_row_checks_run_in_the_write_pass(lakehouse: Lakehouse) -> None:
    """Six row checks cost no Spark job more than one: they are columns of the write's own projection."""
    sc = lakehouse.spark.sparkContext

    def jobs_for(*checks: ExpectationConf) -> int:
        lh = with_table(lakehouse, *checks)
        group = f"dq-{len(checks)}-{checks[0].name}"
        sc.setJobGroup(group, group)
        try:
            run_table(lh, "silver.items", f"run-{group}", full_refresh=True)
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)
        return len(sc.statusTracker().getJobIdsForGroup(group))

    jobs_for(check("c0", "not_null", column="id"))  # creates the DQ results table; later runs only append
    one = jobs_for(check("c1", "not_null", column="code"))
    six = jobs_for(
        check("c1", "not_null", column="code"),
        check("c2", "between", column="amount", min=0, max=100),
        check("c3", "in_set", column="code", values=("A", "B")),
        check("c4", "regex", column="email", pattern="@"),
        check("c5", "expression", expr="id > 0"),
        check("c6", "not_null", column="email"),
    )
    assert six == one
    assert one >= 1  # the write itself is a Spark job: the count is real


def test_a_bad_expression_or_column_fails_before_reading_data(lakehouse: Lakehouse) -> None:
    lh = with_table(lakehouse, check("broken", "expression", expr="no_such_column > 1"))
    with pytest.raises(ConfigError, match=r"conf/tables/test.yml: table silver.items, check 'broken'"):
        run_table(lh, "silver.items", "run-x")
    lh = with_table(lakehouse, check("ghost", "not_null", column="ghost"))
    with pytest.raises(ConfigError, match="ghost"):
        run_table(lh, "silver.items", "run-y")
    assert not lh.exists("silver.items")


def test_merge_updates_only_changed_rows(lakehouse: Lakehouse) -> None:
    lh = with_table(lakehouse, mode="merge")
    run_table(lh, "silver.items", "m1")
    changed = [(1, "A", 11.0, "a@x.org", "ok"), *ROWS[1:], (9, "B", 1.0, "n@x.org", "new")]
    lh = with_table(lakehouse, rows=changed, mode="merge")
    step = run_table(lh, "silver.items", "m2", full_refresh=True)
    assert ids(lh) == [1, 2, 3, 4, 5, 9]
    assert (step.rows_written, step.detail.startswith("1 updated")) == (2, True)  # 1 inserted + 1 updated
    assert {r["id"]: r["amount"] for r in lh.read("silver.items").collect()}[1] == 11.0
    assert {r["_run_id"] for r in lh.read("silver.items").where("id IN (1, 9)").collect()} == {"m2"}
    assert {r["_run_id"] for r in lh.read("silver.items").where("id NOT IN (1, 9)").collect()} == {"m1"}
