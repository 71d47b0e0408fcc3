"""Crash trials: kill ``medallion run`` with SIGKILL, check the tables, rerun, compare with an uninterrupted run.

    python tests/e2e/crash_trials.py [--random 14] [--engine offline|native] [--seed 7] [--keep DIR]

(12 named points, 14 random kills and a maintain kill on the offline engine: 27 trials; the native engine
reaches 8 of the named points, so ``--engine native --random 11`` makes 20.)

Landing: three months of the embedded sample, cut to a few hundred flights and weather readings per month
(plus the full snapshots), so that one run takes seconds of work. Each trial copies that landing (keeping
the files' times), runs ``medallion run --no-ml`` and kills it: at a named point (``MEDALLION_CRASH_AT``, see
:mod:`pipelines.faults`: during a Spark write, between file move and commit, after a table commit and before
its quarantine and DQ results, between the bronze and manifest commits, during a MERGE: on a second delivery,
the last month landing after an uninterrupted run on the first two) or after a random delay. A named point
the run never reaches fails the trial. Then, for every table:

1. it opens with deltalake (and with delta-spark when ``--engine native``), and no log entry of its current
   version references a file that is missing;
2. ``medallion run --no-ml`` again finishes, and every table holds exactly the rows of the uninterrupted run
   (run ids and wall-clock times aside): no duplicate, nothing missing, quarantine and DQ results included;
3. after the retention period (file times moved back 8 days), ``medallion maintain`` leaves no data file
   that the log does not reference (orphans of the killed write removed).

A kill during OPTIMIZE/VACUUM is tried too (``maintain.optimized``). Prints one line per trial; exit code 0
when every trial converged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NAMED = [
    "write.staged@1", "write.moved@1", "write.moved@4", "bronze.committed@1", "bronze.committed@3",
    "table.committed@1", "table.committed@3", "quarantine.committed@1", "merge.started@1", "merge.started@2",
    "table.committed@6", "write.moved@9",
]  # fmt: skip
VOLATILE = {"_run_id", "run_id", "_ingested_at", "ingested_at", "checked_at", "scored_at", "quarantined_at",
            "started_at", "finished_at", "seconds", "engine", "rejected_at", "status",
            # Delta versions are not rows: a redone step may commit once more than the uninterrupted run.
            "table_version", "bronze_version"}  # fmt: skip
# Points reached only when a run changes a table that exists (MERGE into silver): tried on a second delivery.
TWO_DELIVERIES = {"merge.started@1", "merge.started@2"}
# Points in the offline engine's own write (staged files, moved files): delta-spark writes and commits in one
# call on the native engine, which never reaches them (its writes are killed in flight by the random trials).
OFFLINE_ONLY = ("write.staged", "write.moved")
LAST_MONTH = "2013_03"
# The event log and the manifest say what each run did: a crashed run and its rerun say more than one run.
RUN_LOGS = {"gold.pipeline_events"}


def medallion(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> Any:
    full = {**os.environ, "MEDALLION_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
    )


def mini_landing(target: Path, rows: int = 300) -> None:
    """Three months of the sample, cut to ``rows`` records per flights/weather file, and the snapshots."""
    home = Path(tempfile.mkdtemp(prefix="medallion-mini-"))
    done = medallion(home, "land", "--month", "1", "--month", "2", "--month", "3")
    if done.returncode:
        raise SystemExit(done.stderr)
    for path in sorted((home / "landing").rglob("*")):
        if not path.is_file():
            continue
        out = target / path.relative_to(home / "landing")
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.name in ("flights", "weather"):
            with path.open(encoding="utf-8") as handle:
                lines = [line for _, line in zip(range(rows + 1), handle, strict=False)]
            out.write_text("".join(lines), encoding="utf-8")
        else:
            shutil.copy2(path, out)
    shutil.rmtree(home, ignore_errors=True)


def deliver(landing: Path, target: Path, first: bool) -> None:
    """The first delivery (everything but the last month's flights and weather) or the rest of it, with the
    files' modification times."""
    for path in sorted(landing.rglob("*")):
        if not path.is_file():
            continue
        later = path.parent.name in ("flights", "weather") and LAST_MONTH in path.name
        if later != first:
            out = target / path.relative_to(landing)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)


