"""The transform runs once per row whatever the data-quality checks need: on both engines (the native case is
in the native tier, the offline one in the fast tier)."""

from __future__ import annotations

from typing import Any

import pytest
from dq_support import ROWS, TRANSFORM_ROWS, check, ids, results, with_table

from pipelines.lakehouse import Lakehouse
from pipelines.runner import run_table


@pytest.mark.parametrize(
    "engine",
    [pytest.param("offline", marks=pytest.mark.fast), pytest.param("native", marks=pytest.mark.native)],
)
@pytest.mark.parametrize("judged", ["in the write pass", "before the write"])
def test_dataset_checks_and_the_write_compute_the_batch_once(
    engine: str,
    judged: str,
    lakehouse: Lakehouse,
    native_store_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The transform (here a counting UDF) runs once per row, not once for the dataset checks and again for
    the write. A unique check (and warn-level counts) are judged in the write pass itself, nothing kept; a
    fail-level row_count must be judged before anything is committed: then the batch is kept for the write
    and released once the step is done."""
    import dataclasses

    lh = lakehouse if engine == "offline" else Lakehouse(lakehouse.settings, native_store_factory())
    checks = [check("id_unique", "unique", columns=("id",)), check("c1", "not_null", column="code")]
    if judged == "before the write":
        checks.append(check("some_rows", "row_count", min=1, action="fail"))
    lh = with_table(lh, *checks)
    tables = dict(lh.settings.tables)
    tables["silver.items"] = dataclasses.replace(
        tables["silver.items"], transform="dq_support:counted_identity"
    )
    lh = Lakehouse(dataclasses.replace(lh.settings, tables=tables), lh.store)
    from pyspark import StorageLevel

    from pipelines.dq.engine import TableChecks

    levels: list[StorageLevel] = []
    release = TableChecks.release

    def recording_release(self: TableChecks) -> None:
        assert self._batch is not None
        levels.append(self._batch.storageLevel)
        release(self)
        levels.append(self._batch.storageLevel)

    monkeypatch.setattr(TableChecks, "release", recording_release)
    run_table(lh, "silver.items", "run-once")
    assert TRANSFORM_ROWS["accumulator"].value == len(ROWS)
    assert ids(lh) == [1, 2, 3, 4, 5]
    got = results(lh, "run-once")
    assert got["id_unique"]["passed"] is True and got["id_unique"]["rows_checked"] == len(ROWS)
    assert got["c1"]["rows_failed"] == 1
    if judged == "before the write":
        assert got["some_rows"]["passed"] is True
        assert levels[0].useMemory and levels[1] == StorageLevel.NONE
    else:
        assert levels == [StorageLevel.NONE, StorageLevel.NONE]
