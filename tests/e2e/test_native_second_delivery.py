"""A second delivery on the native engine: the daily incremental run, MERGE into silver included.

Before constraint propagation was turned off (pipelines.session.PLANNER_CONF), delta-spark's MERGE of
silver.flights on a second delivery ran the driver out of heap (an exponential plan, 2^20 `<=>` expressions)
on a few hundred rows; no test ran a second delivery on native.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crash_trials import deliver, medallion, mini_landing  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.native]


def test_a_second_delivery_merges_into_silver_on_the_native_engine(
    tmp_path: Path, native_store_factory: Any
) -> None:
    from deltalake import DeltaTable

    native_store_factory()  # skips only without Maven; fails where the jars should be there and are not
    landing = tmp_path / "landing"
    mini_landing(landing, rows=60)
    home = tmp_path / "home"
    env = {"MEDALLION_ENGINE": "native"}
    for first in (True, False):
        deliver(landing, home / "landing", first=first)
        done = medallion(home, "run", "--no-land", "--no-ml", env=env, timeout=1500)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "engine=native" in done.stdout
    flights = DeltaTable(str(home / "lakehouse" / "silver" / "flights"))
    history = flights.history()
    assert history[0]["operation"] == "MERGE"  # newest first: the second delivery was merged
    assert int(history[0]["operationMetrics"]["numTargetRowsInserted"]) > 0
    bronze = DeltaTable(str(home / "lakehouse" / "bronze" / "flights")).to_pyarrow_table()
    silver = flights.to_pyarrow_table()
    assert 0 < silver.num_rows <= bronze.num_rows
    months = {str(d)[:7] for d in silver.column("flight_date").to_pylist()}
    assert len(months) == 3  # both deliveries' months are in silver
