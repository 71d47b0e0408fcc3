"""Row accounting: every landed record is in bronze, and every bronze row is somewhere downstream.

``medallion audit`` prints, per landed file and delivery:

- ``file rows``: data records in the file as a plain reader counts them (for the delivery still in landing),
- ``bronze``: rows bronze holds from that delivery,
- where each bronze row went: ``silver`` (the silver table holds it, from this delivery), ``quarantine``
  (the silver table's quarantine holds it, with why), ``superseded`` (silver holds the same key from another
  delivery: a newer one, or an earlier identical one that a MERGE did not rewrite), ``rejected`` (the whole
  file was rejected: ``bronze.rejected_files``),
- ``unaccounted``: rows that are in none of those places. Any is an error (:class:`AuditError`), and so is a
  file whose bronze rows differ from its records.

One Spark pass per bronze table: bronze rows get a fingerprint of the record as landed (the same fields the
quarantine keeps in ``source_record``) and their key typed as silver types it (``silver.<table>`` declares
``landed_key``: the landed columns that identify a record; default its write keys); then they are joined with
silver and the quarantine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.errors import AuditError

if TYPE_CHECKING:
    from pyspark.sql import Column

    from pipelines.lakehouse import Lakehouse

LANDED_META = ("_corrupt_record", "_source_file", "_ingested_at")


@dataclass
class FileAccount:
    table: str
    file: str
    delivered_at: Any
    file_rows: int | None = None
    bronze: int = 0
    silver: int = 0
    quarantine: int = 0
    superseded: int = 0
    rejected: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def unaccounted(self) -> int:
        lost = self.bronze - self.silver - self.quarantine - self.superseded
        missing = (self.file_rows - self.bronze) if self.file_rows is not None and not self.rejected else 0
        return max(lost, 0) + max(missing, 0) + max(-missing, 0)


def _silver_of(lh: Lakehouse, bronze: str) -> str | None:
    found = [
        name
        for name, conf in lh.settings.tables.items()
        if conf.layer == "silver" and bronze in conf.inputs and conf.built_by_runner
    ]
    return found[0] if found else None


def _fingerprint(names: Sequence[str], prefix: str = "") -> Column:
    """A hash of the landed columns ``names`` (read under ``prefix``). Timestamps count to the millisecond:
    quarantine rows written before it kept microseconds hold them so."""
    from pyspark.sql import functions as F

    return F.xxhash64(
        *[
            F.date_trunc("millisecond", F.col(prefix + n)) if n == "_ingested_at" else F.col(prefix + n)
            for n in names
        ]
    )


def _relative(path: Column, landing: str) -> Column:
    """``file:/.../landing/flights/x.csv`` -> ``flights/x.csv`` (how the manifest names files)."""
    from pyspark.sql import functions as F

    return F.regexp_replace(F.regexp_replace(path, "^file:", ""), "^" + landing.rstrip("/") + "/", "")


def account_table(lh: Lakehouse, bronze: str) -> list[FileAccount]:
    """The accounts of every delivery of one bronze table."""
    from pyspark.sql import functions as F

    from pipelines.dq.engine import JSON_OPTIONS
    from pipelines.silver.common import typed
    from pipelines.system import quarantine_name

    settings = lh.settings
    conf = settings.table(bronze)
    source = settings.sources[conf.source or ""]
    silver = _silver_of(lh, bronze)
    rows = lh.read_treated(bronze)  # as silver read it: sensitive columns treated (a dropped one is gone)
    landed = [c for c in source.columns if c in rows.columns]
    landing = str(settings.landing_dir)
    rows = rows.withColumn("__fp", _fingerprint([*landed, *LANDED_META]))
    outcome = F.lit("unaccounted")
    if silver is not None and lh.exists(silver):
        s_conf = settings.table(silver)
        key = list(s_conf.landed_key or s_conf.write.keys)
        stored = lh.read(silver)
        types = {f.name: f.dataType.simpleString() for f in stored.schema.fields}
        missing = [k for k in key if k not in types or k not in landed]
        if missing:
            raise AuditError(
                f"{silver}: landed_key column(s) {', '.join(missing)} are not both landed and in the table: "
                f"declare tables.{silver}.landed_key in {s_conf.declared_in}"
            )
        typed_key = [typed(k, types[k]).alias(f"__k_{k}") for k in key]
        rows = rows.select("*", *typed_key)
        keys = [f"__k_{k}" for k in key]
        provenance = [c for c in ("_source_file", "_ingested_at") if c in types]
        in_silver = stored.select(*[F.col(k).alias(f"__k_{k}") for k in key], *provenance).withColumn(
            "__in", F.lit(True)
        )
        rows = rows.join(in_silver, on=[*keys, *provenance], how="left")
        some_key = (
            stored.select(*[F.col(k).alias(f"__k_{k}") for k in key])
            .distinct()
            .withColumn("__key", F.lit(True))
        )
        rows = rows.join(some_key, on=keys, how="left")
        outcome = F.when(F.col("__in"), F.lit("silver"))
        quarantine = quarantine_name(silver)
        if lh.exists(quarantine):
            fields = (
                ", ".join(f"`{c}` string" for c in landed)
                + ", `_corrupt_record` string, `_source_file` string, `_ingested_at` timestamp"
            )
            # The landed _corrupt_record is a plain field here, not Spark's corrupt-record column.
            options = {**JSON_OPTIONS, "columnNameOfCorruptRecord": "__unparsable_source_record"}
            parsed = F.from_json(F.col("source_record"), fields, options)
            quarantined = (
                lh.read(quarantine)
                .select(parsed.alias("r"))
                .select(_fingerprint([*landed, *LANDED_META], "r.").alias("__fp"))
                .distinct()
                .withColumn("__q", F.lit(True))
            )
            rows = rows.join(quarantined, on="__fp", how="left")
            outcome = outcome.when(F.col("__q"), F.lit("quarantine"))
        outcome = outcome.when(F.col("__key"), F.lit("superseded")).otherwise(F.lit("unaccounted"))
    counted = (
        rows.select(
            _relative(F.col("_source_file"), landing).alias("file"), "_source_modified_at", outcome.alias("o")
        )
        .groupBy("file", "_source_modified_at", "o")
        .count()
        .collect()
    )
    accounts: dict[tuple[str, Any], FileAccount] = {}
    for r in counted:
        acc = accounts.setdefault(
            (r["file"], r["_source_modified_at"]), FileAccount(bronze, r["file"], r["_source_modified_at"])
        )
        acc.bronze += int(r["count"])
        if r["o"] != "unaccounted":
            setattr(acc, r["o"], getattr(acc, r["o"]) + int(r["count"]))
    return list(accounts.values())


def audit(lh: Lakehouse) -> list[FileAccount]:
    """Accounts of every landed file and delivery: bronze tables, and the rejected files."""
    import os
    from datetime import UTC, datetime

    from pipelines.lakehouse.landed import count_records, inspect

    settings = lh.settings
    out: list[FileAccount] = []
    for name, conf in settings.tables.items():
        if conf.source is None or not lh.exists(name):
            continue
        source = settings.sources[conf.source]
        accounts = account_table(lh, name)
        # The delivery still in landing is counted in the file itself (earlier ones are gone).
        latest: dict[str, FileAccount] = {}
        for acc in accounts:
            if acc.file not in latest or (acc.delivered_at or 0) > (latest[acc.file].delivered_at or 0):
                latest[acc.file] = acc
        for rel, acc in latest.items():
            path = settings.landing_dir / rel
            if not path.is_file():
                acc.notes.append("no longer in landing")
                continue
            modified = datetime.fromtimestamp(os.stat(path).st_mtime, tz=UTC)
            delivered = acc.delivered_at
            if delivered is not None and abs(modified.timestamp() - delivered.timestamp()) > 1:
                acc.notes.append("landing holds a newer delivery, not ingested yet")
                continue
            looked = inspect(
                _info(settings.landing_dir, path), source.format, source.columns, source.schema_evolution
            )
            acc.file_rows = count_records(looked, source.format)
        out += accounts
    rejected = settings.system_table("rejected_files")
    if lh.exists(rejected):
        for r in lh.read(rejected).collect():
            acc = FileAccount(r["table"] or "-", r["file_name"], None, rejected=1, notes=[str(r["reason"])])
            path = settings.landing_dir / r["file_name"]
            if path.is_file() and r["table"]:
                try:
                    source = settings.sources[settings.table(r["table"]).source or ""]
                    acc.file_rows = count_records(
                        inspect(
                            _info(settings.landing_dir, path),
                            source.format,
                            source.columns,
                            source.schema_evolution,
                        ),
                        source.format,
                    )
                except Exception:  # noqa: BLE001 - an unreadable rejected file has no countable rows
                    acc.file_rows = None
            out.append(acc)
    return out


def _info(landing: Any, path: Any) -> Any:
    from pipelines.lakehouse.landed import _info as info

    return info(landing, path)


def check(accounts: list[FileAccount]) -> None:
    lost = [a for a in accounts if a.unaccounted]
    if lost:
        total = sum(a.unaccounted for a in lost)
        raise AuditError(
            f"{total:,} row(s) unaccounted in {len(lost)} delivery(ies), first {lost[0].table} {lost[0].file}: "
            "they are neither in silver, its quarantine, superseded by another delivery, nor in a rejected file"
        )
