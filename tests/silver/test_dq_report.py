"""`medallion dq report`: GE suites from the YAML checks, validated on real Delta tables, Data Docs offline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from dq_support import check, with_table

from pipelines.dq.report import build_report
from pipelines.runner import run_table

# The fast tier is the tests marked fast; the heavier ones here run in the full suite only.


def test_report_validates_with_ge_and_renders_offline(lakehouse: Any, tmp_path: Path) -> None:
    lh = with_table(
        lakehouse,
        check("code_present", "not_null", column="code"),
        check("amount_range", "between", column="amount", min=0, max=100),
        check("code_known", "in_set", column="code", values=("A", "B", "Z")),
        check("note_short", "expression", expr="length(note) <= 20"),
        check("code_in_codes", "foreign_key", column="code", ref_table="silver.codes", ref_column="code"),
        check("id_unique", "unique", columns=("id",)),
        check("drift", "row_count_drift", max_change_pct=10),
    )
    run_table(lh, "silver.items", "run-r")
    out = tmp_path / "report"
    report = build_report(lh, out, ["silver.items"])

    (items,) = report.tables
    # v0 creates the documented table, v1 is the first write (the version GE validated)
    assert (items.table, items.version, items.rows) == ("silver.items", 1, 5)
    # GE agrees with the engine: 2 rows out of range and 1 null code; everything else passes.
    assert items.success is False
    assert sorted(items.failed) == ["amount_range", "code_present"]
    assert items.skipped == ["drift"] and items.expectations == 6

    assert report.index == out / "index.html"
    pages = list(out.rglob("*.html"))
    assert len(pages) >= 4  # summary, GE index, the suite, the validation
    for page in pages:
        html = page.read_text()
        assert not re.search(r"<(link|script)[^>]+(href|src)=\"https?://", html), page
        assert "medallion_offline.css" in html, page
    assert (out / "static" / "styles" / "medallion_offline.css").stat().st_size > 1000
    summary = (out / "index.html").read_text()
    assert "silver.items" in summary and "amount_range" in summary
    validation = re.search(r'href="(validations/[^"]+)"', summary)
    assert validation and (out / validation.group(1)).is_file()
    assert "amount_range (warn)" in (out / validation.group(1)).read_text()


@pytest.mark.fast
def test_report_refuses_a_folder_holding_a_users_file(lakehouse: Any, tmp_path: Path) -> None:
    """Today's `dq report --out DIR` must not delete DIR's contents: a folder it did not write is left alone."""
    from pipelines.errors import OutputFolderError

    lh = with_table(lakehouse, check("code_present", "not_null", column="code"))
    run_table(lh, "silver.items", "run-r")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(OutputFolderError):
        build_report(lh, out, ["silver.items"])
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "my notes"
