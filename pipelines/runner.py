"""Runs the declared tables in dependency order.

The order comes from each table's declared inputs (a graph, not a hard-coded sequence). A selection can
name a table (``bronze.flights``), a layer (``bronze``), or a table and everything downstream of it
(``bronze.flights+``).
"""

from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pipelines.config import LAYERS, Settings
from pipelines.errors import ConfigError, UsageError
from pipelines.lakehouse import Lakehouse, MergeSpec


@dataclass(frozen=True)
class StepResult:
    table: str
    status: str  # "ok", "nothing new", "failed"
    rows_read: int | None
    rows_written: int
    seconds: float
    version: int | None
    detail: str = ""


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def topological_order(settings: Settings) -> list[str]:
    """All declared tables, every table after its inputs; ties broken by layer, then name."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ConfigError(f"tables form a cycle: {' -> '.join((*trail, name))}")
        state[name] = 1
        for dep in settings.tables[name].inputs:
            visit(dep, (*trail, name))
        state[name] = 2
        order.append(name)

    for name in sorted(settings.tables, key=lambda n: (LAYERS.index(settings.tables[n].layer), n)):
        visit(name, ())
    return order


def downstream(settings: Settings, root: str) -> set[str]:
    found = {root}
    changed = True
    while changed:
        changed = False
        for name, table in settings.tables.items():
            if name not in found and found.intersection(table.inputs):
                found.add(name)
                changed = True
    return found


def select_tables(settings: Settings, selectors: Iterable[str] | None) -> list[str]:
    order = topological_order(settings)
    selectors = [s for s in (selectors or []) if s]
    if not selectors:
        return order
    chosen: set[str] = set()
    for sel in selectors:
        if sel in LAYERS:
            chosen |= {n for n in order if settings.tables[n].layer == sel}
        elif sel.endswith("+"):
            settings.table(sel[:-1])
            chosen |= downstream(settings, sel[:-1])
        elif sel in settings.tables:
            chosen.add(sel)
        else:
            from difflib import get_close_matches

            close = get_close_matches(sel, [*settings.tables, *LAYERS], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"--select {sel!r} names no table or layer{hint} (tables: {', '.join(order)})")
    return [n for n in order if n in chosen]


def _load_transform(path: str) -> Callable[..., object]:
    module_name, _, func = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, func)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"transform {path!r} cannot be imported: {exc}") from None


def run_table(lh: Lakehouse, name: str, run_id: str) -> StepResult:
    """Build one table: ingest for bronze, otherwise read inputs -> transform -> write as declared."""
    settings = lh.settings
    conf = settings.table(name)
    started = time.perf_counter()
    if conf.source is not None:
        from pipelines.lakehouse.ingest import ingest_function

        ingest = ingest_function(settings)  # storage.ingest: manifest (anywhere) or autoloader (Databricks)
        res = ingest(lh, name, conf, conf.source, settings.sources[conf.source], run_id)
        files = res.files_new + res.files_redelivered
        detail = f"{files} file(s) ingested, {res.files_skipped} already in"
        if res.files_redelivered:
            detail += f", {res.files_redelivered} re-delivered"
        return StepResult(
            name,
            "ok" if files else "nothing new",
            res.rows_written,
            res.rows_written,
            time.perf_counter() - started,
            res.version,
            detail,
        )
    assert conf.transform is not None
    transform = _load_transform(conf.transform)
    inputs = {dep.partition(".")[2]: lh.read(dep) for dep in conf.inputs}
    df = transform(**inputs)
    commit = {"medallion.run_id": run_id}
    if conf.write.mode == "merge":
        result = (
            lh.merge(df, name, MergeSpec(keys=conf.write.keys), commit_info=commit)
            if lh.exists(name)
            else lh.write(
                df,
                name,
                "overwrite",
                partition_by=conf.write.partition_by,
                description=conf.description,
                commit_info=commit,
            )
        )
    else:
        result = lh.write(
            df,
            name,
            conf.write.mode,
            partition_by=conf.write.partition_by,
            description=conf.description,
            commit_info=commit,
        )
    if conf.columns or conf.description:
        lh.set_comments(name, conf.description, conf.columns or None)
    return StepResult(
        name,
        "ok",
        None,
        result.rows_written + result.rows_updated,
        time.perf_counter() - started,
        result.version,
    )


def run_pipeline(
    lh: Lakehouse,
    tables: Sequence[str],
    run_id: str,
    on_step: Callable[[StepResult], None] | None = None,
) -> list[StepResult]:
    """Run ``tables`` in order; stops at the first failure (its exception propagates)."""
    results = []
    for name in tables:
        result = run_table(lh, name, run_id)
        results.append(result)
        if on_step:
            on_step(result)
    return results
