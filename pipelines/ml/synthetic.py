"""A synthetic ``gold.flight_features`` table (same schema as the gold contract) with a learnable signal, for
tests and benchmarks while the real gold layer is built elsewhere. Deterministic for a given (rows, seed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

FEATURES_DDL = (
    "flight_id string, flight_date date, sched_dep_utc timestamp, carrier string, origin string, dest string, "
    "distance int, sched_hour int, day_of_week int, month int, plane_age int, temp double, wind_speed double, "
    "precip double, visib double, route_delay_rate_7d double, route_delay_rate_30d double, "
    "carrier_delay_rate_7d double, carrier_delay_rate_30d double, arr_delay int, label int"
)
DQ_DDL = (
    "run_id string, table_name string, table_version long, check_name string, check_type string, action string, "
    "rows_checked long, rows_failed long, passed boolean, checked_at timestamp"
)

CARRIERS = ["AA", "B6", "DL", "EV", "MQ", "UA", "US", "WN", "9E", "VX"]
ORIGINS = ["EWR", "JFK", "LGA"]
DESTS = ["ATL", "BOS", "CLT", "DCA", "DEN", "DTW", "FLL", "IAH", "LAX", "MCO", "MIA", "ORD", "SFO", "SEA"]


def flight_features_arrow(rows: int, seed: int = 7, year: int = 2013) -> Any:
    """A pyarrow Table of ``rows`` flights over the months of ``year`` with a learnable delay signal."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    day = rng.integers(0, 365, rows)
    dates = np.array([date(year, 1, 1) + timedelta(days=int(d)) for d in range(365)])[day]
    hour = rng.integers(5, 23, rows)
    carrier_i = rng.integers(0, len(CARRIERS), rows)
    origin_i = rng.integers(0, len(ORIGINS), rows)
    dest_i = rng.integers(0, len(DESTS), rows)
    carrier_effect = np.linspace(-0.6, 0.8, len(CARRIERS))[carrier_i]
    dest_effect = np.linspace(-0.4, 0.5, len(DESTS))[dest_i]
    precip = np.round(rng.exponential(0.02, rows) * (rng.random(rows) < 0.2), 3)
    wind = np.round(rng.gamma(2.0, 5.0, rows), 2)
    visib = np.where(
        rng.random(rows) < 0.05, np.nan, np.round(np.clip(10 - rng.exponential(1.5, rows), 0, 10), 2)
    )
    route_rate = np.clip(0.2 + 0.15 * dest_effect + rng.normal(0, 0.05, rows), 0, 1)
    carrier_rate = np.clip(0.2 + 0.12 * carrier_effect + rng.normal(0, 0.04, rows), 0, 1)
    logit = (
        -1.6
        + 0.22 * (hour - 12)
        + 1.6 * carrier_effect
        + 1.6 * dest_effect
        + 40 * precip
        + 0.06 * (wind - 10)
        - 0.3 * np.nan_to_num(visib - 10, nan=-1)
        + 4.0 * (route_rate - 0.2)
    )
    late = rng.random(rows) < 1 / (1 + np.exp(-logit))
    arr_delay = (
        np.where(late, 15 + rng.exponential(40, rows), rng.normal(-5, 9, rows)).round().astype("int32")
    )
    plane_age = rng.integers(0, 30, rows).astype("float")
    plane_age[rng.random(rows) < 0.1] = np.nan
    carrier_30d = np.where(
        rng.random(rows) < 0.03, np.nan, np.round(carrier_rate + rng.normal(0, 0.02, rows), 4)
    )
    minute = rng.integers(0, 60, rows)
    sched = [
        datetime(d.year, d.month, d.day, int(h), int(m), tzinfo=UTC)
        for d, h, m in zip(dates, hour, minute, strict=True)
    ]
    months = np.array([d.month for d in dates], dtype="int32")
    dows = np.array([d.isoweekday() for d in dates], dtype="int32")
    distance = (np.linspace(180, 2600, len(DESTS))[dest_i] + rng.integers(-20, 20, rows)).astype("int32")

    def int_or_null(values: Any) -> Any:
        return pa.array([None if np.isnan(v) else int(v) for v in values], pa.int32())

    return pa.table(
        {
            "flight_id": pa.array([f"F{seed:02d}{i:08d}" for i in range(rows)]),
            "flight_date": pa.array(list(dates), pa.date32()),
            "sched_dep_utc": pa.array(sched, pa.timestamp("us", tz="UTC")),
            "carrier": pa.array([CARRIERS[i] for i in carrier_i]),
            "origin": pa.array([ORIGINS[i] for i in origin_i]),
            "dest": pa.array([DESTS[i] for i in dest_i]),
            "distance": pa.array(distance, pa.int32()),
            "sched_hour": pa.array(hour.astype("int32"), pa.int32()),
            "day_of_week": pa.array(dows, pa.int32()),
            "month": pa.array(months, pa.int32()),
            "plane_age": int_or_null(plane_age),
            "temp": pa.array(
                np.round(50 + 25 * np.sin((day - 100) / 365 * 2 * np.pi) + rng.normal(0, 8, rows), 1)
            ),
            "wind_speed": pa.array(wind),
            "precip": pa.array(precip),
            "visib": pa.array(visib, from_pandas=True),
            "route_delay_rate_7d": pa.array(
                np.round(np.clip(route_rate + rng.normal(0, 0.05, rows), 0, 1), 4)
            ),
            "route_delay_rate_30d": pa.array(np.round(route_rate, 4)),
            "carrier_delay_rate_7d": pa.array(
                np.round(np.clip(carrier_rate + rng.normal(0, 0.05, rows), 0, 1), 4)
            ),
            "carrier_delay_rate_30d": pa.array(carrier_30d, from_pandas=True),
            "arr_delay": pa.array(arr_delay, pa.int32()),
            "label": pa.array((arr_delay >= 15).astype("int32"), pa.int32()),
        }
    )


def flight_features(spark: SparkSession, rows: int, seed: int = 7) -> DataFrame:
    """The synthetic table as a Spark DataFrame with the gold schema."""
    from pyspark.sql import functions as F

    table = flight_features_arrow(rows, seed)
    df = spark.createDataFrame(table)
    ddl = dict(part.strip().split(" ", 1) for part in FEATURES_DDL.split(","))
    return df.select(*[F.col(name).cast(tp).alias(name) for name, tp in ddl.items()])


def dq_rows(
    spark: SparkSession,
    table: str,
    version: int | None,
    *,
    run_id: str = "dq-run-1",
    failed: dict[str, str] | None = None,
    checks: tuple[tuple[str, str], ...] = (
        ("flight_id_unique", "fail"),
        ("label_not_null", "fail"),
        ("temp_range", "warn"),
    ),
) -> DataFrame:
    """DQ result rows (the ``gold.dq_results`` schema) for one run over (table, version); ``failed`` maps
    check names to the action of a check that fails (added when not in ``checks``)."""
    failed = failed or {}
    all_checks = dict(checks)
    all_checks.update(failed)
    now = datetime.now(UTC)
    rows = [
        (
            run_id,
            table,
            version,
            name,
            "row",
            action,
            1000,
            5 if name in failed else 0,
            name not in failed,
            now,
        )
        for name, action in all_checks.items()
    ]
    return spark.createDataFrame(rows, DQ_DDL)
