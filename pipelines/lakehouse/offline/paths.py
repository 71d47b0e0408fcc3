"""Paths and partitions of the offline engine: table folders, the log's file paths, partition values.

delta-rs percent-encodes paths and partition directory names in its own way, Spark decodes them in
another; everything that turns one into the other lives here.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.errors import StorageError
from pipelines.lakehouse.base import TableRef

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
#: Folder (inside the table) where Spark writes a write's files before they move into place.
STAGING_PREFIX = "_staging-"


def table_root(table: TableRef) -> str:
    if table.kind != "path":
        raise StorageError(
            f"{table.name}: the offline engine works on folders, not catalog tables ({table.location}); "
            "use storage.naming 'path' locally"
        )
    return table.location


def is_delta(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "_delta_log"))


def _unescape_path_segment(value: str) -> str:
    """Undo Spark's partition-directory escaping (``%2F`` -> ``/``)."""
    return urllib.parse.unquote(value)


def local_path(uri: str) -> str:
    """``file:///a/b%20c`` -> ``/a/b c`` (normalised), for comparing Spark's file names with the log's."""
    path = urllib.parse.urlparse(uri).path if uri.startswith("file:") else uri
    return os.path.normpath(urllib.parse.unquote(path))


def _spark_unescape(value: str) -> str:
    """Spark's decoding of a partition directory name: every ``%XX`` is one character (not a UTF-8 byte)."""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


def active_files(
    dtable: Any, root: str, partition_cols: Sequence[str]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(raw relative path, local path, typed partition values from the log) of every active file."""
    import pyarrow as pa

    actions = pa.table(dtable.get_add_actions(flatten=True))
    values = {c: actions.column(f"partition.{c}").to_pylist() for c in partition_cols}
    out = []
    for i, path in enumerate(actions.column("path").to_pylist()):
        rel = urllib.parse.unquote(path)
        local = local_path(path) if "://" in path else os.path.join(root, rel)
        out.append((rel, local, {c: values[c][i] for c in partition_cols}))
    return out


def hive_consistent(
    rel: str, values: Mapping[str, Any], schema: StructType, partition_cols: Sequence[str]
) -> bool:
    """True when Spark's partition discovery of ``rel`` (``<col>=<value>/...``) yields the log's values."""
    from pyspark.sql.types import StringType, TimestampNTZType, TimestampType

    segments = rel.split("/")[:-1]
    if rel.startswith("/") or len(segments) != len(partition_cols):
        return False
    for segment, col in zip(segments, partition_cols, strict=True):
        key, sep, raw = segment.partition("=")
        if not sep or _spark_unescape(key) != col:
            return False
        decoded = _spark_unescape(raw)
        if decoded != urllib.parse.unquote(raw):
            return False  # percent-encoded UTF-8: Spark would decode another string
        value = values[col]
        dtype = schema[col].dataType
        if isinstance(dtype, TimestampType | TimestampNTZType):
            return False  # directory text depends on the writer's time zone: trust the log
        if isinstance(dtype, StringType):
            if (None if decoded == HIVE_NULL else decoded) != (None if value == "" else value):
                return False
        elif (decoded == HIVE_NULL) != (value is None):
            return False
    return True


def partition_string(value: Any) -> str | None:
    """Delta's string form of a partition value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def partition_values(rel: str, partition_cols: Sequence[str]) -> dict[str, str | None]:
    if not partition_cols:
        return {}
    segments = rel.split("/")[:-1]
    values: dict[str, str | None] = {}
    for segment, col in zip(segments, partition_cols, strict=True):
        key, _, raw = segment.partition("=")
        if key != col:
            raise StorageError(f"unexpected partition directory {segment!r} (expected column {col})")
        value = _unescape_path_segment(raw)
        values[col] = None if value == HIVE_NULL else value
    return values
