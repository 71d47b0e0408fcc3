"""What transforms and ingestion return: neutral types that neither the runner nor the storage layer owns.

Transforms in ``pipelines/<layer>/`` import :class:`TableOutput` from here, never from the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class TableOutput:
    """What a transform may return instead of a bare DataFrame.

    ``replace_where``: for tables written with ``overwrite``, replace only the rows matching this SQL predicate
    (one atomic commit), e.g. the dates a newly landed month touches; the rest of the table stays.
    """

    df: DataFrame
    replace_where: str | None = None
    # Alternative to a literal ``replace_where`` for pure transforms, which may not collect: replace the rows
    # whose ``replace_column`` takes one of the (few, distinct) values of the one-column DataFrame
    # ``replace_values``, e.g. the dates a newly landed month touches. The runner collects them and builds
    # the predicate (consecutive dates become BETWEEN ranges); no value means no row is replaced.
    replace_values: DataFrame | None = None
    replace_column: str | None = None


@dataclass(frozen=True)
class IngestResult:
    table: str
    files_new: int
    files_redelivered: int
    files_skipped: int
    rows_written: int
    version: int | None
    # Files not ingested, each "name: why" (recorded in bronze.rejected_files), and notes on the ones that
    # were (a byte-order mark, another delimiter, a new column, ...).
    rejected: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
