"""What `medallion tables` lists: every declared table, the DQ results, the ingest manifest and the
quarantine tables that exist, with cheap row counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.lakehouse import Lakehouse


def listed_tables(lh: Lakehouse, layer: str | None = None) -> list[str]:
    """Declared tables in declaration order, then the DQ results, the manifest and existing quarantines."""
    from pipelines.analyst.sql import known_tables

    return [n for n in known_tables(lh) if not layer or n.partition(".")[0] == layer]


def description(lh: Lakehouse, name: str) -> str:
    from pipelines.dq.engine import DQ_RESULTS, DQ_RESULTS_DESCRIPTION
    from pipelines.lakehouse.ingest import MANIFEST, MANIFEST_DESCRIPTION

    if name in lh.settings.tables:
        return lh.settings.tables[name].description
    if name == DQ_RESULTS:
        return DQ_RESULTS_DESCRIPTION
    if name == MANIFEST:
        return MANIFEST_DESCRIPTION
    if name == lh.settings.ml.predictions_table:
        from pipelines.ml.score import DESCRIPTION

        return DESCRIPTION
    if name.endswith("_quarantine"):
        return f"Rows of {name.removesuffix('_quarantine')} that failed a quarantine check, with the checks they failed"
    return ""


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
