"""Scale-up generator: the sample's flights and weather replicated over more years, deterministically jittered.

    python benchmarks/scale.py --factor 10 --landing /tmp/bench/landing
    python benchmarks/scale.py --run --factors 1 10 30 [--no-ml] [--engine offline|native] [--work DIR]

Writes a landing folder that ``medallion run`` ingests like the real sample (MEDALLION_LANDING or
MEDALLION_HOME pointing at it): copy k (k < factor) is the year 2013 moved to another year (2013, 2012, ...,
1988, then 2014, ..., 2025: every date stays within silver's plausible range, 1987-10-01 to today) whose delays
are jittered by a seeded random offset (-5..+5 minutes on departure, the same plus -3..+3 on arrival; cancelled flights stay
cancelled) and whose weather temperatures move by -2..+2 F. Dates keep their month and day (2013 has no
29 February, so every copy is a valid date); times keep their hhmm. Airlines, airports and planes are copied once.
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.landing import SNAPSHOTS, sample_data_dir  # noqa: E402

SEED = 20130101
# 2013 first (the sample itself), then back to 1988, then forward to the last full year before today.
YEARS = [*range(2013, 1987, -1), *range(2014, 2026)]


def _move_year(stamps: pd.Series, year: int) -> pd.Series:
    """UTC times of 2013 (and of 2014-01-01, late on 31 December in New York) moved to ``year``."""
    return stamps.str.replace(r"^2014-", f"{year + 1}-", regex=True).str.replace(
        r"^2013-", f"{year}-", regex=True
    )


def _jitter(series: pd.Series, rng: np.random.Generator, low: int, high: int) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    shifted = values + rng.integers(low, high + 1, size=len(values))
    return shifted.map(lambda v: "NA" if pd.isna(v) else str(int(v)))


def generate(
    factor: int, landing: Path, months: list[int] | None = None, progress: bool = True
) -> dict[str, int]:
    """Write ``factor`` years of flights and weather into ``landing``; returns row counts per source."""
    data = sample_data_dir()
    with zipfile.ZipFile(data / "flights.csv.zip") as archive, archive.open("flights.csv") as fh:
        flights = pd.read_csv(fh, dtype=str, keep_default_na=False)
    weather = pd.read_csv(data / "weather.csv", dtype=str, keep_default_na=False)
    months = months or list(range(1, 13))
    counts = {"flights": 0, "weather": 0}
    if factor > len(YEARS):
        raise SystemExit(
            f"--factor at most {len(YEARS)} (years {min(YEARS)}..{max(YEARS)} are plausible dates)"
        )
    for k in range(factor):
        year = YEARS[k]
        rng = np.random.default_rng(SEED + k)
        f = flights.copy()
        f["year"] = str(year)
        f["time_hour"] = _move_year(f["time_hour"], year)
        if k:
            dep_shift = rng.integers(-5, 6, size=len(f))
            dep = pd.to_numeric(f["dep_delay"], errors="coerce") + dep_shift
            arr = (
                pd.to_numeric(f["arr_delay"], errors="coerce") + dep_shift + rng.integers(-3, 4, size=len(f))
            )
            f["dep_delay"] = dep.map(lambda v: "NA" if pd.isna(v) else str(int(v)))
            f["arr_delay"] = arr.map(lambda v: "NA" if pd.isna(v) else str(int(v)))
        w = weather.copy()
        w["year"] = str(year)
        w["time_hour"] = _move_year(w["time_hour"], year)
        if k:
            temp = pd.to_numeric(w["temp"], errors="coerce") + rng.uniform(-2, 2, size=len(w)).round(2)
            w["temp"] = temp.map(lambda v: "NA" if pd.isna(v) else f"{v:.2f}")
        for month in months:
            part = f[f["month"] == str(month)]
            out = landing / "flights" / f"flights_{year}_{month:02d}.csv"
            out.parent.mkdir(parents=True, exist_ok=True)
            part.to_csv(out, index=False)
            counts["flights"] += len(part)
            wpart = w[w["month"] == str(month)]
            wout = landing / "weather" / f"weather_{year}_{month:02d}.jsonl"
            wout.parent.mkdir(parents=True, exist_ok=True)
            _write_jsonl(wpart, wout)
            counts["weather"] += len(wpart)
        if progress:
            print(f"  year {year}: {len(f):,} flights, {len(w):,} weather rows", flush=True)
    for name in SNAPSHOTS:
        target = landing / name / f"{name}_snapshot.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((data / f"{name}.csv").read_bytes())
    return counts


def _write_jsonl(df: pd.DataFrame, path: Path) -> None:
    numeric = [c for c in df.columns if c not in ("origin", "time_hour")]
    out = df.copy()
    for c in numeric:
        out[c] = pd.to_numeric(out[c].replace("NA", None), errors="coerce")
    out.to_json(path, orient="records", lines=True)


def _tree_rss(pid: int) -> dict[str, int]:
    """Resident memory (bytes) of ``pid`` and its descendants, as {"python": ..., "jvm": ...} (from /proc)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        p = int(entry.name)
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(p)
        names[p] = stat[stat.index("(") + 1 : stat.rindex(")")]
        line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), "VmRSS: 0 kB")
        rss[p] = int(line.split()[1]) * 1024
    out = {"python": 0, "jvm": 0}
    todo = [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        out["jvm" if names.get(p) == "java" else "python"] += rss.get(p, 0)
    return out


def run_scale(factors: list[int], work: Path, engine: str, ml: bool) -> list[dict[str, float]]:
    """``medallion run`` on each scale, in a home of its own: wall time and peak memory of the driver."""
    import os
    import subprocess

    rows = []
    for factor in factors:
        home = work / f"x{factor}"
        if not (home / "landing").is_dir():
            print(f"x{factor}: generating the landing folder", flush=True)
            generate(factor, home / "landing", progress=False)
        flights = sum(
            sum(1 for _ in f.open(encoding="utf-8")) - 1 for f in (home / "landing" / "flights").glob("*.csv")
        )
        env = {**os.environ, "MEDALLION_HOME": str(home), "MEDALLION_ENGINE": engine}
        args = [sys.executable, "-m", "pipelines.cli", "run", "--no-land", *([] if ml else ["--no-ml"])]
        print(f"x{factor}: medallion run on {flights:,} flights ({engine} engine)", flush=True)
        log = (home / "run.log").open("w")
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        peak = {"python": 0, "jvm": 0}
        while proc.poll() is None:
            now = _tree_rss(proc.pid)
            peak = {k: max(peak[k], now[k]) for k in peak}
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        log.close()
        if proc.returncode not in (0, 4):
            raise SystemExit(
                f"x{factor}: medallion run failed (exit {proc.returncode}), see {home / 'run.log'}"
            )
        rows.append(
            {
                "factor": factor,
                "flights": flights,
                "seconds": seconds,
                "python": peak["python"],
                "jvm": peak["jvm"],
            }
        )
        print(f"x{factor}: {seconds:.0f} s", flush=True)
    base = rows[0]
    print(
        f"\n{'scale':>6} {'flights':>11} {'seconds':>8} {'s/100k':>7} {'x time':>7} {'python MB':>10} {'JVM MB':>8}"
    )
    for r in rows:
        print(
            f"{'x' + str(r['factor']):>6} {r['flights']:>11,} {r['seconds']:>8.0f} "
            f"{r['seconds'] / r['flights'] * 1e5:>7.1f} {r['seconds'] / base['seconds']:>7.2f} "
            f"{r['python'] / 2**20:>10.0f} {r['jvm'] / 2**20:>8.0f}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--factor", type=int, default=10, help="how many years of data (1 = the sample)")
    parser.add_argument("--landing", help="landing folder to write")
    parser.add_argument("--month", type=int, action="append", help="only these months (default all)")
    parser.add_argument("--run", action="store_true", help="time medallion run at each of --factors")
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--work", default="/tmp/medallion-scale", help="homes of the --run scales")
    parser.add_argument("--engine", choices=["offline", "native"], default="offline")
    parser.add_argument("--no-ml", action="store_true", help="tables only (medallion run --no-ml)")
    args = parser.parse_args()
    if args.run:
        run_scale(args.factors, Path(args.work), args.engine, not args.no_ml)
        return
    if not args.landing:
        parser.error("--landing is required (or --run)")
    started = time.perf_counter()
    counts = generate(args.factor, Path(args.landing), args.month)
    print(
        f"{counts['flights']:,} flights, {counts['weather']:,} weather rows in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
