"""Helpers for data-quality tests: a lakehouse whose settings declare a small checked table.

Imported by tests as ``from dq_support import ...`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipelines.config import ExpectationConf, TableConf, WriteConf
from pipelines.lakehouse import Lakehouse

ROWS = [
    # id, code, amount, email, note
    (1, "A", 10.0, "a@x.org", "ok"),
    (2, "B", 250.0, "b@x.org", "too big"),
    (3, None, 5.0, "c@x.org", "no code"),
    (4, "Z", 7.0, "not-an-email", "bad code and email"),
    (5, "A", -1.0, None, "negative"),
]
DDL = "id int, code string, amount double, email string, note string, _run_id string"


def check(name: str, type: str, action: str = "warn", **kw: Any) -> ExpectationConf:
    return ExpectationConf(name=name, type=type, action=action, **kw)


def with_table(
    lh: Lakehouse, *checks: ExpectationConf, rows: list[tuple[Any, ...]] = ROWS, mode: str = "overwrite"
) -> Lakehouse:
    """A lakehouse whose settings declare silver.items = identity(bronze.items) with ``checks``."""
    spark = lh.spark
    lh.write(spark.createDataFrame([(*r, "r0") for r in rows], DDL), "bronze.items", "overwrite")
    codes = spark.createDataFrame([("A",), ("B",), ("Z",)], "code string")
    if not lh.exists("silver.codes"):
        lh.write(codes.withColumn("_run_id", codes.code), "silver.codes", "overwrite")
    tables = dict(lh.settings.tables)
    tables["bronze.items"] = TableConf(
        layer="bronze", description="test input", transform="pipelines.runner:identity"
    )
    tables["silver.codes"] = TableConf(
        layer="silver", description="codes", transform="pipelines.runner:identity"
    )
    tables["silver.items"] = TableConf(
        layer="silver",
        description="items under test",
        inputs=("bronze.items",),
        transform="pipelines.runner:identity",
        write=WriteConf(
            mode=mode,
            keys=("id",) if mode == "merge" else (),
            update_condition="s.amount <> t.amount OR s.note <> t.note" if mode == "merge" else None,
        ),
        expectations=tuple(checks),
        declared_in="conf/tables/test.yml",
    )
    settings = dataclasses.replace(lh.settings, tables=tables)
    return Lakehouse(settings, lh.store)


# Rows the counting transform has computed, read from the accumulator it registers (see counted_identity).
TRANSFORM_ROWS: dict[str, Any] = {}


def counted_identity(**inputs: Any) -> Any:
    """The identity transform, counting every row Spark computes it for (a Python UDF adding to an
    accumulator): how many times the batch was computed, whatever plan Spark chose."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    (df,) = inputs.values()
    accumulator = SparkSession.getActiveSession().sparkContext.accumulator(0)  # type: ignore[union-attr]
    TRANSFORM_ROWS["accumulator"] = accumulator

    counting = F.udf(lambda value: (accumulator.add(1), value)[1], "int")
    return df.withColumn("id", counting(F.col("id")))


def with_arrival_time(**inputs: Any) -> Any:
    """The identity transform plus an in-flight column (``__arrived_at``, never written) a check may judge."""
    from pyspark.sql import functions as F

    (df,) = inputs.values()
    return df.withColumn("__arrived_at", F.current_timestamp())


def results(lh: Lakehouse, run_id: str) -> dict[str, Any]:
    return {
        r["check_name"]: r
        for r in lh.read(lh.settings.system_table("dq_results")).where(f"run_id = '{run_id}'").collect()
    }


def ids(lh: Lakehouse, name: str = "silver.items") -> list[int]:
    return sorted(r["id"] for r in lh.read(name).collect())
