"""Fixtures of the gold tests: inline silver-shaped DataFrames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from gold_data import AIRLINES_DDL, FLIGHTS_DDL, PLANES_DDL, WEATHER_DDL


@pytest.fixture
def frames(spark: Any) -> Callable[..., Any]:
    """``frames(flights=[...], weather=[...], planes=[...], airlines=[...])`` -> dict of DataFrames."""
    ddl = {"flights": FLIGHTS_DDL, "weather": WEATHER_DDL, "planes": PLANES_DDL, "airlines": AIRLINES_DDL}

    def make(**rows: list[tuple[Any, ...]]) -> dict[str, Any]:
        return {name: spark.createDataFrame(rows.get(name, []), ddl[name]) for name in ddl}

    return make
