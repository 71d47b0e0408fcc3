"""What the notebooks show, as pure DataFrame functions (the notebooks only read tables and call these).

- bronze / silver exploration (notebooks/01): files and rescued records per table, quarantine reasons,
  the latest data-quality result of every check;
- analyst queries on gold (notebooks/02): carrier ranking, worst routes, delay by weather;
- model report (notebooks/03): predictions joined to what happened, confusion counts, calibration.

No reads, writes or actions here: each function takes DataFrames and returns one.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# ---- bronze / silver ---------------------------------------------------------------------------------


def files_summary(bronze: DataFrame) -> DataFrame:
    """Per landed file: rows, rescued (unparsable) records, when it was ingested and by which run."""
    return (
        bronze.groupBy("_source_file")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count("_corrupt_record").alias("rescued"),
            F.min("_ingested_at").alias("first_ingested_at"),
            F.max("_ingested_at").alias("last_ingested_at"),
            F.countDistinct("_run_id").alias("runs"),
        )
        .orderBy("_source_file")
    )


def rescued_records(bronze: DataFrame) -> DataFrame:
    """Records that did not parse into the source's columns, with the reason (bronze never drops them)."""
    return bronze.where(F.col("_corrupt_record").isNotNull()).select(
        "_source_file", "_rescue_reason", "_corrupt_record"
    )


def quarantine_reasons(quarantine: DataFrame) -> DataFrame:
    """Quarantined rows per failed check (a row that failed two checks counts for both)."""
    return (
        quarantine.select(F.explode("failed_checks").alias("check_name"))
        .groupBy("check_name")
        .agg(F.count(F.lit(1)).alias("rows"))
        .orderBy(F.desc("rows"), "check_name")
    )


def latest_dq_results(dq_results: DataFrame) -> DataFrame:
    """The most recent result of every (table, check)."""
    newest = Window.partitionBy("table_name", "check_name").orderBy(F.desc("checked_at"))
    return (
        dq_results.withColumn("_rank", F.row_number().over(newest))
        .where("_rank = 1")
        .select(
            "table_name",
            "check_name",
            "check_type",
            "action",
            "rows_checked",
            "rows_failed",
            "passed",
            "checked_at",
            "run_id",
        )  # fmt: skip
        .orderBy("table_name", "check_name")
    )


# ---- gold: analyst queries -----------------------------------------------------------------------------


def carrier_ranking(performance: DataFrame, year: int | None = None) -> DataFrame:
    """Carriers over the year's months (gold.carrier_monthly_performance), best on-time share first.

    Shares and averages are re-aggregated from the monthly counts (on-time / completed flights, delays
    weighted by completed flights), never averaged over months."""
    rows = performance if year is None else performance.where(F.col("year") == year)
    return (
        rows.groupBy("carrier")
        .agg(
            F.sum("flights").alias("flights"),
            (F.sum("on_time_flights") / F.sum("completed_flights")).alias("on_time_share"),
            (F.sum(F.col("avg_arr_delay") * F.col("completed_flights")) / F.sum("completed_flights")).alias(
                "avg_arr_delay"
            ),
            F.max("p90_arr_delay").alias("worst_month_p90_arr_delay"),
            F.sum("cancelled_flights").alias("cancelled_flights"),
        )
        .orderBy(F.desc("on_time_share"), "carrier")
    )


def worst_routes(route_daily: DataFrame, min_flights: int = 100, limit: int = 20) -> DataFrame:
    """Routes (origin -> dest) with the highest mean arrival delay over their completed flights
    (gold.route_daily_stats)."""
    return (
        route_daily.groupBy("origin", "dest")
        .agg(
            F.sum("flights").alias("flights"),
            (F.sum(F.col("avg_arr_delay") * F.col("completed_flights")) / F.sum("completed_flights")).alias(
                "avg_arr_delay"
            ),
        )
        .where(F.col("flights") >= min_flights)
        .orderBy(F.desc("avg_arr_delay"), "origin", "dest")
        .limit(limit)
    )


def delay_by_weather(weather_delays: DataFrame, by: str = "precipitation") -> DataFrame:
    """Mean departure delay per weather bucket (visibility, wind or precipitation) and airport
    (gold.airport_weather_delays), re-aggregated over months from the delay totals."""
    return (
        weather_delays.groupBy("origin", by)
        .agg(
            F.sum("flights").alias("flights"),
            (F.sum("total_dep_delay_min") / F.sum("flights")).alias("avg_dep_delay"),
            (F.sum("delayed_flights") / F.sum("flights")).alias("delayed_share"),
        )
        .orderBy("origin", by)
    )


# ---- ML: model report ---------------------------------------------------------------------------------


def prediction_outcomes(predictions: DataFrame, features: DataFrame, label: str = "label") -> DataFrame:
    """Each scored flight with what happened (the features table's label), where the label is known."""
    known = features.where(F.col(label).isNotNull()).select("flight_id", "flight_date", "carrier", label)
    return predictions.join(known, "flight_id").select(
        "flight_id", "flight_date", "carrier", "model_version", "probability", "predicted_label",
        F.col(label).cast("int").alias("actual"),
    )  # fmt: skip


def confusion_counts(outcomes: DataFrame) -> DataFrame:
    """One row per model version: true/false positives/negatives, precision, recall, accuracy."""
    pred, actual = F.col("predicted_label").cast("int"), F.col("actual")

    def count_when(cond: Column) -> Column:
        return F.sum(F.when(cond, 1).otherwise(0))

    counts = outcomes.groupBy("model_version").agg(
        count_when((pred == 1) & (actual == 1)).alias("tp"),
        count_when((pred == 1) & (actual == 0)).alias("fp"),
        count_when((pred == 0) & (actual == 0)).alias("tn"),
        count_when((pred == 0) & (actual == 1)).alias("fn"),
    )
    return counts.select(
        "*",
        (F.col("tp") / (F.col("tp") + F.col("fp"))).alias("precision"),
        (F.col("tp") / (F.col("tp") + F.col("fn"))).alias("recall"),
        ((F.col("tp") + F.col("tn")) / (F.col("tp") + F.col("fp") + F.col("tn") + F.col("fn"))).alias(
            "accuracy"
        ),
    ).orderBy("model_version")


def calibration(outcomes: DataFrame, bins: int = 10) -> DataFrame:
    """Predicted probability against the observed delay rate, in ``bins`` equal-width probability bins."""
    bucket = F.least(F.floor(F.col("probability") * bins), F.lit(bins - 1)).cast("int")
    return (
        outcomes.withColumn("bin", bucket)
        .groupBy("bin")
        .agg(
            F.count(F.lit(1)).alias("flights"),
            F.avg("probability").alias("mean_probability"),
            F.avg("actual").alias("observed_rate"),
        )
        .orderBy("bin")
    )
