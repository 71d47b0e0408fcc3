"""Delta file statistics (numRecords, min/max, null counts) from the parquet footers Spark wrote."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipelines.lakehouse.offline.paths import partition_values

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

STRING_STATS_PREFIX = 32


def _json_stat(value: Any, upper: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return None  # Delta keeps no min/max for booleans
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, Decimal):
        # JSON holds a double, which readers parse back as a decimal: nudge it so that the text stays a
        # bound (a maximum never below the true value, a minimum never above).
        number = float(value)
        while Decimal(repr(number)) < value if upper else Decimal(repr(number)) > value:
            number = math.nextafter(number, math.inf if upper else -math.inf)
        return number if math.isfinite(number) else None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        micros = value.microsecond
        millis = value.replace(microsecond=(micros // 1000) * 1000)
        if upper and micros % 1000:
            millis += dt.timedelta(milliseconds=1)  # round a maximum up, never below the true value
        return millis.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        if len(value) <= STRING_STATS_PREFIX:
            return value
        return None if upper else value[:STRING_STATS_PREFIX]  # a truncated prefix is still a lower bound
    return None


def file_stats(path: str, schema: StructType, partition_cols: Sequence[str]) -> dict[str, Any]:
    """Delta file statistics from the parquet footer: numRecords, minValues, maxValues, nullCount."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    top_level = {f.name for f in schema.fields} - set(partition_cols)
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for ci in range(group.num_columns):
            column = group.column(ci)
            path_parts = column.path_in_schema.split(".")
            if len(path_parts) != 1 or path_parts[0] not in top_level:
                continue  # nested leaves: no stats (readers treat missing stats as unknown)
            name = path_parts[0]
            stats = column.statistics
            if stats is None:
                nulls[name] = None
                continue
            if stats.has_null_count and nulls.get(name, 0) is not None:
                nulls[name] = nulls.get(name, 0) + stats.null_count
            else:
                nulls[name] = None
            if stats.has_min_max:
                lo, hi = _json_stat(stats.min, False), _json_stat(stats.max, True)
                prev_lo, prev_hi = mins.get(name, lo), maxs.get(name, hi)
                mins[name] = None if lo is None or prev_lo is None else min(lo, prev_lo)
                maxs[name] = None if hi is None or prev_hi is None else max(hi, prev_hi)
            elif group.num_rows and stats.null_count != group.num_rows:
                mins[name] = maxs[name] = None
    return {
        "numRecords": meta.num_rows,
        "minValues": {k: v for k, v in mins.items() if v is not None},
        "maxValues": {k: v for k, v in maxs.items() if v is not None},
        "nullCount": {k: v for k, v in nulls.items() if v is not None},
    }


def add_action(rel: str, dest: str, partition_cols: Sequence[str], stats: Mapping[str, Any]) -> Any:
    from deltalake.transaction import AddAction

    st = os.stat(dest)
    return AddAction(
        path=rel,
        size=st.st_size,
        partition_values=partition_values(rel, partition_cols),
        modification_time=int(st.st_mtime * 1000),
        data_change=True,
        stats=json.dumps(stats, separators=(",", ":")),
    )
