"""The tables the pipeline writes about itself: declared in ``conf/tables/system.yml`` like every other table.

A system table is declared with ``system: <role>`` (layer, description, columns with comments) and written
by the part of the product that owns the role, never by ``medallion run``'s transforms:

- ``dq_results``      one row per check per run (the data-quality engine)
- ``ingest_manifest`` one row per landed file and delivery (bronze ingestion)
- ``rejected_files``  one row per landed file bronze could not take, or that matches no source
- ``predictions``     the champion's prediction per flight (``medallion score``)
- ``pipeline_events`` one row per table per run (the runner)
- ``quarantine``      rows that failed a quarantine check; one table per guarded table, all declared by the
  ``quarantine:`` template (``<table>_quarantine``)

The code owns each role's column names and types (it builds the rows); the declaration owns the name, the
layer, the description and the column comments. The loader checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.lakehouse.base import ddl_columns, with_comments

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.lakehouse import Lakehouse


@dataclass(frozen=True)
class Role:
    writer: str
    ddl: str

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(ddl_columns(self.ddl))


ROLES: dict[str, Role] = {
    "dq_results": Role(
        "the data-quality engine (pipelines/dq/engine.py), once per checked batch",
        "run_id STRING, table_name STRING, table_version BIGINT, check_name STRING, check_type STRING, "
        "action STRING, columns STRING, rows_checked BIGINT, rows_failed BIGINT, passed BOOLEAN, "
        "details STRING, checked_at TIMESTAMP",
    ),
    "ingest_manifest": Role(
        "bronze ingestion (pipelines/lakehouse/ingest.py), once per landed file and delivery",
        "table string not null, file_name string not null, file_size long not null, "
        "file_modified_ms long not null, bronze_version long not null, run_id string not null, "
        "status string not null, ingested_at timestamp not null",
    ),
    "rejected_files": Role(
        "bronze ingestion (pipelines/lakehouse/ingest.py), once per landed file it could not take",
        "table STRING, file_name STRING, file_size BIGINT, file_modified_ms BIGINT, reason STRING, "
        "run_id STRING, rejected_at TIMESTAMP",
    ),
    "predictions": Role(
        "batch scoring (pipelines/ml/score.py), MERGE on flight_id",
        "flight_id STRING, probability DOUBLE, predicted_label INT, model_name STRING, model_version STRING, "
        "scored_at TIMESTAMP",
    ),
    "pipeline_events": Role(
        "the runner (pipelines/events.py), once per table per run",
        "run_id STRING, command STRING, table_name STRING, status STRING, reason STRING, rows_read BIGINT, "
        "rows_written BIGINT, seconds DOUBLE, table_version BIGINT, engine STRING, error_class STRING, "
        "error_message STRING, started_at TIMESTAMP, finished_at TIMESTAMP",
    ),
    "quarantine": Role(
        "the data-quality engine, for every table with a quarantine check",
        "failed_checks ARRAY<STRING>, run_id STRING, quarantined_at TIMESTAMP, record STRING, "
        "source_record STRING",
    ),
}
# Roles declared by one table each; ``quarantine`` is declared once as a template (Settings.quarantine).
SINGLE_ROLES = ("dq_results", "ingest_manifest", "rejected_files", "predictions", "pipeline_events")
QUARANTINE_SUFFIX = "_quarantine"


def quarantine_name(table_name: str) -> str:
    return f"{table_name}{QUARANTINE_SUFFIX}"


def has_quarantine(table: Any) -> bool:
    return any(c.action == "quarantine" for c in table.expectations)


def problems(settings: Settings) -> list[str]:
    """What is wrong with the system-table declarations (empty: nothing)."""
    found: list[str] = []
    by_role: dict[str, list[str]] = {}
    for name, table in settings.tables.items():
        if table.system is None:
            continue
        where = f"{table.declared_in or 'conf'}: table {name}"
        role = ROLES.get(table.system)
        if role is None or (table.system == "quarantine" and not name.endswith(QUARANTINE_SUFFIX)):
            found.append(
                f"{where}: system {table.system!r} is not a known role; allowed: {', '.join(SINGLE_ROLES)} "
                "(quarantine tables come from the quarantine: template)"
            )
            continue
        by_role.setdefault(table.system, []).append(name)
        if table.transform or table.source:
            found.append(
                f"{where}: a system table is written by {role.writer}; it takes no transform or source"
            )
        if table.system != "quarantine" and tuple(table.columns) != role.columns:
            found.append(
                f"{where}: declare exactly the columns {role.writer} writes, in this order: "
                f"{', '.join(role.columns)}"
            )
    for role_name in SINGLE_ROLES:
        names = by_role.get(role_name, [])
        if len(names) != 1:
            found.append(
                f"{settings.conf_dir}/tables: {'no table declares' if not names else 'several tables declare'} "
                f"`system: {role_name}`{' (' + ', '.join(names) + ')' if names else ''}; declare exactly one"
            )
    for key, role_name in (("dq_table", "dq_results"), ("predictions_table", "predictions")):
        named = getattr(settings.ml, key)
        if by_role.get(role_name) and named not in by_role[role_name]:
            found.append(
                f"{settings.conf_dir}: ml.{key} is {named!r} but the table declared with `system: {role_name}` "
                f"is {by_role[role_name][0]}"
            )
    template = tuple(settings.quarantine.columns)
    if template != ROLES["quarantine"].columns:
        found.append(
            f"{settings.conf_dir}/tables: quarantine.columns must declare, in this order: "
            f"{', '.join(ROLES['quarantine'].columns)}"
        )
    return found


def quarantine_tables(settings: Settings, declared_in: str) -> dict[str, Any]:
    """The quarantine table declaration of every table with a quarantine check (from the template)."""
    from pipelines.config import TableConf

    out: dict[str, Any] = {}
    for name, table in settings.tables.items():
        if table.system is None and has_quarantine(table):
            out[quarantine_name(name)] = TableConf(
                layer=table.layer,
                description=settings.quarantine.description.format(table=name),
                inputs=(name,),
                columns=settings.quarantine.columns,
                system="quarantine",
                declared_in=declared_in,
            )
    return out


def append_rows(
    lh: Lakehouse, role: str, rows: list[tuple[Any, ...]], commit_info: Mapping[str, Any] | None = None
) -> str:
    """Append driver-side rows to the system table of ``role``; created, documented, on first use."""
    name = lh.settings.system_table(role)
    ddl = ROLES[role].ddl
    if lh.exists(name):
        lh.append_rows(name, rows, ddl, commit_info=commit_info)
        return name
    conf = lh.settings.table(name)
    df = lh.spark.createDataFrame(rows, ddl)
    df = with_comments(df, conf.columns)  # documented from the first commit
    lh.write(df, name, "append", description=conf.description, commit_info=commit_info)
    return name
