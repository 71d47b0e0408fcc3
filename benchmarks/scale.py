"""Scale-up generator: the sample's flights and weather replicated over more years, deterministically jittered.

    python benchmarks/scale.py --factor 10 --landing /tmp/bench/landing

Writes a landing folder that ``medallion run`` ingests like the real sample (MEDALLION_LANDING or
MEDALLION_HOME pointing at it): year k (2013 + k, k < factor) is a copy of 2013 whose delays are jittered by a
seeded random offset (-5..+5 minutes on departure, the same plus -3..+3 on arrival; cancelled flights stay
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
    for k in range(factor):
        year = 2013 + k
        rng = np.random.default_rng(SEED + k)
        f = flights.copy()
        f["year"] = str(year)
        f["time_hour"] = f["time_hour"].str.replace("2013-", f"{year}-", n=1, regex=False)
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
        w["time_hour"] = w["time_hour"].str.replace("2013-", f"{year}-", n=1, regex=False)
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--factor", type=int, default=10, help="how many years of data (1 = the sample)")
    parser.add_argument("--landing", required=True, help="landing folder to write")
    parser.add_argument("--month", type=int, action="append", help="only these months (default all)")
    args = parser.parse_args()
    started = time.perf_counter()
    counts = generate(args.factor, Path(args.landing), args.month)
    print(
        f"{counts['flights']:,} flights, {counts['weather']:,} weather rows in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