def two_delivery_reference(landing: Path, env: dict[str, str], work: Path) -> dict[str, Any]:
    """The tables after two uninterrupted runs: the first delivery, then the last month."""
    home = work / "reference-two-deliveries"
    shutil.rmtree(home, ignore_errors=True)
    for first in (True, False):
        deliver(landing, home / "landing", first=first)
        done = medallion(home, "run", "--no-land", "--no-ml", env=env)
        if done.returncode not in (0, 4):
            raise SystemExit(f"the uninterrupted two-delivery run failed: {done.stderr[-2000:]}")
    return snapshot(home)


def tables_of(lakehouse: Path) -> list[Path]:
    return sorted(p for p in lakehouse.glob("*/*") if (p / "_delta_log").is_dir())


def logical(path: Path) -> str:
    return f"{path.parent.name}.{path.name}"


def snapshot(home: Path) -> dict[str, Any]:
    """Every table's rows (deltalake), volatile columns out, canonical and sorted."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    out = {}
    for path in tables_of(home / "lakehouse"):
        name = logical(path)
        if name in RUN_LOGS:
            continue
        data = DeltaTable(str(path)).to_pyarrow_table()
        data = data.select([c for c in data.column_names if c not in VOLATILE])
        cols = []
        for c in data.column_names:
            col = data.column(c)
            if pa.types.is_string(col.type):
                col = pc.replace_substring(col, str(home), "<home>")
                col = pc.replace_substring_regex(col, r'"(_run_id|_ingested_at)":"[^"]*"', r'"\1":"<run>"')
                col = pc.replace_substring_regex(
                    col,
                    r"newest _ingested_at \S+ is [0-9.]+ h old",
                    "newest _ingested_at <run> is <age> h old",
                )
            cols.append(col)
        rows = sorted(
            json.dumps(r, sort_keys=True, default=str)
            for r in pa.table(dict(zip(data.column_names, cols, strict=True))).to_pylist()
        )
        out[name] = rows
    return out


def integrity(home: Path, spark: Any | None) -> list[str]:
    """Problems: a table that does not open, or a current file the log references that is missing."""
    from deltalake import DeltaTable

    problems = []
    for path in tables_of(home / "lakehouse"):
        try:
            table = DeltaTable(str(path))
            for rel in table.get_add_actions(flatten=True).column("path").to_pylist():
                if not (path / urllib.parse.unquote(rel)).exists():
                    problems.append(f"{logical(path)}: the log references a missing file {rel}")
            table.to_pyarrow_table()
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            problems.append(f"{logical(path)}: does not open with deltalake: {exc}")
        if spark is not None:
            try:
                spark.read.format("delta").load(str(path)).count()
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{logical(path)}: does not open with delta-spark: {str(exc)[:200]}")
    return problems


def orphans(home: Path) -> list[str]:
    """Data files in table folders that no commit of the log ever added: the leftovers of a write that died.
    (Files a commit removed stay for time travel until VACUUM's retention has passed since that commit.)"""
    found = []
    for path in tables_of(home / "lakehouse"):
        committed = set()
        for commit in (path / "_delta_log").glob("*.json"):
            for line in commit.read_text().splitlines():
                action = json.loads(line) if line.strip() else {}
                for kind in ("add", "remove"):
                    if kind in action:
                        committed.add(urllib.parse.unquote(action[kind]["path"]))
        for f in path.rglob("*.parquet"):
            rel = f.relative_to(path).as_posix()
            if not rel.startswith("_delta_log") and rel not in committed:
                found.append(f"{logical(path)}/{rel}")
    return found


def age_files(home: Path, days: int = 8) -> None:
    """Move every file's time back, as if the retention period had passed."""
    past = time.time() - days * 86400
    for f in (home / "lakehouse").rglob("*"):
        if f.is_file() or f.is_dir():
            os.utime(f, (past, past))


def run_killed(home: Path, env: dict[str, str], crash: str | None, delay: float | None) -> tuple[str, float]:
    full = {**os.environ, "MEDALLION_HOME": str(home), **env}
    if crash:
        full["MEDALLION_CRASH_AT"] = crash
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--no-land", "--no-ml"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full, start_new_session=True,
    )  # fmt: skip
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # A crash point kills the Python driver: its JVM (same process group) must not outlive it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    code = proc.returncode
    how = "killed" if code in (-9, 137) else f"exit {code}"
    return how, time.perf_counter() - started


