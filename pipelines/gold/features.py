"""gold.flight_features: one row per completed flight, with only what is known when it is scheduled to leave.

Contract with the ML side (names and types are fixed; see conf/tables/gold.yml for every column):
flight_id, flight_date, sched_dep_utc, carrier, origin, dest, distance, sched_hour, day_of_week, month,
plane_age, temp, wind_speed, precip, visib, route_delay_rate_7d, route_delay_rate_30d, carrier_delay_rate_7d,
carrier_delay_rate_30d, arr_delay (the target, as minutes) and label (1 when arr_delay >= 15).

No leakage. The trailing delay rates of a flight F count only flights that had ARRIVED before F's scheduled
departure: arrival instant ``arr_utc`` in ``[sched_dep_utc(F) - N days, sched_dep_utc(F))``. A flight that left
earlier but lands after F's scheduled departure does not count, nor does F itself. They are computed with one
range window over microseconds: arrivals (events: weight 1, delayed 0/1, at ``arr_utc``) and the flights to
describe (queries: weight 0, at ``sched_dep_utc``) are put in one sequence per route (and per carrier), and
each query counts the events in ``[t - N days, t)`` as (events before t) - (events before t - N days), two
growing frames ``RANGE BETWEEN UNBOUNDED PRECEDING AND -offset - 1 µs`` that Spark evaluates in one pass
(a sliding range frame re-aggregates its whole frame for every row: 60x slower here). Equal instants are
excluded by the -1 µs bound. Rates are null when nothing arrived in the window.

Other features: ``sched_hour`` is the scheduled departure hour on the New York wall clock; ``day_of_week``
is ISO (Monday = 1 ... Sunday = 7) of the local flight date; weather is the reading at the origin in the
scheduled departure hour (join on origin + time_hour, unique in silver.weather, so a row is never doubled);
``plane_age`` = flight year - year built, from the silver.planes version valid at the scheduled departure,
else the current version (the registry snapshot may postdate the flights).

Incremental: changed flights affect their own date and the dates whose 30-day windows can see their arrival
(an arrival lands at most ~3 days after the flight date, hence ``AFFECTED_DAYS_AFTER`` = 33); changed weather
readings and planes affect the flights that use them. Only those dates are recomputed and replaced; events are
read from ``EVENT_DAYS_BEFORE`` days before the first affected date.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.window import WindowSpec

from pipelines.gold.common import Changes, changed_inputs, is_delayed, only_keys, share
from pipelines.outputs import TableOutput

MICROS_PER_DAY = 86_400 * 1_000_000
WINDOWS_DAYS = (7, 30)
# A changed flight's arrival is within ~3 days of its flight date (delays up to ~30 h, overnight flights,
# UTC against local dates), so it can enter the 30-day windows of flights up to 33 days later.
AFFECTED_DAYS_AFTER = 33
# Events a query can see: flights dated up to 30 days (window) + 3 days (flight date to arrival) + 2 (margin)
# before the query's date.
EVENT_DAYS_BEFORE = 35

FEATURE_COLUMNS = (
    "flight_id", "flight_date", "sched_dep_utc", "carrier", "origin", "dest", "distance", "sched_hour",
    "day_of_week", "month", "plane_age", "temp", "wind_speed", "precip", "visib", "route_delay_rate_7d",
    "route_delay_rate_30d", "carrier_delay_rate_7d", "carrier_delay_rate_30d", "arr_delay", "label",
)  # fmt: skip


def iso_day_of_week(date_col: Column) -> Column:
    """Monday = 1 ... Sunday = 7 (Spark's dayofweek is Sunday = 1)."""
    return ((F.dayofweek(date_col) + 5) % 7 + 1).cast("int")


def plane_ages(flights: DataFrame, planes: DataFrame) -> DataFrame:
    """flights + ``plane_age``: from the version valid at the scheduled departure, else the current one."""
    versions = planes.where(F.col("tailnum").isNotNull() & F.col("valid_from").isNotNull()).select(
        F.col("tailnum").alias("__tail"),
        F.col("year_built").alias("__built_then"),
        F.col("valid_from").alias("__from"),
        F.col("valid_to").alias("__to"),
    )
    current = planes.where(F.col("tailnum").isNotNull() & F.col("is_current")).select(
        F.col("tailnum").alias("__tail_now"), F.col("year_built").alias("__built_now")
    )
    valid_then = (
        (F.col("tailnum") == F.col("__tail"))
        & (F.col("__from") <= F.col("sched_dep_utc"))
        & (F.col("__to").isNull() | (F.col("sched_dep_utc") < F.col("__to")))
    )
    out = flights.join(F.broadcast(versions), valid_then, "left").join(
        F.broadcast(current), F.col("tailnum") == F.col("__tail_now"), "left"
    )
    built = F.coalesce(F.col("__built_then"), F.col("__built_now"))
    return out.withColumn("plane_age", (F.year("flight_date") - built).cast("int")).drop(
        "__tail", "__built_then", "__from", "__to", "__tail_now", "__built_now"
    )


def trailing_delay_rates(queries: DataFrame, events: DataFrame) -> DataFrame:
    """``queries`` + route and carrier delay rates over the trailing 7 and 30 days of ARRIVALS.

    queries: one row per flight to describe (with sched_dep_utc, origin, dest, carrier, arr_utc, label, ...).
    events: completed flights (arr_utc, arr_delay, origin, dest, carrier) that may fall in a window.
    """
    t = "__t"
    q = (
        queries.withColumn(t, F.unix_micros("sched_dep_utc"))
        .withColumn("__n", F.lit(0))
        .withColumn("__d", F.lit(0))
        .withColumn("__query", F.lit(True))
    )
    e = events.where(F.col("arr_utc").isNotNull() & F.col("arr_delay").isNotNull()).select(
        "origin",
        "dest",
        "carrier",
        F.unix_micros("arr_utc").alias(t),
        F.lit(1).alias("__n"),
        is_delayed("arr_delay").alias("__d"),
        F.lit(False).alias("__query"),
    )
    seq = q.unionByName(e, allowMissingColumns=True)

    # A flight that (improbably) arrived before its own scheduled departure is in its own window: take it out.
    self_seen = F.coalesce(F.unix_micros("arr_utc") < F.col(t), F.lit(False)).cast("int")
    self_delayed = self_seen * is_delayed("arr_delay")
    for scope, keys in (("route", ["origin", "dest"]), ("carrier", ["carrier"])):
        order = Window.partitionBy(*keys).orderBy(t)

        def before(offset: int, column: str, order: WindowSpec = order) -> Column:
            """Sum of ``column`` over the events strictly before ``t - offset`` µs (a growing frame: O(n))."""
            frame = order.rangeBetween(Window.unboundedPreceding, -offset - 1)
            return F.coalesce(F.sum(column).over(frame), F.lit(0))

        for days in WINDOWS_DAYS:
            span = days * MICROS_PER_DAY
            n = before(0, "__n") - before(span, "__n") - self_seen
            d = before(0, "__d") - before(span, "__d") - self_delayed
            seq = seq.withColumn(f"{scope}_delay_rate_{days}d", share(d, n))
    return seq.where(F.col("__query")).drop(t, "__n", "__d", "__query")


def flight_features(
    flights: DataFrame, weather: DataFrame, planes: DataFrame, changes: Changes = None
) -> DataFrame | TableOutput:
    """Completed flights -> the feature row promised to the ML side (see the module docstring)."""
    completed = flights.where(F.col("arr_delay").isNotNull())
    delta = changed_inputs(changes, "flights", "weather", "planes")
    affected = None
    queries = completed
    events = completed
    if delta is not None:
        changed_dates = delta["flights"].select("flight_date")
        rewetted = flights.join(
            delta["weather"].select("origin", "time_hour").distinct(), ["origin", "time_hour"], "left_semi"
        ).select("flight_date")
        replaned = flights.join(delta["planes"].select("tailnum").distinct(), "tailnum", "left_semi").select(
            "flight_date"
        )
        spread = changed_dates.select(
            F.explode(F.sequence(F.col("flight_date"), F.date_add("flight_date", AFFECTED_DAYS_AFTER))).alias(
                "flight_date"
            )
        )
        affected = spread.union(rewetted).union(replaned).distinct()
        queries = only_keys(completed, affected, ["flight_date"])
        needed = affected.select(
            F.explode(F.sequence(F.date_sub("flight_date", EVENT_DAYS_BEFORE), F.col("flight_date"))).alias(
                "flight_date"
            )
        )
        events = only_keys(completed, needed, ["flight_date"])

    w = weather.select("origin", "time_hour", "temp", "wind_speed", "precip", "visib")
    described = plane_ages(queries, planes).join(w, ["origin", "time_hour"], "left")
    rated = trailing_delay_rates(described, events)
    out = rated.select(
        "flight_id",
        "flight_date",
        "sched_dep_utc",
        "carrier",
        "origin",
        "dest",
        F.col("distance").cast("int").alias("distance"),
        F.hour("sched_dep_local").cast("int").alias("sched_hour"),
        iso_day_of_week(F.col("flight_date")).alias("day_of_week"),
        F.month("flight_date").cast("int").alias("month"),
        "plane_age",
        *[F.col(c).cast("double").alias(c) for c in ("temp", "wind_speed", "precip", "visib")],
        "route_delay_rate_7d",
        "route_delay_rate_30d",
        "carrier_delay_rate_7d",
        "carrier_delay_rate_30d",
        F.col("arr_delay").cast("int").alias("arr_delay"),
        is_delayed("arr_delay").alias("label"),
    )
    if affected is None:
        return out
    return TableOutput(out, replace_values=affected, replace_column="flight_date")
