"""Write the documentation site: ``index.html`` (the graph and every table), one page per table under
``tables/``, ``ml.html`` (model versions, lineage, metrics, plots, champion history) and one stylesheet.

Everything is static HTML with inline SVG: no JavaScript, no web fonts, no remote URL anywhere, so the site
reads the same from a laptop's disk, a CI artifact or a shared folder with no network.

What each table page shows: description and declaration (layer, write mode, inputs, transform), upstream and
downstream links, columns with their stored types and comments, checks with their latest result and a bar
chart of failures per run (from the DQ results table), the Delta history (from the log), and the quarantine
table's row count per failed check.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.docs.graph import graph_svg, trend_svg
from pipelines.output_dir import prepare_output_dir

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.lakehouse import Lakehouse

MARKER = ".medallion-docs"
CSS = "site.css"
HISTORY_LIMIT = 25
TREND_RUNS = 30


@dataclass
class CheckDoc:
    name: str
    type: str
    action: str
    columns: str
    results: list[dict[str, Any]] = field(default_factory=list)  # oldest first


@dataclass
class TableDoc:
    name: str
    exists: bool
    version: int | None = None
    rows: int | None = None
    columns: list[tuple[str, str, str]] = field(default_factory=list)  # name, type, comment
    history: list[dict[str, Any]] = field(default_factory=list)
    checks: list[CheckDoc] = field(default_factory=list)
    quarantine: tuple[str, int, list[tuple[str, int]]] | None = None  # table, rows, per check


@dataclass
class ModelDoc:
    name: str
    versions: list[dict[str, Any]] = field(default_factory=list)  # newest first
    champion: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Site:
    index: Path
    pages: tuple[Path, ...]
    seconds: float


def _when(ms: Any) -> str:
    if ms is None:
        return ""
    if isinstance(ms, datetime):
        return ms.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _page_name(table: str) -> str:
    return f"{table}.html"


# ---- gathering ------------------------------------------------------------------------------------------


def _dq_results(lh: Lakehouse) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """DQ results by table and check, oldest first (one read of the results table)."""
    name = lh.settings.system_table("dq_results")
    if not lh.exists(name):
        return {}
    cols = ["run_id", "table_name", "table_version", "check_name", "rows_checked", "rows_failed", "passed",
            "details", "checked_at"]  # fmt: skip
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in lh.read(name).select(*cols).orderBy("checked_at").collect():
        out.setdefault(row["table_name"], {}).setdefault(row["check_name"], []).append(row.asDict())
    return out


def _quarantine(lh: Lakehouse, name: str) -> tuple[str, int, list[tuple[str, int]]] | None:
    from pipelines import reports
    from pipelines.analyst.catalog import row_count
    from pipelines.system import has_quarantine, quarantine_name

    if not has_quarantine(lh.settings.tables[name]):
        return None
    q = quarantine_name(name)
    if not lh.exists(q):
        return q, 0, []
    reasons = [(r["check_name"], int(r["rows"])) for r in reports.quarantine_reasons(lh.read(q)).collect()]
    return q, row_count(lh, q), reasons


def table_doc(lh: Lakehouse, name: str, dq: dict[str, dict[str, list[dict[str, Any]]]]) -> TableDoc:
    from pipelines.analyst.catalog import row_count
    from pipelines.dq.spec import check_columns

    conf = lh.settings.tables[name]
    doc = TableDoc(name, lh.exists(name))
    if doc.exists:
        doc.version = lh.version(name)
        doc.rows = row_count(lh, name)
        doc.columns = [
            (f.name, f.dataType.simpleString(), conf.columns.get(f.name) or f.metadata.get("comment", ""))
            for f in lh.schema(name).fields
        ]
        doc.history = lh.history(name, limit=HISTORY_LIMIT)
    else:
        doc.columns = [(c, "", comment) for c, comment in conf.columns.items()]
    results = dq.get(name, {})
    doc.checks = [
        CheckDoc(c.name, c.type, c.action, ", ".join(check_columns(c)), results.get(c.name, []))
        for c in conf.expectations
    ]
    if conf.built_by_runner:
        doc.quarantine = _quarantine(lh, name)
    return doc


def model_doc(settings: Settings, out: Path) -> ModelDoc:
    """Registered versions of the model with their lineage, metrics and plots (copied into ``out``)."""
    import os

    from pipelines.ml import tracking

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    info = tracking.tracking_info(settings)
    doc = ModelDoc(info.model_name)
    if info.local_db is not None and not info.local_db.exists():
        doc.note = "no model trained yet (medallion run trains one once gold.flight_features exists)"
        return doc
    try:
        import mlflow
    except ImportError:
        doc.note = "mlflow is not installed here (pip install 'medallion[ml]'): no registry to show"
        return doc

    previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    try:
        tracking.configure(settings)
        client = tracking.client(info)
        try:
            versions = client.search_model_versions(f"name='{info.model_name}'")
        except Exception as exc:  # no registered model yet, or no registry
            doc.note = f"no registered model {info.model_name!r} ({type(exc).__name__})"
            return doc
        try:
            doc.champion = str(client.get_model_version_by_alias(info.model_name, "champion").version)
        except Exception:
            doc.champion = None
        for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
            doc.versions.append(_version_doc(client, mv, out))
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    return doc


def _version_doc(client: Any, mv: Any, out: Path) -> dict[str, Any]:
    import mlflow

    tags = dict(mv.tags or {})
    try:  # searches do not return aliases in every MLflow store: ask for the version itself
        aliases = list(client.get_model_version(mv.name, mv.version).aliases or [])
    except Exception:
        aliases = list(getattr(mv, "aliases", []) or [])
    entry: dict[str, Any] = {
        "version": str(mv.version),
        "created": _when(mv.creation_timestamp),
        "aliases": sorted(aliases),
        "run_id": mv.run_id,
        "features": f"{tags.get('medallion.features_table', '?')} v{tags.get('medallion.features_version', '?')}",
        "decision": tags.get("medallion.decision", ""),
        "reason": tags.get("medallion.decision_reason", ""),
        "metrics": {},
        "plots": [],
    }
    try:
        run = client.get_run(mv.run_id)
        entry["metrics"] = {
            k: v for k, v in sorted(run.data.metrics.items()) if k.startswith(("val_", "baseline_"))
        }
        folder = out / "ml" / f"v{mv.version}"
        local = mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path="plots", dst_path=str(folder)
        )
        entry["plots"] = sorted(p.relative_to(out).as_posix() for p in Path(local).rglob("*.png"))
    except Exception as exc:  # a run whose artifacts are gone: the registry entry is still shown
        entry["note"] = f"run details unavailable ({type(exc).__name__})"
    return entry


# ---- rendering -------------------------------------------------------------------------------------------


def _page(title: str, body: str, depth: int = 0) -> str:
    up = "../" * depth
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
        f'<link rel="stylesheet" href="{up}{CSS}"></head>\n<body><header><a class="brand" href="{up}index.html">'
        f'medallion</a> <a href="{up}index.html#tables">tables</a> <a href="{up}ml.html">model</a></header>\n'
        f"<main>{body}</main></body></html>\n"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """An HTML table; cells are given as HTML (escape text before)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _link(name: str, settings: Settings, prefix: str = "") -> str:
    if name not in settings.tables:
        return escape(name)
    return f'<a href="{prefix}{escape(_page_name(name))}">{escape(name)}</a>'


