"""Comparing Delta tables written by two runs of the pipeline, read by deltalake (a reader that is neither
Spark engine): the schema (names, types, nullability, comments) and the rows, without the columns whose values
belong to the run rather than the data (run ids, wall-clock times, durations, the engine), and with each run's
own paths (and other run-specific strings) replaced by placeholders."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# Columns whose values are the run's, not the data's: ids, wall-clock times, durations, the engine itself.
VOLATILE = {
    "_run_id",
    "run_id",
    "_ingested_at",
    "ingested_at",
    "checked_at",
    "scored_at",
    "quarantined_at",
    "started_at",
    "finished_at",
    "seconds",
    "engine",
}

# Run-time values inside text: a quarantined row's JSON, a freshness check's details.
VOLATILE_TEXT = [
    (r'"(_run_id|run_id|_ingested_at|ingested_at)":"[^"]*"', r'"\1":"<run>"'),
    (r"newest _ingested_at \S+", "newest _ingested_at <run>"),
]


def tables_of(lakehouse: Path) -> list[str]:
    return sorted(f"{p.parent.name}.{p.name}" for p in lakehouse.glob("*/*") if (p / "_delta_log").is_dir())


def first_run_id(stdout: str) -> str:
    match = re.search(r"^run (\S+)\s", stdout, re.M)
    assert match, stdout[:2000]
    return match.group(1)


def version_of_run(path: Path, run_id: str | None) -> int:
    """The last version of the table committed by run ``run_id`` (other slow tests may have run the pipeline
    again in that home), or the latest version when ``run_id`` is None."""
    from deltalake import DeltaTable

    from pipelines.lakehouse.base import parse_custom

    if run_id is None:
        return int(DeltaTable(str(path)).version())
    versions = [
        int(c["version"])
        for c in DeltaTable(str(path)).history()
        if parse_custom(c).get("medallion.run_id") == run_id
    ]
    return max(versions) if versions else DeltaTable(str(path)).version()


def comparable(
    path: Path,
    version: int,
    home: Path,
    rows_of: Callable[[Any], Any],
    replace: Mapping[str, str] | None = None,
) -> tuple[Any, Any]:
    """(schema as JSON without ids, canonical rows without volatile columns, home paths replaced by
    ``<home>`` and every key of ``replace`` by its value in text columns)."""
    import json

    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    table = DeltaTable(str(path), version=version)
    schema = json.loads(table.schema().to_json())
    data = table.to_pyarrow_table()
    data = data.select([c for c in data.column_names if c not in VOLATILE])
    columns = []
    for name in data.column_names:
        column = data.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.replace_substring(column, str(home), "<home>")
            for old, new in (replace or {}).items():
                column = pc.replace_substring(column, old, new)
            for pattern, replacement in VOLATILE_TEXT:
                column = pc.replace_substring_regex(column, pattern, replacement)
        columns.append(column)
    return schema, rows_of(pa.table(dict(zip(data.column_names, columns, strict=True))))


def differences(
    pairs: list[tuple[str, tuple[Any, Any], tuple[Any, Any]]], labels: tuple[str, str]
) -> list[str]:
    """One paragraph per table whose schema or rows differ: ``pairs`` of (name, comparable a, comparable b)."""
    a_label, b_label = labels
    out = []
    for name, a, b in pairs:
        if a[0] != b[0]:
            out.append(f"{name}: schema\n  {a_label}: {a[0]}\n  {b_label}: {b[0]}")
        elif a[1] != b[1]:
            a_rows, b_rows = a[1][1], b[1][1]
            only_a = [r for r in a_rows if r not in set(b_rows)][:3]
            only_b = [r for r in b_rows if r not in set(a_rows)][:3]
            out.append(
                f"{name}: rows ({len(a_rows)} {a_label}, {len(b_rows)} {b_label})\n"
                f"  only {a_label}: {only_a}\n  only {b_label}: {only_b}"
            )
    return out
