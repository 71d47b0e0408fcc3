"""The whole pipeline on both Delta engines gives the same tables.

The slow tier's full run (``full_run``) uses the default engine: native delta-spark where ``medallion setup``
fetched the jars. Here the same landed files (copied with their modification times) go through the offline
engine (``MEDALLION_ENGINE=offline``), and every table the first native run produced is compared with the
offline run's, read by deltalake (a reader that is neither engine): the same tables, the same schema (names,
types, nullability, column comments) and the same rows, but for run ids, wall-clock times and the engine
name. A difference is a bug in one of the engines.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from delta_compare import comparable, differences, first_run_id, tables_of, version_of_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def offline_run(full_run: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory, cli: Any) -> Path:
    home = tmp_path_factory.mktemp("full-sample-offline")
    # copy2 keeps modification times: the same files, not a re-delivery.
    shutil.copytree(full_run[0] / "landing", home / "landing", copy_function=shutil.copy2)
    done = cli(home, "run", "--no-land", env={"MEDALLION_ENGINE": "offline"})
    assert done.returncode == 0, done.stderr
    assert "engine=offline" in done.stdout
    return home


def test_native_and_offline_runs_give_the_same_tables(
    full_run: tuple[Path, Any], offline_run: Path, native_store_or_none: Any, rows_of: Any
) -> None:
    native_home, native_done = full_run
    if native_store_or_none is None:
        pytest.skip("native engine: no Delta jars and no Maven repository reachable: nothing to compare with")
    assert "engine=native" in native_done.stdout, "the full run did not use the native engine"
    run_id = first_run_id(native_done.stdout)
    native_lake, offline_lake = native_home / "lakehouse", offline_run / "lakehouse"
    assert tables_of(native_lake) == tables_of(offline_lake)
    assert len(tables_of(native_lake)) >= 18
    pairs = []
    for name in tables_of(native_lake):
        layer, short = name.split(".")
        native = comparable(native_lake / layer / short, version_of_run(native_lake / layer / short, run_id),
                            native_home, rows_of)  # fmt: skip
        offline = comparable(offline_lake / layer / short, version_of_run(offline_lake / layer / short, None),
                             offline_run, rows_of)  # fmt: skip
        pairs.append((name, native, offline))
    different = differences(pairs, ("native", "offline"))
    assert not different, "\n".join(different)