def index_html(settings: Settings, docs: dict[str, TableDoc], model: ModelDoc) -> str:
    from pipelines.analyst.sql import known_names

    graph = graph_svg(settings, model.name)
    rows = []
    for name in known_names(settings):
        doc, conf = docs[name], settings.tables[name]
        kind = f"system: {conf.system}" if conf.system else (conf.write.mode if conf.transform else "ingest")
        rows.append(
            [
                _link(name, settings, "tables/"),
                escape(conf.layer),
                escape(kind),
                f"{doc.rows:,}" if doc.rows is not None else "not built yet",
                "" if doc.version is None else str(doc.version),
                escape(conf.description),
            ]
        )
    body = (
        "<h1>medallion: tables and lineage</h1>"
        f'<p class="muted">env {escape(settings.env)}; generated {_when(datetime.now(UTC))} UTC. '
        "Boxes link to the table pages; dashed arrows: a foreign-key check reads the table.</p>"
        f'<section class="graph">{graph}</section>'
        f'<h2 id="tables">Tables</h2>{_table(["table", "layer", "written", "rows", "version", "description"], rows)}'
    )
    return _page("medallion: tables and lineage", body)


def _check_rows(doc: TableDoc) -> list[list[str]]:
    rows = []
    for check in doc.checks:
        last = check.results[-1] if check.results else None
        if last is None:
            result = '<span class="muted">no result yet</span>'
        else:
            status = "passed" if last["passed"] else "failed"
            result = (
                f'<span class="{status}">{status}</span> {int(last["rows_failed"]):,} of '
                f"{int(last['rows_checked']):,} rows; {escape(last['details'] or '')} "
                f'<span class="muted">(run {escape(last["run_id"])}, v{last["table_version"]})</span>'
            )
        points = [
            (f"{r['run_id']} {_when(r['checked_at'])}", int(r["rows_failed"]), int(r["rows_checked"]))
            for r in check.results[-TREND_RUNS:]
        ]
        rows.append(
            [escape(check.name), escape(check.type), escape(check.action), escape(check.columns), result,
             trend_svg(points)]
        )  # fmt: skip
    return rows


