"""What `medallion tables` lists: every declared table (system tables too: DQ results, ingest manifest,
event log, predictions, and the quarantine tables that exist), with cheap row counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.lakehouse import Lakehouse


def listed_tables(lh: Lakehouse, layer: str | None = None) -> list[str]:
    """Declared tables by layer (bronze, silver, gold); quarantine tables only once they exist."""
    from pipelines.analyst.sql import known_tables

    return [n for n in known_tables(lh) if not layer or n.partition(".")[0] == layer]


def description(lh: Lakehouse, name: str) -> str:
    return lh.settings.table(name).description


def row_count(lh: Lakehouse, name: str) -> int:
    """Rows of the current version: from the Delta log's per-file numRecords when every file has it
    (offline engine: no data is read), else a Spark count."""
    ref = lh.ref(name)
    if lh.engine == "offline" and ref.kind == "path":
        try:
            import pyarrow as pa
            from deltalake import DeltaTable

            actions = pa.table(DeltaTable(ref.location).get_add_actions(flatten=True))
            if "num_records" in actions.column_names:
                counts = actions.column("num_records").to_pylist()
                if all(c is not None for c in counts):
                    return int(sum(counts))
        except Exception:  # any doubt: count with Spark
            pass
    return int(lh.read(name).count())
