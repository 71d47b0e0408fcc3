"""Incremental, exactly-once ingestion of landed files into bronze tables.

Why a manifest and not Structured Streaming here: a file stream source remembers files by name only, so a
source that re-delivers a corrected month under the same name would be ignored, and its checkpoint is
opaque to analysts. The manifest (``bronze.ingest_manifest``, a Delta table) records, per bronze table, every
landed file taken: name, size, modification time, the bronze version that holds its rows and the run id.

- A file is new when its name is not in the manifest: its records are appended.
- A file whose name, size and modification time are in the manifest is skipped: a rerun ingests nothing.
- A re-delivered file (same name, other size or modification time) follows the source's ``redelivery``
  policy: ``reingest`` (append its records again, with the new ``_source_modified_at``; silver keeps the
  latest delivery), ``skip``, or ``fail``.

Exactly once across crashes: each bronze commit carries the files it ingested in its commit metadata. If a
run dies after the bronze commit and before the manifest commit, the next run finds that bronze commit and
records its files in the manifest before deciding what is new.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.config import SourceConf, TableConf
from pipelines.errors import IngestionError
from pipelines.lakehouse import Lakehouse
from pipelines.outputs import IngestResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FILES_KEY = "medallion.files"
RUN_KEY = "medallion.run_id"


@dataclass(frozen=True)
class LandedFileInfo:
    name: str  # relative to the landing folder, with forward slashes
    path: str
    size: int
    modified_ms: int

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "modified_ms": self.modified_ms}


@dataclass(frozen=True)
class IngestPlan:
    new: tuple[LandedFileInfo, ...]
    redelivered: tuple[LandedFileInfo, ...]
    unchanged: tuple[LandedFileInfo, ...]

    @property
    def to_ingest(self) -> tuple[LandedFileInfo, ...]:
        return self.new + self.redelivered


def list_landed(landing_dir: Path, source: SourceConf) -> list[LandedFileInfo]:
    """Landed files of a source, oldest name first; hidden and temporary files are ignored."""
    files = []
    for path in sorted(landing_dir.glob(source.pattern)):
        if not path.is_file() or path.name.startswith((".", "_")):
            continue
        st = path.stat()
        files.append(
            LandedFileInfo(
                path.relative_to(landing_dir).as_posix(), str(path), st.st_size, int(st.st_mtime * 1000)
            )
        )
    return files


def manifest_table(lh: Lakehouse) -> str:
    """The manifest's logical name: the table declared with ``system: ingest_manifest``."""
    return lh.settings.system_table("ingest_manifest")


def _write_manifest(lh: Lakehouse, rows: Sequence[tuple[Any, ...]]) -> None:
    from pipelines.system import ROLES

    name = manifest_table(lh)
    df = lh.spark.createDataFrame(list(rows), ROLES["ingest_manifest"].ddl)
    lh.write(df, name, "append", description=lh.settings.table(name).description)


def reconcile_manifest(lh: Lakehouse, table: str) -> int:
    """Record in the manifest any bronze commit whose files it lacks (a run that died in between)."""
    if not lh.exists(table):
        return 0
    bronze_version = lh.version(table)
    recorded = -1
    if lh.exists(manifest_table(lh)):
        from pyspark.sql import functions as F

        row = lh.read(manifest_table(lh)).where(F.col("table") == table).agg(F.max("bronze_version")).first()
        recorded = int(row[0]) if row and row[0] is not None else -1
    if bronze_version is None or bronze_version <= recorded:
        return 0
    missing = []
    for commit in lh.history(table, limit=bronze_version - recorded):
        if commit["version"] <= recorded:
            continue
        files = commit["custom"].get(FILES_KEY)
        if not files:
            continue
        if isinstance(files, str):
            files = json.loads(files)
        run_id = str(commit["custom"].get(RUN_KEY, "unknown"))
        ts = datetime.fromtimestamp((commit["timestamp"] or 0) / 1000, tz=UTC).replace(tzinfo=None)
        for f in files:
            missing.append(
                (
                    table,
                    f["name"],
                    int(f["size"]),
                    int(f["modified_ms"]),
                    int(commit["version"]),
                    run_id,
                    "recovered",
                    ts,
                )
            )
    if missing:
        _write_manifest(lh, missing)
    return len(missing)


