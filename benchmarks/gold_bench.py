"""Gold build time on the sample and on a deterministic N-times scale-up, and the cost of an incremental run.

    python benchmarks/gold_bench.py                 # scale 1 (the sample) and 10
    python benchmarks/gold_bench.py --scale 1 --scale 3

For each scale: silver is taken from a lakehouse where bronze and silver are built (``--silver-home``, default
``.medallion``; built there first when missing) and replicated over N years (2013, 2014, ...: every timestamp
shifted by whole years, delays jittered by a hash of the key, so the data is deterministic and realistic in
shape). Then, into a fresh lakehouse:

1. silver without the last month of the last year -> a full gold build (timed);
2. that month lands in silver (new run id) -> an incremental gold run (timed): only the affected months/dates
   are recomputed and replaced.

Printed: rows, seconds per table and in total, and incremental / full.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOLD = (
    "gold.carrier_monthly_performance",
    "gold.route_daily_stats",
    "gold.airport_weather_delays",
    "gold.flight_features",
)
TIME_COLUMNS = ("time_hour", "sched_dep_utc", "dep_utc", "sched_arr_utc", "arr_utc")
LOCAL_COLUMNS = ("sched_dep_local", "dep_local", "sched_arr_local", "arr_local")


def scaled_flights(flights, scale: int):
    """``scale`` copies of silver.flights, copy k shifted by k years, delays jittered by up to +-5 minutes."""
    from pyspark.sql import functions as F

    copies = flights.sparkSession.range(scale).select(F.col("id").cast("int").alias("__k"))
    df = flights.crossJoin(F.broadcast(copies))
    months = F.col("__k") * 12
    jitter = F.when(F.col("__k") == 0, F.lit(0)).otherwise(
        (F.abs(F.xxhash64("flight_id", "__k")) % 11 - 5).cast("int")
    )
    df = df.withColumn("__j", jitter)
    for c in TIME_COLUMNS + LOCAL_COLUMNS:
        if c in df.columns:
            shifted = F.timestamp_add("MONTH", months, F.col(c))
            if c in ("arr_utc", "arr_local"):
                shifted = F.timestamp_add("MINUTE", F.col("__j"), shifted)
            df = df.withColumn(c, shifted)
    df = (
        df.withColumn("flight_date", F.add_months("flight_date", months))
        .withColumn("year", F.year("flight_date"))
        .withColumn("arr_delay", F.col("arr_delay") + F.col("__j"))
        .withColumn(
            "flight_id",
            F.concat_ws("-", F.date_format("flight_date", "yyyyMMdd"), "carrier", "flight", "origin"),
        )
    )
    return df.drop("__k", "__j")


def scaled_weather(weather, scale: int):
    from pyspark.sql import functions as F

    copies = weather.sparkSession.range(scale).select(F.col("id").cast("int").alias("__k"))
    df = weather.crossJoin(F.broadcast(copies))
    df = df.withColumn("time_hour", F.timestamp_add("MONTH", F.col("__k") * 12, F.col("time_hour")))
    if "time_local" in df.columns:
        df = df.withColumn("time_local", F.timestamp_add("MONTH", F.col("__k") * 12, F.col("time_local")))
    df = df.withColumn("year", F.col("year") + F.col("__k"))
    # Two copies can meet on one UTC hour around DST changes: keep one reading per key.
    return df.drop("__k").dropDuplicates(["origin", "time_hour"])


def ensure_silver(settings) -> None:
    from pipelines.lakehouse import open_lakehouse
    from pipelines.landing import land_sample
    from pipelines.runner import new_run_id, run_pipeline, select_tables

    lh = open_lakehouse(settings)
    if all(lh.exists(f"silver.{t}") for t in ("flights", "weather", "planes", "airlines")):
        return
    print(f"building bronze and silver in {settings.lakehouse_dir} first ...", flush=True)
    land_sample(settings)
    run_pipeline(lh, select_tables(settings, ["bronze", "silver"]), new_run_id())


def bench(source_settings, scale: int, work: Path) -> dict[str, float]:
    from pyspark.sql import functions as F

    from pipelines.lakehouse import Lakehouse, open_lakehouse
    from pipelines.runner import run_table

    src = open_lakehouse(source_settings)
    settings = dataclasses.replace(
        source_settings,
        paths=dataclasses.replace(source_settings.paths, home=str(work), lakehouse=str(work / "lakehouse")),
    )
    lh = Lakehouse(settings, src.store)
    flights = scaled_flights(src.read("silver.flights"), scale)
    weather = scaled_weather(src.read("silver.weather"), scale)
    last_year = 2013 + scale - 1
    is_last = (F.year("flight_date") == last_year) & (F.month("flight_date") == 12)
    w_last = (
        (F.year("time_hour") == last_year) & (F.month("time_hour") == 12) & (F.dayofmonth("time_hour") > 1)
    )

    started = time.perf_counter()
    commit = {"medallion.run_id": "bench-1"}
    lh.write(
        flights.where(~is_last).withColumn("_run_id", F.lit("bench-1")),
        "silver.flights",
        "overwrite",
        commit_info=commit,
    )
    lh.write(
        weather.where(~w_last).withColumn("_run_id", F.lit("bench-1")),
        "silver.weather",
        "overwrite",
        commit_info=commit,
    )
    for t in ("planes", "airlines"):
        lh.write(
            src.read(f"silver.{t}").withColumn("_run_id", F.lit("bench-1")),
            f"silver.{t}",
            "overwrite",
            commit_info=commit,
        )
    rows = lh.read("silver.flights").count()
    print(
        f"scale {scale}: {rows:,} silver flights before the last month (generated in {time.perf_counter() - started:.1f} s)",
        flush=True,
    )

    figures: dict[str, float] = {}
    for phase in ("full", "incremental"):
        if phase == "incremental":
            commit = {"medallion.run_id": "bench-2"}
            lh.write(
                flights.where(is_last).withColumn("_run_id", F.lit("bench-2")),
                "silver.flights",
                "append",
                commit_info=commit,
            )
            lh.write(
                weather.where(w_last).withColumn("_run_id", F.lit("bench-2")),
                "silver.weather",
                "append",
                commit_info=commit,
            )
        total = 0.0
        for name in GOLD:
            t0 = time.perf_counter()
            result = run_table(lh, name, f"bench-{phase}")
            took = time.perf_counter() - t0
            total += took
            print(f"  {phase:<11} {name:<34} {took:7.1f} s  {result.status}", flush=True)
        figures[phase] = total
        print(f"  {phase:<11} {'gold total':<34} {total:7.1f} s", flush=True)
    features = lh.read("gold.flight_features").count()
    print(
        f"scale {scale}: full gold build {figures['full']:.1f} s, incremental (one month) {figures['incremental']:.1f} s "
        f"= {100 * figures['incremental'] / figures['full']:.1f}% of full; {features:,} feature rows",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=int, action="append", help="replication factor; repeatable (default 1 and 10)"
    )
    parser.add_argument("--silver-home", default=os.environ.get("MEDALLION_HOME", ".medallion"))
    parser.add_argument("--work", help="scratch folder (default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    os.environ["MEDALLION_HOME"] = str(Path(args.silver_home).absolute())
    from pipelines.config import load_settings

    settings = load_settings("local")
    ensure_silver(settings)
    work_root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gold-bench-"))
    summary = []
    try:
        for scale in args.scale or [1, 10]:
            work = work_root / f"x{scale}"
            shutil.rmtree(work, ignore_errors=True)
            figures = bench(settings, scale, work)
            summary.append((scale, figures))
            shutil.rmtree(work, ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work_root, ignore_errors=True)
    print("\nscale  full gold (s)  incremental one month (s)  incremental / full")
    for scale, f in summary:
        print(
            f"{scale:>5}  {f['full']:>13.1f}  {f['incremental']:>25.1f}  {100 * f['incremental'] / f['full']:>17.1f}%"
        )


if __name__ == "__main__":
    main()