def table_html(settings: Settings, doc: TableDoc) -> str:
    conf = settings.tables[doc.name]
    ups = sorted({*conf.inputs, *(c.ref_table for c in conf.expectations if c.ref_table)} - {None})  # type: ignore[arg-type]
    downs = sorted(
        {n for n, t in settings.tables.items() if doc.name in t.inputs}
        | {n for n, t in settings.tables.items() for c in t.expectations if c.ref_table == doc.name}
    )
    made = (
        f"system table written by {escape(conf.system)}"
        if conf.system
        else f"ingested from source <code>{escape(conf.source or '')}</code>"
        if conf.source
        else f"transform <code>{escape(conf.transform or '')}</code>, written with {escape(conf.write.mode)}"
    )
    state = f"{doc.rows:,} rows, Delta version {doc.version}" if doc.exists else "not built yet"
    parts = [
        f'<h1>{escape(doc.name)}</h1><p class="lead">{escape(conf.description)}</p>',
        f'<p><span class="badge {escape(conf.layer)}">{escape(conf.layer)}</span> {made}; {state}. '
        f'<span class="muted">Declared in {escape(Path(conf.declared_in).name)}.</span></p>',
        '<div class="links"><div><h3>Upstream</h3>'
        + (", ".join(_link(n, settings) for n in ups) or '<span class="muted">none</span>')
        + "</div><div><h3>Downstream</h3>"
        + (", ".join(_link(n, settings) for n in downs) or '<span class="muted">none</span>')
        + "</div></div>",
        "<h2>Columns</h2>"
        + _table(
            ["column", "type", "comment"],
            [[f"<code>{escape(c)}</code>", escape(t), escape(m)] for c, t, m in doc.columns],
        ),
    ]
    if doc.checks:
        parts.append(
            '<h2>Checks</h2><p class="muted">Latest result and failures per run (oldest left; red: rows failed).</p>'
            + _table(
                ["check", "type", "action", "columns", "latest result", "trend"], _check_rows(doc), "checks"
            )
        )
    if doc.quarantine is not None:
        q, rows, reasons = doc.quarantine
        listed = ", ".join(f"{escape(c)}: {n:,}" for c, n in reasons)
        parts.append(
            f"<h2>Quarantine</h2><p>{_link(q, settings)}: {rows:,} row(s)"
            + (f" ({listed})" if listed else "")
            + "</p>"
        )
    if doc.history:
        hist = [
            [
                str(c["version"]),
                _when(c["timestamp"]),
                escape(c.get("operation") or ""),
                escape(str(c["custom"].get("medallion.run_id", ""))),
                escape(", ".join(f"{k}={v}" for k, v in list((c.get("operationMetrics") or {}).items())[:4])),
            ]
            for c in doc.history
        ]
        parts.append(
            f'<h2>Delta history</h2><p class="muted">Newest first, at most {HISTORY_LIMIT} commits.</p>'
            + _table(["version", "time (UTC)", "operation", "run id", "metrics"], hist)
        )
    return _page(doc.name, "".join(parts), depth=1)


