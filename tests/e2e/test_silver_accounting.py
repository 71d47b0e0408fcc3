"""Exact row accounting of silver on the full sample, against numbers derived independently with pandas.

For each silver table: bronze rows = silver rows + quarantined + dropped + removed duplicates. The expected
quarantine and duplicate counts are computed here from the landed files with pandas, by the rules the checks
declare, not read from the pipeline's own output.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from deltalake import DeltaTable

pytestmark = pytest.mark.slow

NYC = {"EWR", "JFK", "LGA"}


@pytest.fixture(scope="module")
def built(full_run: tuple[Path, Any]) -> Path:
    return full_run[0]


def table(home: Path, layer: str, name: str) -> pd.DataFrame:
    path = home / "lakehouse" / layer / name
    if not (path / "_delta_log").is_dir():
        return pd.DataFrame()
    return DeltaTable(str(path)).to_pandas()


def dq(home: Path, table_name: str) -> dict[str, Any]:
    results = table(home, "gold", "dq_results")
    rows = results[results.table_name == table_name]
    return {r.check_name: r for r in rows.itertuples()}


def landed_csv(home: Path, source: str) -> pd.DataFrame:
    files = sorted(glob.glob(str(home / "landing" / source / "*.csv")))
    return pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files], ignore_index=True)


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s.replace("NA", None), errors="coerce")


def test_flights_accounting(built: Path) -> None:
    raw = landed_csv(built, "flights")
    carriers = set(landed_csv(built, "airlines").carrier)
    airports = set(landed_csv(built, "airports").faa)
    planes = set(landed_csv(built, "planes").tailnum)

    sched = _num(raw.sched_dep_time)
    key_missing = raw[["year", "month", "day", "carrier", "flight", "origin"]].isin(["NA", ""]).any(axis=1)
    quarantine = (
        key_missing
        | ~raw.origin.isin(NYC)
        | ~raw.carrier.isin(carriers)
        | sched.isna()
        | (sched % 100 >= 60)
        | (sched > 2400)
    )
    kept = raw[~quarantine]
    duplicates = int(kept.duplicated(["year", "month", "day", "carrier", "flight", "origin"]).sum())

    bronze = table(built, "bronze", "flights")
    silver = table(built, "silver", "flights")
    quarantined = table(built, "silver", "flights_quarantine")
    assert len(bronze) == len(raw) == 336_776
    assert len(quarantined) == int(quarantine.sum())
    assert len(silver) == len(raw) - int(quarantine.sum()) - duplicates
    assert len(bronze) == len(silver) + len(quarantined) + duplicates  # nothing dropped in flights

    checks = dq(built, "silver.flights")
    tail = raw.tailnum[raw.tailnum != "NA"]
    assert checks["dest_in_airports"].rows_failed == int((~raw.dest.isin(airports)).sum()) == 7_602
    assert checks["tailnum_in_planes"].rows_failed == int((~tail.isin(planes)).sum()) == 50_094
    assert checks["flight_key_unique"].passed
    assert int(silver.cancelled.sum()) == int((raw.dep_time == "NA").sum()) == 8_255
    assert silver.flight_id.is_unique


def test_weather_accounting(built: Path) -> None:
    files = sorted(glob.glob(str(built / "landing" / "weather" / "*.jsonl")))
    raw = pd.DataFrame([json.loads(line) for f in files for line in Path(f).read_text().splitlines()])
    quarantine = (
        ~raw.origin.isin(NYC) | raw.time_hour.isna() | (raw.wind_speed.notna() & (raw.wind_speed > 150))
    )
    duplicates = int(raw[~quarantine].duplicated(["origin", "time_hour"]).sum())

    silver = table(built, "silver", "weather")
    quarantined = table(built, "silver", "weather_quarantine")
    assert len(table(built, "bronze", "weather")) == len(raw) == 26_115
    assert len(quarantined) == int(quarantine.sum()) == 1
    assert len(silver) == len(raw) - int(quarantine.sum()) - duplicates
    assert json.loads(quarantined.iloc[0].record)["wind_speed"] > 1000
    assert list(quarantined.iloc[0].failed_checks) == ["wind_speed_plausible"]
    # The 2013-11-03 DST hour: three stations x two readings of the local 1 AM, all kept.
    repeated = silver[(silver.month == 11) & (silver.day == 3) & (silver.hour == 1)]
    assert len(repeated) == 6 and repeated.time_hour.nunique() == 2


def test_flights_join_weather_never_doubles_a_flight(built: Path) -> None:
    flights = table(built, "silver", "flights")[["flight_id", "origin", "time_hour"]]
    weather = table(built, "silver", "weather")[["origin", "time_hour", "temp"]]
    joined = flights.merge(weather, on=["origin", "time_hour"], how="left")
    assert len(joined) == len(flights)
    # The day of the DST change (its repeated 1 AM hour has two weather rows per station).
    dst = flights[(flights.time_hour >= "2013-11-03 04:00Z") & (flights.time_hour < "2013-11-04 05:00Z")]
    assert len(dst.merge(weather, on=["origin", "time_hour"], how="left")) == len(dst) > 0


def test_dimensions_accounting(built: Path) -> None:
    for name, key, rows in (
        ("airlines", "carrier", 16),
        ("airports", "faa", 1_458),
        ("planes", "tailnum", 3_322),
    ):
        raw = landed_csv(built, name)
        silver = table(built, "silver", name)
        assert len(raw) == len(table(built, "bronze", name)) == rows
        duplicates = int(raw.duplicated([key]).sum())
        assert len(silver) + len(table(built, "silver", f"{name}_quarantine")) + duplicates == rows, name
    planes = table(built, "silver", "planes")
    assert planes.is_current.all() and planes.valid_to.isna().all()


def test_every_check_is_recorded_with_the_version_written(built: Path) -> None:
    results = table(built, "gold", "dq_results")
    for name in ("flights", "weather", "airlines", "airports", "planes"):
        version = DeltaTable(str(built / "lakehouse" / "silver" / name)).version()
        rows = results[results.table_name == f"silver.{name}"]
        assert len(rows) > 0
        # The first write is version 0; comments go in with the schema, so no later commit.
        assert set(rows.table_version) == {version}
    assert results.run_id.nunique() == 1
