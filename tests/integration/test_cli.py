"""The medallion command as a user runs it: real processes, real exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import medallion_offline as _medallion

pytestmark = pytest.mark.fast


def test_help_lists_commands_and_examples(tmp_path: Path) -> None:
    out = _medallion("--help", home=tmp_path)
    assert out.returncode == 0
    for word in ("run", "land", "tables", "history", "maintain", "MEDALLION_HOME", "examples"):
        assert word in out.stdout


def test_unknown_environment_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = _medallion("--env", "staging", "land", home=tmp_path)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ConfigError")


def test_bad_selection_fails_before_spark_starts(tmp_path: Path) -> None:
    out = _medallion("run", "--select", "bronze.flight", home=tmp_path)
    assert out.returncode == 2
    assert "UsageError" in out.stderr and "bronze.flights" in out.stderr
    assert not (tmp_path / "lakehouse").exists()
