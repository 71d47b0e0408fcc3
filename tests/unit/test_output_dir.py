"""Report and site folders: written only when new, empty or marked by an earlier build; nothing else is deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import OutputFolderError
from pipelines.output_dir import prepare_output_dir

pytestmark = pytest.mark.fast
MARK = ".medallion-test"


def test_a_new_or_empty_folder_is_created_and_marked(tmp_path: Path) -> None:
    for out in (tmp_path / "new" / "nested", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        prepare_output_dir(out, MARK, "medallion test")
        assert [p.name for p in out.iterdir()] == [MARK]


def test_a_folder_of_someone_else_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "Documents"
    (out / "taxes").mkdir(parents=True)
    (out / "thesis.docx").write_text("years of work")
    (out / "taxes" / "2026.pdf").write_text("numbers")
    before = sorted((str(p.relative_to(out)), p.is_file() and p.read_text()) for p in out.rglob("*"))
    with pytest.raises(OutputFolderError):
        prepare_output_dir(out, MARK, "medallion test")
    assert sorted((str(p.relative_to(out)), p.is_file() and p.read_text()) for p in out.rglob("*")) == before
    with pytest.raises(OutputFolderError):  # another tool's marker is not ours
        (out / ".medallion-docs").write_text("")
        prepare_output_dir(out, MARK, "medallion test")
    assert (out / "thesis.docx").read_text() == "years of work"


def test_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("mine")
    with pytest.raises(OutputFolderError):
        prepare_output_dir(target, MARK, "medallion test")
    assert target.read_text() == "mine"


def test_an_earlier_build_is_replaced_whole_but_not_through_a_link(tmp_path: Path) -> None:
    out = tmp_path / "site"
    prepare_output_dir(out, MARK, "medallion test")
    (out / "pages").mkdir()
    (out / "pages" / "old.html").write_text("old")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (out / "link").symlink_to(elsewhere, target_is_directory=True)
    prepare_output_dir(out, MARK, "medallion test")
    assert [p.name for p in out.iterdir()] == [MARK]
    assert (elsewhere / "keep.txt").read_text() == "keep"  # the link went, not what it points at
