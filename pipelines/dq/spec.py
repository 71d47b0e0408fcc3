"""What a data-quality check may say in YAML, checked when the configuration loads (before any data is read).

A table declares its checks under ``expectations:`` beside its other settings in ``conf/tables/*.yml``::

    expectations:
      - name: dep_delay_plausible     # unique within the table; it names the check in every report
        type: between
        column: dep_delay
        min: -120
        max: 1500
        action: quarantine            # warn (default) | drop | quarantine | fail

Row checks (one Spark Column each; all of a table's row checks run in one pass, inside the write):
``not_null`` (column), ``between`` (column, min and/or max), ``in_set`` (column, values), ``regex`` (column,
pattern), ``expression`` (expr: any SQL boolean over the row), ``foreign_key`` (column, ref_table,
ref_column; a broadcast lookup of the reference keys, so it behaves as a row check too). A null value passes
every row check but ``not_null`` (and ``expression``, which decides for itself): nulls are ``not_null``'s job.

Dataset checks (judged over the whole batch, in the write pass or, for a fail-level count or freshness, before
it; actions ``warn`` or ``fail``):
``unique`` (columns), ``row_count`` (min and/or max rows in the batch), ``row_count_drift`` (max_change_pct
against the batch of the previous run, from the DQ results table), ``freshness`` (column, max_age_hours: the
newest value must be at most that old).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from pipelines.config import ExpectationConf, Settings, TableConf

ACTIONS = ("warn", "drop", "quarantine", "fail")
ROW_ACTIONS = ACTIONS
DATASET_ACTIONS = ("warn", "fail")


@dataclass(frozen=True)
class CheckType:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    actions: tuple[str, ...]
    row_level: bool


CHECK_TYPES: dict[str, CheckType] = {
    "not_null": CheckType(("column",), (), ROW_ACTIONS, True),
    "between": CheckType(("column",), ("min", "max"), ROW_ACTIONS, True),
    "in_set": CheckType(("column", "values"), (), ROW_ACTIONS, True),
    "regex": CheckType(("column", "pattern"), (), ROW_ACTIONS, True),
    "expression": CheckType(("expr",), (), ROW_ACTIONS, True),
    "foreign_key": CheckType(("column", "ref_table", "ref_column"), (), ROW_ACTIONS, True),
    "unique": CheckType(("columns",), (), DATASET_ACTIONS, False),
    "row_count": CheckType((), ("min", "max"), DATASET_ACTIONS, False),
    "row_count_drift": CheckType(("max_change_pct",), (), DATASET_ACTIONS, False),
    "freshness": CheckType(("column", "max_age_hours"), (), DATASET_ACTIONS, False),
}
# Keys every check may carry, whatever its type.
COMMON_KEYS = ("name", "type", "action", "description")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _is_set(check: ExpectationConf, key: str) -> bool:
    value = getattr(check, key)
    return value not in (None, (), "")


def _number(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, found {value!r}")


def check_columns(check: ExpectationConf) -> list[str]:
    """The columns of the checked table that ``check`` names (not the reference table's)."""
    names = list(check.columns)
    if check.column:
        names.append(check.column)
    return names


def validate_expectation(table_name: str, table: TableConf, check: ExpectationConf) -> None:
    where = f"{table.declared_in or 'conf'}: table {table_name}, check {check.name!r}"
    if not _NAME.match(check.name):
        raise ConfigError(f"{where}: a check name is lower_snake_case (letters, digits, _)")
    kind = CHECK_TYPES.get(check.type)
    if kind is None:
        from difflib import get_close_matches

        close = get_close_matches(check.type, list(CHECK_TYPES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{where}: unknown check type {check.type!r}{hint}; known types: {', '.join(CHECK_TYPES)}"
        )
    if check.action not in kind.actions:
        raise ConfigError(
            f"{where}: action {check.action!r} is not allowed for a {check.type} check; "
            f"allowed: {', '.join(kind.actions)}"
        )
    missing = [k for k in kind.required if not _is_set(check, k)]
    if missing:
        raise ConfigError(f"{where}: a {check.type} check needs {', '.join(missing)}")
    allowed = set(COMMON_KEYS) | set(kind.required) | set(kind.optional)
    extra = [
        k
        for k in ("column", "columns", "min", "max", "values", "pattern", "expr", "ref_table", "ref_column")
        + ("max_change_pct", "max_age_hours")
        if k not in allowed and _is_set(check, k)
    ]
    if extra:
        raise ConfigError(f"{where}: a {check.type} check takes no {', '.join(extra)}")
    if check.type in ("between", "row_count"):
        if check.min is None and check.max is None:
            raise ConfigError(f"{where}: a {check.type} check needs min, max or both")
        for key in ("min", "max"):
            if getattr(check, key) is not None:
                _number(getattr(check, key), f"{where}: {key}")
        if check.min is not None and check.max is not None and check.min > check.max:
            raise ConfigError(f"{where}: min {check.min} is above max {check.max}")
    if check.type == "regex":
        try:
            re.compile(check.pattern or "")
        except re.error as exc:
            raise ConfigError(f"{where}: pattern {check.pattern!r} is not a valid regex: {exc}") from None
    if check.type == "row_count_drift":
        _number(check.max_change_pct, f"{where}: max_change_pct")
    if check.type == "freshness":
        _number(check.max_age_hours, f"{where}: max_age_hours")
    if table.columns:
        unknown = [c for c in check_columns(check) if c not in table.columns]
        if unknown:
            from difflib import get_close_matches

            close = get_close_matches(unknown[0], list(table.columns), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{where}: column {unknown[0]!r} is not a column of {table_name}{hint}; "
                f"declared columns: {', '.join(table.columns)}"
            )


def validate_expectations(settings: Settings) -> None:
    """Reject every YAML mistake in the declared checks, naming file, table and check."""
    for table_name, table in settings.tables.items():
        validate_table_expectations(settings, table_name, table)


def validate_table_expectations(settings: Settings, table_name: str, table: TableConf) -> None:
    """The checks of one table: the first mistake raises ConfigError naming file, table and check."""
    seen: set[str] = set()
    for check in table.expectations:
        if check.name in seen:
            raise ConfigError(
                f"{table.declared_in or 'conf'}: table {table_name} declares the check {check.name!r} twice"
            )
        seen.add(check.name)
        validate_expectation(table_name, table, check)
        if check.type == "foreign_key":
            ref = settings.tables.get(check.ref_table or "")
            if ref is None:
                raise ConfigError(
                    f"{table.declared_in or 'conf'}: table {table_name}, check {check.name!r}: "
                    f"ref_table {check.ref_table!r} is not a declared table"
                )
            if ref.columns and check.ref_column not in ref.columns:
                raise ConfigError(
                    f"{table.declared_in or 'conf'}: table {table_name}, check {check.name!r}: "
                    f"{check.ref_table} has no column {check.ref_column!r}"
                )