SUMMARY_METRICS = ("roc_auc", "pr_auc", "log_loss")


def _metric(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"


def ml_html(settings: Settings, model: ModelDoc) -> str:
    parts = [f"<h1>Model {escape(model.name)}</h1>"]
    if model.note:
        parts.append(f'<p class="muted">{escape(model.note)}</p>')
    parts.append(
        f"<p>Trained on {_link(settings.ml.features_table, settings, 'tables/')}; scores into "
        f"{_link(settings.ml.predictions_table, settings, 'tables/')}. Current champion: "
        f"{'v' + escape(model.champion) if model.champion else 'none'}.</p>"
    )
    champions = [v for v in reversed(model.versions) if v["decision"] == "champion"]
    if champions:
        parts.append(
            '<h2>Champion history</h2><ol class="champions">'
            + "".join(
                f"<li>v{escape(v['version'])} became champion on {escape(v['created'])}: {escape(v['reason'])}</li>"
                for v in champions
            )
            + "</ol>"
        )
    if model.versions:
        rows = [
            [
                "v"
                + escape(v["version"])
                + "".join(f' <span class="badge ml">{escape(a)}</span>' for a in v["aliases"]),
                escape(v["created"]),
                escape(v["features"]),
                escape(v["decision"]),
                *[_metric(v["metrics"].get(f"val_{m}")) for m in SUMMARY_METRICS],
            ]
            for v in model.versions
        ]
        parts.append(
            "<h2>Versions</h2>"
            + _table(["version", "registered (UTC)", "trained on", "decision", *SUMMARY_METRICS], rows)
        )
    for v in model.versions:
        names = sorted({k.split("_", 1)[1] for k in v["metrics"]})
        metrics = _table(
            ["metric (validation)", "model", "baseline"],
            [
                [escape(m), _metric(v["metrics"].get(f"val_{m}")), _metric(v["metrics"].get(f"baseline_{m}"))]
                for m in names
            ],
            "metrics",
        )
        plots = "".join(
            f'<figure><img src="{escape(p)}" alt="{escape(Path(p).stem)}"><figcaption>{escape(Path(p).stem)}</figcaption></figure>'
            for p in v["plots"]
        )
        parts.append(
            f'<h3 id="v{escape(v["version"])}">Version {escape(v["version"])}</h3>'
            f"<p>run <code>{escape(v['run_id'] or '')}</code>, trained on {escape(v['features'])}; {escape(v['reason'])}"
            f"{' (' + escape(v['note']) + ')' if v.get('note') else ''}</p>"
            f'{metrics if names else ""}<div class="plots">{plots}</div>'
        )
    return _page(f"model {model.name}", "".join(parts))


# ---- the site ---------------------------------------------------------------------------------------------


def _prepare(out: Path) -> None:
    prepare_output_dir(out, MARKER, "medallion docs")
    (out / "tables").mkdir()
    shutil.copyfile(Path(__file__).with_name(CSS), out / CSS)


def build_site(lh: Lakehouse, out: Path, progress: Callable[[str], None] | None = None) -> Site:
    """Write the site into ``out`` (replaced when it holds an earlier build); returns its pages."""
    started = time.perf_counter()
    settings = lh.settings
    _prepare(out)
    dq = _dq_results(lh)
    docs = {}
    for name in settings.tables:
        docs[name] = table_doc(lh, name, dq)
        if progress:
            progress(name)
    model = model_doc(settings, out)
    pages = [out / "index.html", out / "ml.html"]
    pages[0].write_text(index_html(settings, docs, model), encoding="utf-8")
    pages[1].write_text(ml_html(settings, model), encoding="utf-8")
    for name, doc in docs.items():
        page = out / "tables" / _page_name(name)
        page.write_text(table_html(settings, doc), encoding="utf-8")
        pages.append(page)
    return Site(pages[0], tuple(pages), time.perf_counter() - started)