def trial(label: str, landing: Path, reference: dict[str, Any], engine_env: dict[str, str], spark: Any,
          crash: str | None = None, delay: float | None = None, work: Path | None = None) -> tuple[bool, str, float]:  # fmt: skip
    """One trial: (converged, how the run ended: ``killed`` or ``exit N``, its seconds)."""
    home = Path(tempfile.mkdtemp(prefix="medallion-trial-", dir=work))
    problems = []
    if crash in TWO_DELIVERIES:
        # The point is only reached on a table that exists: an uninterrupted run on the first months, then the
        # last month lands and the second run is killed.
        deliver(landing, home / "landing", first=True)
        if medallion(home, "run", "--no-land", "--no-ml", env=engine_env).returncode not in (0, 4):
            problems.append("the first run failed")
        deliver(landing, home / "landing", first=False)
    else:
        shutil.copytree(landing, home / "landing", copy_function=shutil.copy2)
    how, seconds = run_killed(home, engine_env, crash, delay)
    if crash and how != "killed":
        problems.append(f"the crash point was never reached ({how})")
    if not crash and how != "killed":
        # Finished before the kill (a busy machine made the reference run slow): not a crash trial. The caller
        # draws a shorter delay from this run's own duration.
        print(f"{label:<28} {how:<8} {seconds:6.1f} s  finished before the kill, not counted", flush=True)
        shutil.rmtree(home, ignore_errors=True)
        return True, how, seconds
    problems += integrity(home, spark)
    rerun = medallion(home, "run", "--no-land", "--no-ml", env=engine_env)
    if rerun.returncode not in (0, 4):
        problems.append(f"rerun failed: {rerun.stderr.strip().splitlines()[-1:]}")
    else:
        got = snapshot(home)
        for name in sorted(set(reference) | set(got)):
            if reference.get(name) != got.get(name):
                want_rows, got_rows = reference.get(name, []), got.get(name, [])
                problems.append(f"{name}: {len(got_rows)} rows, {len(want_rows)} in the uninterrupted run")
        problems += integrity(home, spark)
        if not problems:
            age_files(home)
            kept = medallion(home, "maintain", env=engine_env)
            if kept.returncode:
                problems.append(f"maintain failed: {kept.stderr.strip().splitlines()[-1:]}")
            left = orphans(home)
            if left:
                problems.append(f"orphans left after maintain: {left[:3]}")
            problems += integrity(home, spark)
    ok = not problems
    print(
        f"{label:<28} {how:<8} {seconds:6.1f} s  {'converged' if ok else 'FAILED: ' + '; '.join(problems)}",
        flush=True,
    )
    if ok:
        shutil.rmtree(home, ignore_errors=True)
    return ok, how, seconds


