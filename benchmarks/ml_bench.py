"""Training and scoring time of the flight-delay model on a feature table the size of the real sample.

    python benchmarks/ml_bench.py [--rows 327346] [--search]

Writes a synthetic gold.flight_features (the gold contract's schema, ~327k completed flights like the
NYC 2013 sample) and its DQ results into a temporary home, then times `train` (gate, read + sample to pandas,
fit, MLflow logging, registration, promotion) and `score` (spark_udf + MERGE, twice: first write, then
re-scoring). Peak driver RSS during training: /proc/self/status VmHWM, reset before training via clear_refs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path


def rss_mb(field: str = "VmHWM") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=327_346, help="flights in the feature table")
    parser.add_argument("--search", action="store_true", help="also time `train --search` (ml.search grid)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    home = Path(tempfile.mkdtemp(prefix="ml-bench-"))
    os.environ["MEDALLION_HOME"] = str(home)
    try:
        from pipelines.config import load_settings
        from pipelines.lakehouse import open_lakehouse
        from pipelines.ml.score import score
        from pipelines.ml.synthetic import dq_rows, flight_features
        from pipelines.ml.train import train

        settings = load_settings("local")
        settings = dataclasses.replace(settings, spark=dataclasses.replace(settings.spark, master="local[2]"))
        lh = open_lakehouse(settings)
        started = time.perf_counter()
        version = lh.write(flight_features(lh.spark, args.rows), "gold.flight_features", "overwrite").version
        lh.write(dq_rows(lh.spark, "gold.flight_features", version), "gold.dq_results", "append")
        print(
            f"synthetic gold.flight_features: {args.rows:,} rows written in {time.perf_counter() - started:.1f} s"
        )
        print(f"driver RSS before training: {rss_mb('VmRSS'):.0f} MB (cores: {os.cpu_count()}, "
              f"ml.threads={settings.ml.threads}, model {settings.ml.model.kind} {dict(settings.ml.model.params)})")  # fmt: skip

        def say(line: str) -> None:
            print(f"  {line}")

        for label, kwargs in [("train (first: champion)", {}), ("train (second: vs champion)", {})]:
            peak_reset = reset_peak()
            started = time.perf_counter()
            result = train(settings, lh, say=say, **kwargs)
            seconds = time.perf_counter() - started
            peak = f"{rss_mb():.0f} MB" + ("" if peak_reset else " (process lifetime peak)")
            print(
                f"{label}: {seconds:.1f} s, val roc_auc {result.metrics['roc_auc']:.4f} "
                f"(baseline {result.baseline['roc_auc']:.4f}), peak driver RSS {peak}; {result.reason}"
            )
        if args.search:
            started = time.perf_counter()
            result = train(settings, lh, search=True, say=say)
            print(
                f"train --search ({len(result.child_run_ids)} candidates): {time.perf_counter() - started:.1f} s"
            )
        for label in ("score (first write)", "score again (MERGE)"):
            started = time.perf_counter()
            res = score(settings, lh)
            print(f"{label}: {res.rows_scored:,} flights in {time.perf_counter() - started:.1f} s")
        rows = lh.read(settings.ml.predictions_table).count()
        print(f"predictions table: {rows:,} rows")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
