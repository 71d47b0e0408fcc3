"""Small silver-shaped rows for the gold tests (the silver columns gold reads)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

UTC = dt.UTC
FLIGHTS_DDL = (
    "flight_id string, flight_date date, year int, month int, day int, carrier string, flight int, "
    "tailnum string, origin string, dest string, dep_delay int, arr_delay int, air_time int, distance int, "
    "time_hour timestamp, sched_dep_local timestamp_ntz, sched_dep_utc timestamp, arr_utc timestamp, "
    "cancelled boolean, _run_id string"
)
WEATHER_DDL = (
    "origin string, time_hour timestamp, temp double, wind_speed double, precip double, visib double, "
    "_run_id string"
)
PLANES_DDL = (
    "tailnum string, year_built int, valid_from timestamp, valid_to timestamp, is_current boolean, "
    "_run_id string"
)
AIRLINES_DDL = "carrier string, name string, _run_id string"


def flight(
    dep_utc: dt.datetime,
    *,
    carrier: str = "UA",
    number: int = 1,
    origin: str = "JFK",
    dest: str = "LAX",
    minutes: int = 360,
    dep_delay: int | None = 0,
    arr_delay: int | None = 0,
    tailnum: str | None = "N1",
    distance: int = 2475,
    run_id: str = "r1",
) -> tuple[Any, ...]:
    """One silver.flights row: scheduled departure ``dep_utc`` (UTC), New York local = UTC - 5 h."""
    dep_utc = dep_utc.replace(tzinfo=UTC)
    local = dep_utc.replace(tzinfo=None) - dt.timedelta(hours=5)
    day = local.date()
    arr = None if arr_delay is None else dep_utc + dt.timedelta(minutes=minutes + arr_delay)
    return (
        f"{day:%Y%m%d}-{carrier}-{number}-{origin}",
        day,
        day.year,
        day.month,
        day.day,
        carrier,
        number,
        tailnum,
        origin,
        dest,
        dep_delay,
        arr_delay,
        None if arr_delay is None else minutes - 20,
        distance,
        dep_utc.replace(minute=0, second=0, microsecond=0),
        local,
        dep_utc,
        arr,
        dep_delay is None,
        run_id,
    )


def month_of_flights(year: int, month: int, days: int, run_id: str, rng: random.Random) -> tuple[list, list]:
    """Four flights a day (two carriers, three routes) with their weather readings, 30% late, 5% cancelled."""
    flights, weather = [], []
    for day in range(1, days + 1):
        for n, (carrier, origin, dest) in enumerate(
            [("UA", "JFK", "LAX"), ("UA", "EWR", "ORD"), ("AA", "JFK", "LAX"), ("AA", "LGA", "ORD")]
        ):
            dep = dt.datetime(year, month, day, 12 + n, 0)
            late = rng.random() < 0.3
            cancelled = rng.random() < 0.05
            flights.append(
                flight(
                    dep,
                    carrier=carrier,
                    number=100 + n,
                    origin=origin,
                    dest=dest,
                    minutes=300 if dest == "LAX" else 150,
                    dep_delay=None if cancelled else rng.randint(-5, 60 if late else 10),
                    arr_delay=None if cancelled else rng.randint(15, 120) if late else rng.randint(-20, 14),
                    tailnum=f"N{n}",
                    run_id=run_id,
                )
            )
            weather.append(
                (origin, dep.replace(tzinfo=UTC), 40.0, rng.choice([5.0, 15.0, 35.0]), 0.0, 10.0, run_id)
            )
    return flights, weather
