"""Both Delta engines beside plain Spark parquet: write, read, a 100k-row MERGE; and the full sample run.

    python benchmarks/storage_bench.py [--rows 1000000 5000000] [--repeat 3] [--out DIR] [--pipeline]

Prints, per size, the best of ``--repeat`` runs in seconds for plain parquet, the offline engine (Spark parquet
+ deltalake commit) and the native engine (delta-spark; needs the jars of `medallion setup`), with each
engine's ratio to parquet. Every run uses a freshly built DataFrame (Spark reuses shuffle files of a DataFrame
object collected before). Both engines share the one session (with the jars, a native one, which serves the
offline engine too). ``--pipeline`` then times `medallion run` on the full sample once per engine, each in
its own process and home (landing the sample is not counted).
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
from pipelines.lakehouse import MergeSpec, TableRef  # noqa: E402
from pipelines.lakehouse.native import NativeDeltaStore  # noqa: E402
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


def pipeline_seconds(engine: str, scratch: Path) -> tuple[float, float]:
    """(seconds of the table phase, seconds of the whole `medallion run`) on the full sample for ``engine``."""
    import re
    import subprocess

    home = scratch / f"pipeline-{engine}"
    env = {**os.environ, "MEDALLION_HOME": str(home), "MEDALLION_ENGINE": engine}
    subprocess.run([sys.executable, "-m", "pipelines.cli", "land"], env=env, check=True, capture_output=True)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--no-land"], env=env, capture_output=True, text=True
    )
    total = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"medallion run on {engine} failed: {done.stderr[-2000:]}")
    match = re.search(r"rows written in ([0-9.]+) s", done.stdout)
    return (float(match.group(1)) if match else float("nan")), total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--merge-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", help="scratch folder (default: a temporary folder, removed at the end)")
    parser.add_argument("--pipeline", action="store_true", help="also time the full sample run per engine")
    args = parser.parse_args()

    scratch = Path(args.out or tempfile.mkdtemp(prefix="medallion-bench-"))
    os.environ["MEDALLION_HOME"] = str(scratch)
    settings = load_settings("local")
    spark, info = get_session(settings)
    stores = {"offline": OfflineDeltaStore(spark, settings.storage.offline)}
    if info.engine == "native":
        stores["native"] = NativeDeltaStore(spark)
    else:
        print(f"native engine not measured: {info.reason}", flush=True)
    print(
        f"session={info.engine} master={settings.spark.master} cores={os.cpu_count()} scratch={scratch}",
        flush=True,
    )
    header = f"{'rows':>10} {'operation':<28} {'parquet s':>10}"
    for engine in stores:
        header += f" {engine + ' s':>10} {'ratio':>6}"
    print(header, flush=True)

    def line(rows: int, operation: str, parquet: float | None, figures: dict[str, float]) -> None:
        out = f"{rows:>10,} {operation:<28} {parquet if parquet is not None else float('nan'):>10.2f}"
        for engine in stores:
            ratio = f"{figures[engine] / parquet:>6.2f}" if parquet else f"{'-':>6}"
            out += f" {figures[engine]:>10.2f} {ratio}"
        print(out, flush=True)

    try:
        for rows in args.rows:
            generated(spark, 1000).write.mode("overwrite").parquet(str(scratch / "warmup"))

            def parquet_write(i: int, rows: int = rows) -> None:
                generated(spark, rows).write.mode("overwrite").parquet(str(scratch / f"pq-{rows}-{i}"))

            def ref(engine: str, rows: int, i: int) -> TableRef:
                return TableRef("bench", "path", str(scratch / f"{engine}-{rows}-{i}"))

            pq_w = best(args.repeat, parquet_write)
            writes = {
                engine: best(
                    args.repeat,
                    lambda i, s=store, e=engine, n=rows: s.write(generated(spark, n), ref(e, n, i)),
                )
                for engine, store in stores.items()
            }
            line(rows, "write", pq_w, writes)

            def parquet_read(_i: int, rows: int = rows) -> None:
                spark.read.parquet(str(scratch / f"pq-{rows}-0")).selectExpr(*AGG).collect()

            pq_r = best(args.repeat, parquet_read)
            reads = {
                engine: best(
                    args.repeat,
                    lambda _i, s=store, e=engine, n=rows: s.read(ref(e, n, 0)).selectExpr(*AGG).collect(),
                )
                for engine, store in stores.items()
            }
            line(rows, "read (full scan aggregate)", pq_r, reads)

            def merge(i: int, store: object, engine: str, rows: int = rows) -> None:
                # Half of the source updates existing ids, half inserts new ones.
                half = args.merge_rows // 2
                source = generated(spark, half, offset=rows // 2).unionByName(
                    generated(spark, half, offset=rows + i * half)
                )
                source = source.selectExpr(
                    "id", "carrier", "origin", "delay + 1 AS delay", "distance", "scheduled"
                )
                store.merge(source, ref(engine, rows, i), MergeSpec(keys=["id"]))  # type: ignore[attr-defined]

            merges = {
                engine: best(args.repeat, lambda i, s=store, e=engine: merge(i, s, e))
                for engine, store in stores.items()
            }
            line(rows, f"merge {args.merge_rows:,} rows (upsert)", None, merges)
            for path in scratch.glob(f"*-{rows}-*"):
                shutil.rmtree(path, ignore_errors=True)
        if args.pipeline:
            stop_session()
            print(f"{'engine':<10} {'medallion run: tables s':>24} {'whole run s':>12}", flush=True)
            for engine in stores:
                tables, total = pipeline_seconds(engine, scratch)
                print(f"{engine:<10} {tables:>24.1f} {total:>12.1f}", flush=True)
    finally:
        stop_session()
        if not args.out:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
