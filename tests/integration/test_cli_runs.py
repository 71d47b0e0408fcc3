"""The medallion command as a user runs it, where it starts Spark: real processes, real exit codes.

Not in the fast tier (each test starts a JVM or two in a subprocess); ``test_cli.py`` holds the command's
checks that end before Spark starts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cli_support import medallion_offline as _medallion


def test_land_then_run_one_table_and_rerun(tmp_path: Path) -> None:
    landed = _medallion("land", "--source", "airlines", home=tmp_path)
    assert landed.returncode == 0, landed.stderr
    assert "1 file(s) delivered" in landed.stdout
    first = _medallion("run", "--select", "bronze.airlines", home=tmp_path)
    assert first.returncode == 0, first.stderr
    line = next(line for line in first.stdout.splitlines() if line.startswith("bronze.airlines"))
    assert line.split()[1:3] == ["16", "16"]
    second = _medallion("run", "--select", "bronze.airlines", home=tmp_path)
    line = next(line for line in second.stdout.splitlines() if line.startswith("bronze.airlines"))
    assert second.returncode == 0 and line.split()[1:3] == ["0", "0"]


def test_a_rejected_file_exits_4_and_the_summary_names_it(tmp_path: Path) -> None:
    """A file that cannot be ingested does not fail the run: it is named, with why, and the exit code says
    "completed with rejections"."""
    folder = tmp_path / "landing" / "airlines"
    folder.mkdir(parents=True)
    (folder / "airlines_snapshot.csv").write_text("code,label\nXX,Nowhere\n")
    out = _medallion("run", "--no-land", "--select", "bronze.airlines", home=tmp_path)
    assert out.returncode == 4, out.stderr
    assert "REJECTED" in out.stdout + out.stderr and "airlines_snapshot.csv" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_a_broken_config_exits_non_zero_with_cause_and_a_trace_only_when_verbose(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(Path(__file__).resolve().parents[2] / "conf", conf)
    (conf / "sources.yml").write_text((conf / "sources.yml").read_text() + "\n  broken: [\n")
    env = {"MEDALLION_CONF_DIR": str(conf)}
    out = _medallion("run", "--no-land", "--select", "bronze.airlines", home=tmp_path, env=env)
    assert out.returncode != 0 and "error: " in out.stderr
    assert "Traceback" not in out.stderr
    verbose = _medallion(
        "--verbose", "run", "--no-land", "--select", "bronze.airlines", home=tmp_path, env=env
    )
    assert verbose.returncode == out.returncode and "Traceback" in verbose.stderr


def test_history_of_missing_table_is_a_clear_error(tmp_path: Path) -> None:
    out = _medallion("history", "bronze.flights", home=tmp_path)
    assert out.returncode == 1
    assert "TableNotFoundError" in out.stderr


def test_sigterm_stops_a_run_like_ctrl_c_and_keeps_the_event_rows_of_the_steps_that_ran(
    tmp_path: Path,
) -> None:
    """A scheduler cancels with SIGTERM. Python's default would die on the spot (no ``finally``, the run's
    held event rows lost, a child server left running); the run stops as on Ctrl-C instead, exit 143."""
    from deltalake import DeltaTable

    assert _medallion("land", "--source", "airlines", home=tmp_path).returncode == 0
    # SIGTERM just after silver.airlines committed (before its quarantine rows and DQ results)
    env = {"MEDALLION_CRASH_AT": "table.committed@1", "MEDALLION_CRASH_SIGNAL": "TERM"}
    out = _medallion(
        "run", "--no-ml", "--select", "bronze.airlines", "--select", "silver.airlines", home=tmp_path, env=env
    )
    assert out.returncode == 143, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "error: terminated (SIGTERM)"
    events = DeltaTable(str(tmp_path / "lakehouse" / "gold" / "pipeline_events")).to_pyarrow_table()
    rows = {r["table_name"]: r for r in events.to_pylist()}
    assert rows["bronze.airlines"]["status"] == "ok" and rows["bronze.airlines"]["rows_written"] == 16
    # the step that was stopped has no row: the next run's reconcile records its commit
    assert set(rows) == {"bronze.airlines"}, rows
    rerun = _medallion("run", "--no-ml", "--no-land", "--select", "silver.airlines", home=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    silver = DeltaTable(str(tmp_path / "lakehouse" / "silver" / "airlines"))
    assert silver.to_pyarrow_table().num_rows == 16