def maintain_trial(landing: Path, engine_env: dict[str, str], spark: Any, work: Path | None) -> bool:
    """A kill between OPTIMIZE and VACUUM: the tables stay whole and a second maintain finishes the job."""
    home = Path(tempfile.mkdtemp(prefix="medallion-trial-", dir=work))
    shutil.copytree(landing, home / "landing", copy_function=shutil.copy2)
    medallion(home, "run", "--no-land", "--no-ml", env=engine_env)
    before = snapshot(home)
    age_files(home)
    medallion(home, "maintain", env={**engine_env, "MEDALLION_CRASH_AT": "maintain.optimized@2"})
    problems = integrity(home, spark)
    again = medallion(home, "maintain", env=engine_env)
    if again.returncode:
        problems.append("second maintain failed")
    if snapshot(home) != before:
        problems.append("rows changed")
    problems += integrity(home, spark)
    ok = not problems
    print(
        f"{'maintain.optimized@2':<28} {'killed':<8} {'':>8}  {'converged' if ok else 'FAILED: ' + '; '.join(problems)}"
    )
    return ok


def points_for(engine: str, named: list[str] | None) -> list[str]:
    """The named points to try: all that ``engine`` reaches by default; one it never reaches is an error."""
    if named is None:
        return [p for p in NAMED if engine == "offline" or not p.startswith(OFFLINE_ONLY)]
    unreachable = [p for p in named if engine == "native" and p.startswith(OFFLINE_ONLY)]
    if unreachable:
        raise SystemExit(
            f"the native engine never reaches {', '.join(unreachable)}: those points are in the offline "
            "engine's own write (staged and moved files); a native write is killed in flight by --random trials"
        )
    return named


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--random", type=int, default=14, help="trials killed after a random delay (default 14)"
    )
    parser.add_argument(
        "--named",
        nargs="*",
        default=None,
        help="named crash points to try (default: all the engine reaches; write.* are the offline engine's)",
    )
    parser.add_argument("--engine", choices=["offline", "native"], default="offline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", help="work folder (default: a temporary one, failed trials are left there)")
    args = parser.parse_args(argv)
    points = points_for(args.engine, args.named)
    sys.path.insert(0, str(ROOT))
    work = Path(args.keep or tempfile.mkdtemp(prefix="medallion-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {"MEDALLION_ENGINE": args.engine}
    landing = work / "landing"
    if not landing.exists():
        mini_landing(landing)
    spark = None
    if args.engine == "native":
        from pipelines.config import load_settings
        from pipelines.session import get_session

        os.environ.setdefault("MEDALLION_HOME", str(work / "spark-home"))
        spark, _ = get_session(load_settings("local"))
    ref_home = work / "reference"
    shutil.rmtree(ref_home, ignore_errors=True)
    shutil.copytree(landing, ref_home / "landing", copy_function=shutil.copy2)
    started = time.perf_counter()
    done = medallion(ref_home, "run", "--no-land", "--no-ml", env=env)
    duration = time.perf_counter() - started
    if done.returncode not in (0, 4):
        raise SystemExit(f"the uninterrupted run failed: {done.stderr[-2000:]}")
    reference = snapshot(ref_home)
    print(f"uninterrupted run: {len(reference)} tables, {duration:.1f} s ({args.engine} engine)", flush=True)
    rng = random.Random(args.seed)
    results = []
    two = two_delivery_reference(landing, env, work) if TWO_DELIVERIES & set(points) else {}
    for point in points:
        expected = two if point in TWO_DELIVERIES else reference
        results.append(trial(point, landing, expected, env, spark, crash=point, work=work)[0])
    for i in range(args.random):
        longest = max(duration, 6.0)
        for _ in range(4):  # a run that finishes before its kill is redrawn, shorter; it counts as no trial
            delay = rng.uniform(3.0, longest)
            ok, how, seconds = trial(
                f"random kill #{i + 1} at {delay:.1f} s",
                landing,
                reference,
                env,
                spark,
                delay=delay,
                work=work,
            )
            if how == "killed":
                results.append(ok)
                break
            longest = max(3.5, 0.9 * seconds)
        else:
            print(f"random kill #{i + 1}: every run finished before its kill", flush=True)
            results.append(False)
    results.append(maintain_trial(landing, env, spark, work))
    print(f"{sum(results)} of {len(results)} crash trials converged (every one killed)", flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