def plan_ingest(lh: Lakehouse, table: str, source_name: str, source: SourceConf) -> IngestPlan:
    landed = list_landed(lh.settings.landing_dir, source)
    seen: dict[str, set[tuple[int, int]]] = {}
    if lh.exists(manifest_table(lh)):
        from pyspark.sql import functions as F

        for r in (
            lh.read(manifest_table(lh))
            .where(F.col("table") == table)
            .select("file_name", "file_size", "file_modified_ms")
            .collect()
        ):
            seen.setdefault(r[0], set()).add((int(r[1]), int(r[2])))
    new, redelivered, unchanged = [], [], []
    for f in landed:
        if f.name not in seen:
            new.append(f)
        elif (f.size, f.modified_ms) in seen[f.name]:
            unchanged.append(f)
        elif source.redelivery == "reingest":
            redelivered.append(f)
        elif source.redelivery == "skip":
            unchanged.append(f)
        else:
            raise IngestionError(
                f"{table}: {f.name} was delivered again with another size or time and sources.{source_name}."
                "redelivery is 'fail'; remove the file or change the policy"
            )
    return IngestPlan(tuple(new), tuple(redelivered), tuple(unchanged))


def check_csv_headers(files: Sequence[LandedFileInfo], source: SourceConf, table: str) -> None:
    """The header line of every CSV file must name the declared columns, in order."""
    for f in files:
        if f.size == 0:
            continue
        with open(f.path, encoding="utf-8", errors="replace", newline="") as handle:
            import csv

            header = next(csv.reader([handle.readline()]), [])
        header = [h.strip() for h in header]
        if header != list(source.columns):
            missing = [c for c in source.columns if c not in header]
            extra = [c for c in header if c not in source.columns]
            detail = (f" missing: {', '.join(missing)};" if missing else "") + (
                f" unexpected: {', '.join(extra)};" if extra else ""
            )
            raise IngestionError(
                f"{table}: {f.name} has a header that does not match the declared columns of the source"
                f" ({detail.strip(' ;') or 'same names, other order'}). Fix the file or conf/sources.yml; "
                "nothing of this source was ingested"
            )


def read_landed(lh: Lakehouse, files: Sequence[LandedFileInfo], source: SourceConf) -> DataFrame:
    """All given files in one Spark read: every declared column as text, unparsable records rescued."""
    from pipelines.bronze.records import CORRUPT_COLUMN

    schema = ", ".join(f"`{c}` string" for c in source.columns) + f", {CORRUPT_COLUMN} string"
    paths = [f.path for f in files]
    reader = (
        lh.spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
    )
    if source.format == "csv":
        return reader.option("header", "true").option("enforceSchema", "true").csv(paths)
    return reader.json(paths)


def ingest(
    lh: Lakehouse, table: str, conf: TableConf, source_name: str, source: SourceConf, run_id: str
) -> IngestResult:
    """Append the records of new and re-delivered files to ``table`` and record them in the manifest."""
    from pipelines.bronze.records import bronze_records

    reconcile_manifest(lh, table)
    plan = plan_ingest(lh, table, source_name, source)
    todo = plan.to_ingest
    if not todo:
        return IngestResult(table, 0, 0, len(plan.unchanged), 0, lh.version(table))
    if source.format == "csv":
        check_csv_headers(todo, source, table)
    missing = [f.name for f in todo if not os.path.exists(f.path)]
    if missing:
        raise IngestionError(f"{table}: landed file(s) vanished before ingestion: {', '.join(missing)}")
    raw = read_landed(lh, todo, source)
    records = bronze_records(raw, source.columns, source.format, run_id)
    files_meta = [f.as_json() for f in todo]
    result = lh.write(
        records,
        table,
        "append",
        description=conf.description,
        commit_info={RUN_KEY: run_id, FILES_KEY: files_meta},
    )
    now = datetime.fromtimestamp(time.time(), tz=UTC).replace(tzinfo=None)
    status = {f.name: "new" for f in plan.new} | {f.name: "redelivered" for f in plan.redelivered}
    rows = [(table, f.name, f.size, f.modified_ms, result.version, run_id, status[f.name], now) for f in todo]
    _write_manifest(lh, rows)
    return IngestResult(
        table, len(plan.new), len(plan.redelivered), len(plan.unchanged), result.rows_written, result.version
    )


Ingest = Callable[[Lakehouse, str, TableConf, str, SourceConf, str], IngestResult]


def ingest_function(settings: Any) -> Ingest:
    """The bronze ingestion that ``storage.ingest`` selects: ``manifest`` (this module, runs anywhere) or
    ``autoloader`` (:mod:`pipelines.lakehouse.autoloader`, Databricks Auto Loader)."""
    mode = settings.storage.ingest
    if mode == "autoloader":
        from pipelines.lakehouse.autoloader import ingest as autoloader_ingest

        return autoloader_ingest
    if mode == "manifest":
        return ingest
    raise IngestionError(f"storage.ingest is {mode!r}; allowed: manifest, autoloader")
