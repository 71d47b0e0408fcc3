"""Great Expectations suites from the same YAML checks, and Data Docs that read well offline.

GE 1.x flow: an ephemeral context, a Spark data source with one dataframe asset per table, an
``ExpectationSuite`` per table built from its declared checks, a ``ValidationDefinition`` per table, and one
``Checkpoint`` whose ``UpdateDataDocsAction`` renders the Data Docs site into a local folder.

GE's pages load Bootstrap, Font Awesome, jQuery and Vega from CDNs; offline (these machines, many clusters'
drivers) they render unstyled. :func:`make_offline` rewrites every page: CDN tags removed, a stylesheet shipped
with this package linked instead, the remote logo replaced by the local one. The pages need no JavaScript to
be read: every section is in the HTML.

Checks that only make sense on a batch in flight are not part of the suites: expressions over
in-flight ``__`` columns (the landed text and parse errors, which silver does not store) and ``row_count_drift`` (history).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import UsageError
from pipelines.output_dir import prepare_output_dir

if TYPE_CHECKING:
    from pipelines.config import ExpectationConf
    from pipelines.lakehouse import Lakehouse

SITE = "medallion_site"
#: The file that marks a folder as a report's own (an earlier report there is replaced; anything else: refused).
MARKER = ".medallion-dq-report"
CSS_NAME = "medallion_offline.css"
_CDN_TAG = re.compile(
    r"<(?:link|script)\b[^>]*(?:href|src)=\"https?://[^\"]*\"[^>]*>(?:\s*</script>)?", re.IGNORECASE
)
_REMOTE_LOGO = re.compile(r"https://great-expectations-web-assets[^\"]*logo-long\.png[^\"]*")


@dataclass
class TableReport:
    table: str
    version: int | None
    rows: int
    success: bool
    expectations: int
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass
class Report:
    index: Path
    tables: list[TableReport]
    seconds: float


def expectation_for(check: ExpectationConf, lh: Lakehouse) -> Any | None:
    """The GE expectation equivalent to ``check``, or None when it only applies to a batch in flight."""
    import great_expectations as gx

    meta = {"medallion_check": check.name, "action": check.action}
    kw: dict[str, Any] = {
        "meta": meta,
        "description": f"{check.name} ({check.action}): {check.description}".strip(": "),
    }
    ex = gx.expectations
    column = check.column or ""  # the loader checks that column checks name their column
    if check.type == "not_null":
        return ex.ExpectColumnValuesToNotBeNull(column=column, **kw)
    if check.type == "between":
        return ex.ExpectColumnValuesToBeBetween(column=column, min_value=check.min, max_value=check.max, **kw)
    if check.type == "in_set":
        return ex.ExpectColumnValuesToBeInSet(column=column, value_set=list(check.values), **kw)
    if check.type == "regex":
        return ex.ExpectColumnValuesToMatchRegex(column=column, regex=check.pattern or "", **kw)
    if check.type == "expression":
        if "__" in (check.expr or ""):  # in-flight columns (landed text, parse errors) are not stored
            return None
        return ex.UnexpectedRowsExpectation(
            unexpected_rows_query=f"SELECT * FROM {{batch}} WHERE NOT coalesce(({check.expr}), false)", **kw
        )
    if check.type == "foreign_key":
        assert check.ref_table and check.ref_column
        if not lh.exists(check.ref_table):
            return None
        values = [
            r[0]
            for r in lh.read_treated(check.ref_table).select(check.ref_column).distinct().collect()
            if r[0] is not None
        ]
        return ex.ExpectColumnValuesToBeInSet(column=column, value_set=values, **kw)
    if check.type == "unique":
        if len(check.columns) == 1:
            return ex.ExpectColumnValuesToBeUnique(column=check.columns[0], **kw)
        return ex.ExpectCompoundColumnsToBeUnique(column_list=list(check.columns), **kw)
    if check.type == "row_count":
        return ex.ExpectTableRowCountToBeBetween(min_value=check.min, max_value=check.max, **kw)
    if check.type == "freshness":
        oldest = datetime.now(UTC) - timedelta(hours=float(check.max_age_hours))
        return ex.ExpectColumnMaxToBeBetween(column=column, min_value=oldest.replace(tzinfo=None), **kw)
    return None  # row_count_drift: compares runs, not a table state


def build_report(
    lh: Lakehouse,
    out_dir: Path,
    tables: list[str] | None = None,
    progress: Any = None,
) -> Report:
    """Validate the current version of every checked silver/gold table with GE; write Data Docs to out_dir."""
    import logging

    import great_expectations as gx
    from great_expectations.core import ExpectationSuite
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    settings = lh.settings
    names = tables or [
        n for n, t in settings.tables.items() if t.layer in ("silver", "gold") and t.expectations
    ]
    for n in names:
        settings.table(n)
    present = [n for n in names if lh.exists(n)]
    if not present:
        raise UsageError(
            f"none of {', '.join(names) or 'the checked tables'} is built yet; run `medallion run` first"
        )
    started = time.perf_counter()
    prepare_output_dir(out_dir, MARKER, "medallion dq report")  # never a folder of someone else's
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        SITE,
        {
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out_dir)},
        },
    )
    source = context.data_sources.add_spark("lakehouse")
    reports: list[TableReport] = []
    for name in present:
        conf = settings.table(name)
        version = lh.version(name)
        asset = source.add_dataframe_asset(f"{name}@v{version}")
        batch = asset.add_batch_definition_whole_dataframe("current_version")
        suite = context.suites.add(ExpectationSuite(name=name))
        skipped = []
        for check in conf.expectations:
            expectation = expectation_for(check, lh)
            if expectation is None:
                skipped.append(check.name)
            else:
                suite.add_expectation(expectation)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"validate {name}", data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"checkpoint {name}",
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[SITE])],
                result_format={"result_format": "SUMMARY"},
            )
        )
        df = lh.read_treated(name, version)
        result = checkpoint.run(batch_parameters={"dataframe": df})
        failed = []
        rows = 0
        for run in result.run_results.values():
            for r in run.results:
                config = r.expectation_config
                if not r.success and config is not None:
                    failed.append(str(config.meta.get("medallion_check", config.type)))
                rows = max(rows, int(r.result.get("element_count") or 0))
        item = TableReport(
            name, version, rows, bool(result.success), len(suite.expectations), failed, skipped
        )
        reports.append(item)
        if progress:
            progress(item)
    make_offline(out_dir)
    index = write_summary(out_dir, reports, lh)
    return Report(index, reports, time.perf_counter() - started)


def _page_for(site: Path, folder: str, name: str, version: int | None = None) -> str | None:
    layer, _, short = name.partition(".")
    base = site / folder / layer
    if folder == "expectations":
        page = base / f"{short}.html"
        return page.relative_to(site).as_posix() if page.is_file() else None
    pages = sorted((base / short).rglob(f"*{name}@v{version}.html")) if (base / short).is_dir() else []
    return pages[-1].relative_to(site).as_posix() if pages else None


def write_summary(site: Path, reports: list[TableReport], lh: Lakehouse) -> Path:
    """index.html: one line per table with links into GE's pages (GE's own index lists its pages only
    through JavaScript and a CDN library, so offline it is empty; it stays as ge_index.html)."""
    from html import escape

    ge_index = site / "index.html"
    if ge_index.is_file():
        ge_index.replace(site / "ge_index.html")
    rows = []
    for t in reports:
        validation = _page_for(site, "validations", t.table, t.version)
        suite = _page_for(site, "expectations", t.table)
        status = (
            '<span class="passed">passed</span>'
            if t.success
            else f'<span class="failed">failed</span>: {escape(", ".join(t.failed))}'
        )
        note = (
            f'<span class="note">not in the suite (in-flight only): {escape(", ".join(t.skipped))}</span>'
            if t.skipped
            else ""
        )
        links = " · ".join(
            f'<a href="{escape(href)}">{label}</a>'
            for label, href in (("validation", validation), ("suite", suite))
            if href
        )
        description = escape(lh.settings.table(t.table).description)
        rows.append(
            f"<tr><td><b>{escape(t.table)}</b><br><span class=note>{description}</span></td><td class=num>{t.version}</td>"
            f"<td class=num>{t.rows:,}</td><td class=num>{t.expectations}</td><td>{status}<br>{note}</td><td>{links}</td></tr>"
        )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>medallion data-quality report</title>
<link rel="stylesheet" href="static/styles/{CSS_NAME}"></head>
<body><nav class="navbar"><span class="navbar-brand">medallion · data-quality report</span>
<span class="text-muted">{when} · Great Expectations suites built from conf/tables/*.yml</span></nav>
<div class="summary">
<p>Each table was validated at the Delta version shown. A failed <i>warn</i> check is a known, accepted finding
(see its reason in conf/tables); the pipeline's own per-run counts are in <code>gold.dq_results</code>
(<code>medallion dq results</code>). <a href="ge_index.html">Great Expectations index</a>.</p>
<div class="card"><div class="card-body table-responsive"><table class="table table-sm">
<thead><tr><th>table</th><th>version</th><th>rows</th><th>expectations</th><th>result</th><th>pages</th></tr></thead>
<tbody>
{"".join(rows)}
</tbody></table></div></div></div></body></html>
"""
    index = site / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


def offline_css() -> str:
    return (Path(__file__).with_name(CSS_NAME)).read_text(encoding="utf-8")


def make_offline(site: Path) -> int:
    """Rewrite every page of a Data Docs site to use only local files; returns the pages rewritten."""
    styles = site / "static" / "styles"
    styles.mkdir(parents=True, exist_ok=True)
    (styles / CSS_NAME).write_text(offline_css(), encoding="utf-8")
    pages = 0
    for page in site.rglob("*.html"):
        depth = len(page.relative_to(site).parts) - 1
        up = "../" * depth
        html = page.read_text(encoding="utf-8")
        html = _CDN_TAG.sub("", html)
        html = _REMOTE_LOGO.sub(f"{up}static/images/logo-long-vector.svg", html)
        link = f'<link rel="stylesheet" href="{up}static/styles/{CSS_NAME}">'
        html = html.replace("</head>", f"{link}\n</head>", 1)
        page.write_text(html, encoding="utf-8")
        pages += 1
    return pages
