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
from pipelines.faults import crash_point
from pipelines.lakehouse import Lakehouse
from pipelines.lakehouse.landed import Inspection, LandedFileInfo, inspect, unmatched
from pipelines.lakehouse.landed import list_landed as _list_landed
from pipelines.outputs import IngestResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FILES_KEY = "medallion.files"
RUN_KEY = "medallion.run_id"


@dataclass(frozen=True)
class IngestPlan:
    new: tuple[LandedFileInfo, ...]
    redelivered: tuple[LandedFileInfo, ...]
    unchanged: tuple[LandedFileInfo, ...]

    @property
    def to_ingest(self) -> tuple[LandedFileInfo, ...]:
        return self.new + self.redelivered


def manifest_table(lh: Lakehouse) -> str:
    """The manifest's logical name: the table declared with ``system: ingest_manifest``."""
    return lh.settings.system_table("ingest_manifest")


# What a run knows of the manifest: its rows (table, file name, size, modified ms, bronze version) as of a
# version. Kept on the Lakehouse, so each bronze table of a run does not read the manifest again: it is read
# when its version is not the one known, and this process's own append extends it only when that append is
# the very next version (no other writer in between).
_MEMO = "_ingest_manifest_rows"


@dataclass(frozen=True)
class _ManifestRows:
    version: int
    rows: tuple[tuple[str, str, int, int, int], ...]


def _manifest_rows(lh: Lakehouse) -> tuple[tuple[str, str, int, int, int], ...]:
    """Every manifest row (table, file name, size, modified ms, bronze version) at its current version."""
    name = manifest_table(lh)
    version = lh.version(name) if lh.exists(name) else None
    if version is None:
        setattr(lh, _MEMO, None)
        return ()
    memo: _ManifestRows | None = getattr(lh, _MEMO, None)
    if memo is not None and memo.version == version:
        return memo.rows
    rows = tuple(
        (str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]))
        for r in lh.read_rows(
            name, ("table", "file_name", "file_size", "file_modified_ms", "bronze_version"), version
        )
    )
    setattr(lh, _MEMO, _ManifestRows(version, rows))
    return rows


