"""Offline Delta engine: Spark writes the parquet files, the ``deltalake`` package commits the Delta log.

Used where delta-spark's jars are absent (no Maven access at install time) or when asked for
(``storage.engine: offline`` / ``MEDALLION_ENGINE=offline``). Spark does all the compute and writes the data
files in parallel; deltalake (delta-rs) commits them in one transaction; reads hand Spark the table's active
file list. MERGE, DELETE, UPDATE, history, time travel, OPTIMIZE and VACUUM go through deltalake.

The parts:

- :mod:`~pipelines.lakehouse.offline.features`  which tables the engine may read and write (feature gates)
- :mod:`~pipelines.lakehouse.offline.paths`     table folders, the log's file paths, partition values
- :mod:`~pipelines.lakehouse.offline.stats`     Delta file statistics from the parquet footers
- :mod:`~pipelines.lakehouse.offline.core`      the table handle, reads, history
- :mod:`~pipelines.lakehouse.offline.write`     the staged write and its one commit, table creation
- :mod:`~pipelines.lakehouse.offline.dml`       MERGE, DELETE, UPDATE
- :mod:`~pipelines.lakehouse.offline.maintenance`  comments, properties, OPTIMIZE, VACUUM

Rules: a table using a feature a plain parquet read gets wrong is refused (UnsupportedTableFeatureError);
timestamps are INT64 microseconds; a new table's columns are nullable, as delta-spark makes them (NOT NULL
comes from :meth:`create` with a declared schema), and NOT NULL and CHECK constraints are enforced inside the
Spark write job; a failed write leaves the table at its previous version; every write reports its own
commit's version.
"""

from __future__ import annotations

from pipelines.lakehouse.offline.dml import DmlMixin
from pipelines.lakehouse.offline.maintenance import MaintenanceMixin
from pipelines.lakehouse.offline.write import WriteMixin


class OfflineDeltaStore(WriteMixin, DmlMixin, MaintenanceMixin):
    """The offline engine behind :class:`pipelines.lakehouse.base.DeltaStore`."""


__all__ = ["OfflineDeltaStore"]
