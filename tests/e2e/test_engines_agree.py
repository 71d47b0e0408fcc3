"""The whole pipeline on both Delta engines gives the same tables.

The slow tier's full run (``full_run``) uses the default engine: native delta-spark where ``medallion setup``
fetched the jars. Here the same landed files (copied with their modification times) go through the offline
engine (``MEDALLION_ENGINE=offline``), and every table the first native run produced is compared with the
offline run's, read by deltalake (a reader that is neither engine): the same tables, the same schema (names,
types, nullability, column comments) and the same rows, but for run ids, wall-clock times and the engine
name. A difference is a bug in one of the engines.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

# Columns whose values are the run's, not the data's: ids, wall-clock times, durations, the engine itself.
VOLATILE = {
    "_run_id",
    "run_id",
    "_ingested_at",
    "ingested_at",
    "checked_at",
    "scored_at",
    "quarantined_at",
    "started_at",
    "finished_at",
    "seconds",
    "engine",
}


def tables_of(lakehouse: Path) -> list[str]:
    return sorted(f"{p.parent.name}.{p.name}" for p in lakehouse.glob("*/*") if (p / "_delta_log").is_dir())


def first_run_id(stdout: str) -> str:
    match = re.search(r"^run (\S+)\s", stdout, re.M)
    assert match, stdout[:2000]
    return match.group(1)


def version_of_run(path: Path, run_id: str | None) -> int:
    """The last version of the table committed by run ``run_id`` (other slow tests may have run the pipeline
    again in that home), or the latest version when ``run_id`` is None."""
    from deltalake import DeltaTable

    from pipelines.lakehouse.base import parse_custom

    if run_id is None:
        return int(DeltaTable(str(path)).version())
    versions = [
        int(c["version"])
        for c in DeltaTable(str(path)).history()
        if parse_custom(c).get("medallion.run_id") == run_id
    ]
    return max(versions) if versions else DeltaTable(str(path)).version()


def comparable(path: Path, version: int, home: Path, rows_of: Callable[[Any], Any]) -> tuple[Any, Any]:
    """(schema as JSON without ids, canonical rows without volatile columns, home paths replaced)."""
    import json

    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    table = DeltaTable(str(path), version=version)
    schema = json.loads(table.schema().to_json())
    data = table.to_pyarrow_table()
    data = data.select([c for c in data.column_names if c not in VOLATILE])
    columns = []
    for name in data.column_names:
        column = data.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.replace_substring(column, str(home), "<home>")
        columns.append(column)
    return schema, rows_of(pa.table(dict(zip(data.column_names, columns, strict=True))))


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
    different = []
    for name in tables_of(native_lake):
        layer, short = name.split(".")
        native = comparable(native_lake / layer / short, version_of_run(native_lake / layer / short, run_id),
                            native_home, rows_of)  # fmt: skip
        offline = comparable(offline_lake / layer / short, version_of_run(offline_lake / layer / short, None),
                             offline_run, rows_of)  # fmt: skip
        if native[0] != offline[0]:
            different.append(f"{name}: schema\n  native:  {native[0]}\n  offline: {offline[0]}")
        elif native[1] != offline[1]:
            n_rows, o_rows = native[1][1], offline[1][1]
            only_native = [r for r in n_rows if r not in set(o_rows)][:3]
            only_offline = [r for r in o_rows if r not in set(n_rows)][:3]
            different.append(
                f"{name}: rows ({len(n_rows)} native, {len(o_rows)} offline)\n"
                f"  only native:  {only_native}\n  only offline: {only_offline}"
            )
    assert not different, "\n".join(different)