def _write_manifest(lh: Lakehouse, rows: Sequence[tuple[Any, ...]]) -> None:
    from pipelines.system import ROLES

    name = manifest_table(lh)
    memo: _ManifestRows | None = getattr(lh, _MEMO, None)
    setattr(lh, _MEMO, None)
    ddl = ROLES["ingest_manifest"].ddl
    if lh.exists(name):  # a few rows: deltalake's append where the table allows it (no Spark job)
        version = lh.append_rows(name, list(rows), ddl)
    else:
        df = lh.spark.createDataFrame(list(rows), ddl)
        version = lh.write(df, name, "append", description=lh.settings.table(name).description).version
    if memo is not None and version == memo.version + 1:
        added = tuple((str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows)
        setattr(lh, _MEMO, _ManifestRows(version, memo.rows + added))


def reconcile_manifest(lh: Lakehouse, table: str) -> int:
    """Record in the manifest any bronze commit whose files it lacks (a run that died in between)."""
    if not lh.exists(table):
        return 0
    bronze_version = lh.version(table)
    recorded = max((r[4] for r in _manifest_rows(lh) if r[0] == table), default=-1)
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


def list_landed(landing_dir: Path, source: SourceConf) -> list[LandedFileInfo]:
    """Landed files of a source: its pattern, also compressed (.gz, .bz2) and in any case of the extension."""
    return _list_landed(landing_dir, source.pattern)


def plan_ingest(lh: Lakehouse, table: str, source_name: str, source: SourceConf) -> IngestPlan:
    landed = list_landed(lh.settings.landing_dir, source)
    seen: dict[str, set[tuple[int, int]]] = {}
    for r in _manifest_rows(lh):
        if r[0] == table:
            seen.setdefault(r[1], set()).add((r[2], r[3]))
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


def ingest(
    lh: Lakehouse, table: str, conf: TableConf, source_name: str, source: SourceConf, run_id: str
) -> IngestResult:
    """Append the records of new and re-delivered files to ``table`` and record them in the manifest.

    Each file is looked at first (:func:`pipelines.lakehouse.landed.inspect`): one that cannot be ingested is
    rejected on its own (``bronze.rejected_files``, left in landing) while the source's other files go on,
    or, with ``on_bad_file: fail``, stops the run before anything of the source is ingested.
    """
    from functools import reduce

    reconcile_manifest(lh, table)
    plan = plan_ingest(lh, table, source_name, source)
    todo = plan.to_ingest
    if not todo:
        return IngestResult(table, 0, 0, len(plan.unchanged), 0, lh.version(table))
    missing = [f.name for f in todo if not os.path.exists(f.path)]
    if missing:
        raise IngestionError(f"{table}: landed file(s) vanished before ingestion: {', '.join(missing)}")
    looked = [inspect(f, source.format, source.columns, source.schema_evolution) for f in todo]
    bad = [(i.file, str(i.reject)) for i in looked if i.reject]
    if bad and source.on_bad_file == "fail":
        f, why = bad[0]
        raise IngestionError(
            f"{table}: {f.name} cannot be ingested: {why}. sources.{source_name}.on_bad_file is 'fail': nothing "
            "of this source was ingested; fix or remove the file (or set on_bad_file: reject)"
        )
    if bad:
        record_rejections(lh, table, bad, run_id)
    good = [i for i in looked if not i.reject]
    notes = tuple(f"{i.file.name}: {'; '.join(i.notes)}" for i in good if i.notes)
    rejected = tuple(f"{f.name}: {why}" for f, why in bad)
    if not good:
        return IngestResult(table, 0, 0, len(plan.unchanged), 0, lh.version(table), rejected=rejected)
    groups: dict[tuple[Any, ...], list[Inspection]] = {}
    for item in good:
        if source.format == "csv" and not item.header:
            continue  # an empty file: nothing to read (it is still recorded as ingested)
        groups.setdefault(item.layout, []).append(item)
    frames = [read_group(lh, group, source, run_id) for group in groups.values()]
    if not frames:
        from pipelines.bronze.records import bronze_schema

        frames = [lh.spark.createDataFrame([], bronze_schema(source.columns))]
    records = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    records = _fit_table(lh, table, records)
    taken = [i.file for i in good]
    result = lh.write(
        records,
        table,
        "append",
        description=conf.description,
        commit_info={RUN_KEY: run_id, FILES_KEY: [f.as_json() for f in taken]},
    )
    crash_point("bronze.committed")
    now = datetime.fromtimestamp(time.time(), tz=UTC).replace(tzinfo=None)
    status = {f.name: "new" for f in plan.new} | {f.name: "redelivered" for f in plan.redelivered}
    rows = [
        (table, f.name, f.size, f.modified_ms, result.version, run_id, status[f.name], now) for f in taken
    ]
    _write_manifest(lh, rows)
    new = sum(1 for f in taken if status[f.name] == "new")
    return IngestResult(
        table, new, len(taken) - new, len(plan.unchanged), result.rows_written, result.version,
        rejected=rejected, notes=notes,
    )  # fmt: skip


def _fit_table(lh: Lakehouse, table: str, records: DataFrame) -> DataFrame:
    """The records in the table's columns: columns the table lacks are added to it first (``_rescued_data``
    for a table made before it existed, new columns under ``schema_evolution: add_columns``), columns the
    records lack (a file without an added column) are null."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    if not lh.exists(table):
        return records
    schema = lh.schema(table)
    new = [f for f in records.schema.fields if f.name not in schema.fieldNames()]
    if new:
        lh.add_columns(table, StructType(new))
        schema = lh.schema(table)
    have = set(records.columns)
    for field in schema.fields:
        if field.name not in have:
            records = records.withColumn(field.name, F.lit(None).cast(field.dataType))
    return records


def rejected_table(lh: Lakehouse) -> str:
    return lh.settings.system_table("rejected_files")


def _recorded_rejections(lh: Lakehouse) -> set[tuple[str | None, str, int, int]]:
    """(table, file, size, modified) of every rejection already recorded (a rerun records nothing new)."""
    name = rejected_table(lh)
    if not lh.exists(name):
        return set()
    rows = lh.read_rows(name, ("table", "file_name", "file_size", "file_modified_ms"))
    return {(r[0], r[1], int(r[2]), int(r[3])) for r in rows}


def record_rejections(
    lh: Lakehouse, table: str | None, rejected: Sequence[tuple[LandedFileInfo, str]], run_id: str
) -> int:
    """Append the rejections not recorded before; returns how many were new."""
    from pipelines.system import append_rows

    known = _recorded_rejections(lh)
    now = datetime.fromtimestamp(time.time(), tz=UTC).replace(tzinfo=None)
    rows = [
        (table, f.name, f.size, f.modified_ms, reason, run_id, now)
        for f, reason in rejected
        if (table, f.name, f.size, f.modified_ms) not in known
    ]
    if rows:
        append_rows(lh, "rejected_files", rows, {RUN_KEY: run_id})
    return len(rows)


def report_unmatched(lh: Lakehouse, run_id: str) -> list[tuple[LandedFileInfo, str]]:
    """Landed files that match no declared source: recorded (once per delivery) and returned, never ignored."""
    patterns = {name: source.pattern for name, source in lh.settings.sources.items()}
    found = unmatched(lh.settings.landing_dir, patterns)
    if found:
        record_rejections(lh, None, found, run_id)
    return found


def read_group(lh: Lakehouse, group: Sequence[Inspection], source: SourceConf, run_id: str) -> DataFrame:
    """The bronze records of files that share one layout, in one Spark read."""
    from pyspark.sql import functions as F

    from pipelines.bronze.records import CORRUPT_COLUMN, bronze_records

    first = group[0]
    paths = [i.file.path for i in group]
    invalid = any(i.invalid_utf8 for i in group)
    keep_extra = source.schema_evolution == "add_columns"
    if source.format == "csv":
        # The file's own header order: columns are matched to the declared ones by name.
        schema = (
            ", ".join(f"`{c.replace('`', '``')}` string" for c in first.header) + f", {CORRUPT_COLUMN} string"
        )
        raw = (
            lh.spark.read.schema(schema)
            .option("header", "true")  # the header line (and a byte-order mark in it) is skipped
            .option("enforceSchema", "true")
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
            .option("sep", first.delimiter or ",")
            .option("multiLine", str(first.multiline).lower())
            .csv(paths)
        )
        present = tuple(c for c in source.columns if c in first.header)
        return bronze_records(
            raw, source.columns, "csv", run_id, present=present, extra=first.extra, keep_extra=keep_extra,
            invalid_utf8=invalid,
        )  # fmt: skip
    # JSON lines: read with Spark's JSON file reader, as Auto Loader reads them (the job's bronze), so a value
    # is its landed text (`1e3`, `1.50`, a nested object as written) and a repeated key's last value counts.
    # Keys match the declared columns by name; the other keys, found in one pass over the lines, are read
    # too and rescued (or kept, schema evolution add_columns); a line that is not a JSON object is kept whole
    # in _corrupt_record.
    if len({i.invalid_utf8 for i in group}) > 1:  # files with bytes that are not UTF-8 are read apart
        clean, bad = ([i for i in group if bool(i.invalid_utf8) == flag] for flag in (False, True))
        return read_group(lh, clean, source, run_id).unionByName(
            read_group(lh, bad, source, run_id), allowMissingColumns=True
        )
    text = lh.spark.read.text(paths)
    line = F.regexp_replace(F.col("value"), "^\ufeff", "")
    found = text.select(F.explode(F.json_object_keys(line)).alias("k")).distinct().collect()
    extra = tuple(sorted({r[0] for r in found} - set(source.columns)))
    names = (*source.columns, *extra)
    folded = [n.lower() for n in (*names, CORRUPT_COLUMN, "_metadata")]
    plain = all(names) and "`" not in "".join(names) and len(set(folded)) == len(folded)
    # Files with bytes that are not UTF-8 are parsed line by line from decoded text instead: the JSON reader
    # would keep such a line whole, raw bytes and all, as a corrupt record.
    if not invalid and plain:
        from pyspark.sql.types import StringType, StructField, StructType

        fields = StructType([StructField(n, StringType()) for n in (*names, CORRUPT_COLUMN)])
        raw = (
            lh.spark.read.schema(fields)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
            .json(paths)
        )
        return bronze_records(
            raw, source.columns, "jsonl", run_id, extra=extra, keep_extra=keep_extra, invalid_utf8=invalid
        )
    return _json_lines_by_map(text, line, source, run_id, extra, keep_extra, invalid)


def _json_lines_by_map(
    text: DataFrame,
    line: Any,
    source: SourceConf,
    run_id: str,
    extra: tuple[str, ...],
    keep_extra: bool,
    invalid: bool,
) -> DataFrame:
    """JSON lines the JSON file reader cannot take as they are: bytes that are not UTF-8, or keys no Spark
    schema can hold (keys equal but for case, an empty key, a backtick, a key named like a bronze column). Each line is
    parsed into a map, so nothing is lost, but numbers and nested values are re-rendered by the parser (`1e3`
    becomes `1000.0`) and a repeated key's first value counts."""
    from pyspark.sql import functions as F

    from pipelines.bronze.records import CORRUPT_COLUMN, bronze_records

    declared = F.array(*[F.lit(c) for c in source.columns])
    keys = F.json_object_keys(line)
    as_map = F.from_json(line, "map<string,string>")
    extras_map = F.map_filter(as_map, lambda k, _v: ~F.array_contains(declared, k))
    kept = extra if keep_extra else ()
    lines = text.where(F.trim(F.col("value")) != "").select(
        F.col("_metadata"),
        *[F.when(keys.isNotNull(), as_map[c]).alias(c) for c in (*source.columns, *kept)],
        F.when(keys.isNull(), F.col("value")).alias(CORRUPT_COLUMN),
        F.when(keys.isNotNull() & (F.size(extras_map) > 0), F.to_json(extras_map)).alias("__rescued"),
    )
    return bronze_records(
        lines, source.columns, "jsonl", run_id, extra=kept, keep_extra=keep_extra, invalid_utf8=invalid,
        rescued_json=None if keep_extra else F.col("__rescued"),
    )  # fmt: skip


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
