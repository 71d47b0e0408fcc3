"""Analyst aggregates: carrier performance per month, route statistics per day, delays against weather.

Definitions used throughout (also in the column comments of conf/tables/gold.yml):

- a flight is *cancelled* when it never departed (silver ``cancelled``); it is *completed* when its arrival
  delay is known (diverted flights have neither);
- *on time*: arrival delay under 15 minutes; ``on_time_share`` = on-time flights / completed flights;
- delays are in minutes; averages and the 90th percentile (exact, linear interpolation like pandas'
  ``quantile(0.9)``) are over the flights whose delay is known.

Incremental: each table is keyed by a time slice (month or day). Only the slices touched by the changed input
rows are recomputed (from the full inputs) and replaced; everything else stays as written.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.gold.common import (
    DELAY_THRESHOLD_MIN,
    Changes,
    changed_inputs,
    month_start,
    only_keys,
    share,
)
from pipelines.outputs import TableOutput


def _delay_metrics() -> list[Column]:
    completed = F.count("arr_delay")
    on_time = F.count(F.when(F.col("arr_delay") < DELAY_THRESHOLD_MIN, 1))
    return [
        F.count(F.lit(1)).alias("flights"),
        F.count(F.when(F.col("cancelled"), 1)).alias("cancelled_flights"),
        completed.alias("completed_flights"),
        on_time.alias("on_time_flights"),
        share(on_time, completed).alias("on_time_share"),
        share(F.count(F.when(F.col("cancelled"), 1)), F.count(F.lit(1))).alias("cancellation_rate"),
        F.avg("dep_delay").alias("avg_dep_delay"),
        F.percentile("dep_delay", 0.9).cast("double").alias("p90_dep_delay"),
        F.avg("arr_delay").alias("avg_arr_delay"),
        F.percentile("arr_delay", 0.9).cast("double").alias("p90_arr_delay"),
    ]


# ---- gold.carrier_monthly_performance ---------------------------------------------------------------------


def carrier_monthly_performance(
    flights: DataFrame, airlines: DataFrame, changes: Changes = None
) -> DataFrame | TableOutput:
    """Flights, on-time share, average and p90 delays and cancellations per carrier and month."""
    f = flights.withColumn("month_start", month_start())
    delta = changed_inputs(changes, "flights", "airlines")
    affected = None
    if delta is not None:
        # Months of the changed flights, and every month of a carrier whose name changed.
        renamed = f.join(delta["airlines"].select("carrier").distinct(), "carrier", "left_semi")
        affected = (
            delta["flights"].select(month_start().alias("month_start")).union(renamed.select("month_start"))
        ).distinct()
        f = only_keys(f, affected, ["month_start"])
    names = airlines.select("carrier", F.col("name").alias("carrier_name"))
    out = (
        f.groupBy("month_start", "carrier")
        .agg(*_delay_metrics())
        .join(F.broadcast(names), "carrier", "left")
        .select(
            "month_start",
            F.year("month_start").alias("year"),
            F.month("month_start").alias("month"),
            "carrier",
            "carrier_name",
            "flights",
            "cancelled_flights",
            "completed_flights",
            "on_time_flights",
            "on_time_share",
            "cancellation_rate",
            "avg_dep_delay",
            "p90_dep_delay",
            "avg_arr_delay",
            "p90_arr_delay",
        )
    )
    if affected is None:
        return out
    return TableOutput(out, replace_values=affected, replace_column="month_start")


# ---- gold.route_daily_stats -------------------------------------------------------------------------------


def route_daily_stats(flights: DataFrame, changes: Changes = None) -> DataFrame | TableOutput:
    """Per origin, destination and local flight date: traffic, delays, cancellations."""
    delta = changed_inputs(changes, "flights")
    affected = None
    f = flights
    if delta is not None:
        affected = delta["flights"].select("flight_date").distinct()
        f = only_keys(f, affected, ["flight_date"])
    out = (
        f.groupBy("flight_date", "origin", "dest")
        .agg(
            F.count_distinct("carrier").alias("carriers"),
            *_delay_metrics(),
            F.max("arr_delay").alias("max_arr_delay"),
            F.avg("air_time").alias("avg_air_time"),
            F.max("distance").alias("distance"),
        )
        .select(
            "flight_date",
            "origin",
            "dest",
            "carriers",
            "flights",
            "cancelled_flights",
            "completed_flights",
            "on_time_flights",
            "on_time_share",
            "cancellation_rate",
            "avg_dep_delay",
            "avg_arr_delay",
            "p90_arr_delay",
            "max_arr_delay",
            "avg_air_time",
            "distance",
        )
    )
    if affected is None:
        return out
    return TableOutput(out, replace_values=affected, replace_column="flight_date")


# ---- gold.airport_weather_delays --------------------------------------------------------------------------

UNKNOWN = "unknown"


def visibility_bucket(visib: Column) -> Column:
    """Miles of visibility: fog (< 1), poor (1-3), reduced (3-6), moderate (6-10), clear (10 and more)."""
    return (
        F.when(visib.isNull(), F.lit(UNKNOWN))
        .when(visib < 1, "fog (<1 mi)")
        .when(visib < 3, "poor (1-3 mi)")
        .when(visib < 6, "reduced (3-6 mi)")
        .when(visib < 10, "moderate (6-10 mi)")
        .otherwise("clear (10 mi)")
    )


def wind_bucket(wind_speed: Column) -> Column:
    """Wind speed (mph): calm (< 10), breezy (10-20), strong (20-30), gale (30 and more)."""
    return (
        F.when(wind_speed.isNull(), F.lit(UNKNOWN))
        .when(wind_speed < 10, "calm (<10 mph)")
        .when(wind_speed < 20, "breezy (10-20 mph)")
        .when(wind_speed < 30, "strong (20-30 mph)")
        .otherwise("gale (30+ mph)")
    )


def precip_bucket(precip: Column) -> Column:
    """Precipitation in the hour (inches): none (0), light (< 0.1), moderate (0.1-0.3), heavy (0.3 and more)."""
    return (
        F.when(precip.isNull(), F.lit(UNKNOWN))
        .when(precip <= 0, "none")
        .when(precip < 0.1, "light (<0.1 in)")
        .when(precip < 0.3, "moderate (0.1-0.3 in)")
        .otherwise("heavy (0.3+ in)")
    )


def airport_weather_delays(
    flights: DataFrame, weather: DataFrame, changes: Changes = None
) -> DataFrame | TableOutput:
    """Departure delay against the weather at the origin in the scheduled departure hour, per month.

    Departed flights only (known departure delay). Weather joins on (origin, time_hour), unique in
    silver.weather, so a flight is counted once; a flight without a reading falls in the ``unknown`` buckets.
    """
    f = flights.where(F.col("dep_delay").isNotNull()).withColumn("month_start", month_start())
    delta = changed_inputs(changes, "flights", "weather")
    affected = None
    if delta is not None:
        rewetted = f.join(
            delta["weather"].select("origin", "time_hour").distinct(), ["origin", "time_hour"], "left_semi"
        )
        affected = (
            delta["flights"].select(month_start().alias("month_start")).union(rewetted.select("month_start"))
        ).distinct()
        f = only_keys(f, affected, ["month_start"])
    w = weather.select("origin", "time_hour", "visib", "wind_speed", "precip")
    joined = f.join(w, ["origin", "time_hour"], "left")
    delayed = F.count(F.when(F.col("dep_delay") >= DELAY_THRESHOLD_MIN, 1))
    out = (
        joined.withColumn("visibility", visibility_bucket(F.col("visib")))
        .withColumn("wind", wind_bucket(F.col("wind_speed")))
        .withColumn("precipitation", precip_bucket(F.col("precip")))
        .groupBy("month_start", "origin", "visibility", "wind", "precipitation")
        .agg(
            F.count(F.lit(1)).alias("flights"),
            delayed.alias("delayed_flights"),
            share(delayed, F.count(F.lit(1))).alias("delayed_share"),
            F.avg("dep_delay").alias("avg_dep_delay"),
            F.percentile("dep_delay", 0.9).cast("double").alias("p90_dep_delay"),
            F.sum("dep_delay").cast("long").alias("total_dep_delay_min"),
            F.avg("visib").alias("avg_visib"),
            F.avg("wind_speed").alias("avg_wind_speed"),
            F.avg("precip").alias("avg_precip"),
        )
    )
    if affected is None:
        return out
    return TableOutput(out, replace_values=affected, replace_column="month_start")
