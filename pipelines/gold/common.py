"""Building blocks shared by the gold transformations (pure Column/DataFrame functions).

Incremental contract (see :func:`pipelines.runner.run_table`): a gold transform gets every input in full and,
through ``changes``, the rows of each input written since the table was last built (None: first build or
``--full-refresh``). It works out which slice of its output those rows affect (months, dates) as a small
DataFrame, recomputes only that slice from the full inputs, and returns it with
``TableOutput(df, replace_values=<slice keys>, replace_column=...)``: the runner turns the keys into a
``replaceWhere`` predicate and replaces exactly those rows in one atomic commit.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

Changes = Mapping[str, DataFrame | None] | None

# Arrival delay (minutes) from which a flight counts as delayed (the US DOT on-time definition).
DELAY_THRESHOLD_MIN = 15


def changed_inputs(changes: Changes, *names: str) -> dict[str, DataFrame] | None:
    """The change sets of ``names``, or None when any is unknown (first build, full refresh): rebuild all."""
    if changes is None:
        return None
    found = {name: changes.get(name) for name in names}
    if any(df is None for df in found.values()):
        return None
    return {name: df for name, df in found.items() if df is not None}


def month_start(date_col: str | Column = "flight_date") -> Column:
    col = F.col(date_col) if isinstance(date_col, str) else date_col
    return F.trunc(col, "month")


def share(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator as a double; null when the denominator is 0 or null."""
    return F.when(denominator > 0, numerator.cast("double") / denominator.cast("double"))


def is_delayed(delay_col: str) -> Column:
    return (F.col(delay_col) >= DELAY_THRESHOLD_MIN).cast("int")


def only_keys(df: DataFrame, keys: DataFrame, on: list[str]) -> DataFrame:
    """Rows of ``df`` whose ``on`` columns appear in ``keys`` (a semi-join: never duplicates a row)."""
    return df.join(F.broadcast(keys.select(*on).distinct()), on, "left_semi")
