"""Offline Delta engine vs plain Spark parquet: write, read, and a 100k-row MERGE.

    python benchmarks/storage_bench.py [--rows 1000000 5000000] [--repeat 3] [--out DIR]

Prints, per size, the best of ``--repeat`` runs in seconds and the ratio to plain parquet. Every run uses a
freshly built DataFrame (Spark reuses shuffle files of a DataFrame object collected before). Targets from the
issue: write <= 1.15x plain parquet, read <= 1.2x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.config import load_settings  # noqa: E402
from pipelines.lakehouse import Lakehouse, MergeSpec, TableRef  # noqa: E402
from pipelines.lakehouse.offline import OfflineDeltaStore  # noqa: E402
from pipelines.session import get_session, stop_session  # noqa: E402

AGG = ("sum(delay) AS s", "count(*) AS n", "max(scheduled) AS m")


def generated(spark, rows: int, offset: int = 0):  # type: ignore[no-untyped-def]
    """Six columns: id, carrier, origin, delay, distance, scheduled (timestamp)."""
    return spark.range(offset, offset + rows).selectExpr(
        "id",
        "element_at(array('UA','AA','DL','B6','EV','MQ'), cast(id % 6 + 1 as int)) AS carrier",
        "element_at(array('EWR','JFK','LGA'), cast(id % 3 + 1 as int)) AS origin",
        "cast((id * 7919) % 180 - 30 as double) AS delay",
        "cast(id % 2500 + 80 as long) AS distance",
        "timestamp_seconds(1356998400 + id % 31536000) AS scheduled",
    )


def best(repeat: int, fn: Callable[[int], None]) -> float:
    times = []
    for i in range(repeat):
        started = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--merge-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", help="scratch folder (default: a temporary folder, removed at the end)")
    args = parser.parse_args()

    scratch = Path(args.out or tempfile.mkdtemp(prefix="medallion-bench-"))
    os.environ["MEDALLION_HOME"] = str(scratch)
    settings = load_settings("local")
    spark, info = get_session(settings)
    lh = Lakehouse(settings, OfflineDeltaStore(spark, settings.storage.offline))
    print(
        f"engine={info.engine} master={settings.spark.master} cores={os.cpu_count()} scratch={scratch}",
        flush=True,
    )
    print(f"{'rows':>10} {'operation':<28} {'parquet s':>10} {'delta s':>9} {'ratio':>7}", flush=True)
    try:
        for rows in args.rows:
            generated(spark, 1000).write.mode("overwrite").parquet(str(scratch / "warmup"))

            def parquet_write(i: int, rows: int = rows) -> None:
                generated(spark, rows).write.mode("overwrite").parquet(str(scratch / f"pq-{rows}-{i}"))

            def delta_write(i: int, rows: int = rows) -> None:
                lh.store.write(
                    generated(spark, rows), TableRef("bench", "path", str(scratch / f"dl-{rows}-{i}"))
                )

            pq_w = best(args.repeat, parquet_write)
            dl_w = best(args.repeat, delta_write)
            print(f"{rows:>10,} {'write':<28} {pq_w:>10.2f} {dl_w:>9.2f} {dl_w / pq_w:>7.2f}", flush=True)

            def parquet_read(_i: int, rows: int = rows) -> None:
                spark.read.parquet(str(scratch / f"pq-{rows}-0")).selectExpr(*AGG).collect()

            def delta_read(_i: int, rows: int = rows) -> None:
                lh.store.read(TableRef("bench", "path", str(scratch / f"dl-{rows}-0"))).selectExpr(
                    *AGG
                ).collect()

            pq_r = best(args.repeat, parquet_read)
            dl_r = best(args.repeat, delta_read)
            print(
                f"{rows:>10,} {'read (full scan aggregate)':<28} {pq_r:>10.2f} {dl_r:>9.2f} {dl_r / pq_r:>7.2f}",
                flush=True,
            )

            def merge(i: int, rows: int = rows) -> None:
                # Half of the source updates existing ids, half inserts new ones.
                half = args.merge_rows // 2
                source = generated(spark, half, offset=rows // 2).unionByName(
                    generated(spark, half, offset=rows + i * half)
                )
                source = source.selectExpr(
                    "id", "carrier", "origin", "delay + 1 AS delay", "distance", "scheduled"
                )
                lh.store.merge(
                    source, TableRef("bench", "path", str(scratch / f"dl-{rows}-{i}")), MergeSpec(keys=["id"])
                )

            mg = best(args.repeat, merge)
            print(
                f"{rows:>10,} {f'merge {args.merge_rows:,} rows (upsert)':<28} {'-':>10} {mg:>9.2f} {'-':>7}",
                flush=True,
            )
            for path in scratch.glob(f"*-{rows}-*"):
                shutil.rmtree(path, ignore_errors=True)
    finally:
        stop_session()
        if not args.out:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
