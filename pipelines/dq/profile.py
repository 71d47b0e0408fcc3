"""``medallion dq profile TABLE``: profile a table and propose checks, as YAML to review and paste.

Two aggregate passes over the table, whatever its width: the first counts nulls, takes minima and maxima of
numeric columns and estimates distinct counts (HyperLogLog); the second, only for the columns where it
matters, collects the exact value sets of low-cardinality columns and tests uniqueness exactly.

Candidates (every one with ``action: warn``: the user decides what each should do):

- ``not_null`` for a column with no null;
- ``between`` for a numeric column, with the observed minimum and maximum;
- ``in_set`` for a text or boolean column with at most ``max_distinct`` values;
- ``unique`` for a column whose values are all distinct (a key candidate);
- ``row_count`` with a minimum of one row.

Columns whose names start with ``_`` (pipeline metadata such as ``_run_id``) are profiled, not proposed.
The output is valid YAML in the form of ``conf/tables/*.yml`` (``expectations:`` list, one flow mapping per
check); the profile itself is printed as comment lines above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")
SET_TYPES = ("string", "boolean")
MAX_DISTINCT = 20


@dataclass
class ColumnProfile:
    name: str
    type: str
    nulls: int
    approx_distinct: int
    minimum: Any = None
    maximum: Any = None
    values: list[Any] | None = None  # exact set, when small
    unique: bool = False


@dataclass
class Profile:
    table: str
    version: int | None
    rows: int
    columns: list[ColumnProfile] = field(default_factory=list)


def _kind(type_name: str) -> str:
    return type_name.split("(")[0]


def profile(df: DataFrame, table: str, version: int | None, max_distinct: int = MAX_DISTINCT) -> Profile:
    """Profile ``df`` (two aggregate passes; see the module docstring)."""
    from pyspark.sql import functions as F

    fields = [
        f
        for f in df.schema.fields
        if _kind(f.dataType.simpleString()) in (*NUMERIC, *SET_TYPES, "date", "timestamp", "timestamp_ntz")
    ]
    aggs = [F.count(F.lit(1)).alias("__rows")]
    for i, f in enumerate(fields):
        column = F.col(f"`{f.name}`")
        aggs += [F.count(column).alias(f"n{i}"), F.approx_count_distinct(column).alias(f"d{i}")]
        if _kind(f.dataType.simpleString()) in NUMERIC:
            aggs += [F.min(column).alias(f"lo{i}"), F.max(column).alias(f"hi{i}")]
    first = df.agg(*aggs).first()
    assert first is not None
    rows = int(first["__rows"])
    out = Profile(table, version, rows)
    second = []
    for i, f in enumerate(fields):
        kind = _kind(f.dataType.simpleString())
        present = int(first[f"n{i}"])
        col = ColumnProfile(f.name, f.dataType.simpleString(), rows - present, int(first[f"d{i}"]))
        if kind in NUMERIC:
            col.minimum, col.maximum = first[f"lo{i}"], first[f"hi{i}"]
        out.columns.append(col)
        c = F.col(f"`{f.name}`")
        if kind in SET_TYPES and col.approx_distinct <= max_distinct * 2:
            second.append(F.collect_set(c).alias(f"s{i}"))
        if present and col.approx_distinct >= present * 0.9:  # HLL is within a few percent: test exactly
            second.append((F.count_distinct(c) == F.count(c)).alias(f"u{i}"))
    if second and rows:
        extra = df.agg(*second).first()
        assert extra is not None
        for i, col in enumerate(out.columns):
            if f"s{i}" in extra.asDict() and len(extra[f"s{i}"]) <= max_distinct:
                col.values = sorted(extra[f"s{i}"], key=lambda v: (v is None, str(v)))
            col.unique = bool(extra.asDict().get(f"u{i}", False))
    return out


def _bound(value: Any, upper: bool) -> Any:
    """A YAML number for an observed bound: integers as they are, others rounded outward to 4 decimals."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    number = float(value)
    if not math.isfinite(number):
        return None
    scaled = math.ceil(number * 10_000) if upper else math.floor(number * 10_000)
    rounded = scaled / 10_000
    return int(rounded) if rounded.is_integer() else rounded


def _flow(check: dict[str, Any]) -> str:
    parts = [
        f"{k}: {yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix('...').strip()}"
        for k, v in check.items()
    ]
    return "{" + ", ".join(parts) + "}"


def candidates(prof: Profile) -> list[tuple[dict[str, Any], str]]:
    """(check as declared in YAML, why) for every candidate check of the profile."""
    out: list[tuple[dict[str, Any], str]] = []
    for col in prof.columns:
        if col.name.startswith("_"):
            continue
        if prof.rows and col.nulls == 0:
            out.append(({"name": f"{col.name}_present", "type": "not_null", "column": col.name}, "no null"))
        kind = _kind(col.type)
        lo, hi = _bound(col.minimum, False), _bound(col.maximum, True)
        if kind in NUMERIC and lo is not None and hi is not None:
            out.append(
                (
                    {
                        "name": f"{col.name}_range",
                        "type": "between",
                        "column": col.name,
                        "min": lo,
                        "max": hi,
                    },
                    f"observed {col.minimum} .. {col.maximum}",
                )
            )
        if kind in SET_TYPES and col.values is not None and col.values and not col.unique:
            out.append(
                (
                    {"name": f"{col.name}_known", "type": "in_set", "column": col.name, "values": col.values},
                    f"{len(col.values)} distinct value(s)",
                )
            )
        if col.unique and prof.rows > 1:
            out.append(
                (
                    {"name": f"{col.name}_unique", "type": "unique", "columns": [col.name]},
                    "every value distinct",
                )
            )
    if prof.rows:
        out.append(({"name": "rows_at_least_one", "type": "row_count", "min": 1}, f"{prof.rows:,} rows now"))
    for check, _why in out:
        check["action"] = "warn"
    return out


def render(prof: Profile) -> str:
    """The profile as comment lines, then the candidate checks as an ``expectations:`` YAML block."""
    version = "" if prof.version is None else f" at version {prof.version}"
    lines = [
        f"# profile of {prof.table}{version}: {prof.rows:,} rows",
        f"# {'column':<28} {'type':<14} {'null %':>7} {'distinct~':>10}  min .. max / values",
    ]
    for col in prof.columns:
        null_pct = 100.0 * col.nulls / prof.rows if prof.rows else 0.0
        shown = (
            ", ".join(map(str, col.values))
            if col.values is not None
            else f"{col.minimum} .. {col.maximum}"
            if col.minimum is not None
            else ""
        )
        flag = " (unique)" if col.unique else ""
        lines.append(
            f"# {col.name:<28} {col.type:<14} {null_pct:>6.2f}% {col.approx_distinct:>10,}  {shown[:80]}{flag}"
        )
    lines += [
        f"# candidate checks: review each (action, bounds) before pasting under tables.{prof.table}.expectations",
        "expectations:",
    ]
    for check, why in candidates(prof):
        lines.append(f"  - {_flow(check)}  # {why}")
    return "\n".join(lines) + "\n"
