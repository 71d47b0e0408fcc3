"""`medallion sql` without Spark: logical names -> physical names, CTEs, errors, output formats."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pipelines.analyst.output import render
from pipelines.analyst.sql import check, known_names, translate
from pipelines.config import load_settings
from pipelines.errors import UsageError

pytestmark = pytest.mark.fast
KNOWN = ["silver.flights", "bronze.flights", "gold.route_daily_stats", "gold.dq_results", "silver.weather"]


def test_layer_table_names_become_views_and_cte_names_stay() -> None:
    sql = (
        "WITH flights AS (SELECT * FROM silver.flights WHERE origin = 'gold.route_daily_stats') "
        "SELECT f.carrier, r.flights FROM flights f JOIN gold.route_daily_stats r ON f.dest = r.dest"
    )
    out = translate(sql, KNOWN)
    assert set(out.tables) == {"silver.flights", "gold.route_daily_stats"}
    assert "FROM silver__flights AS flights" in out.sql  # the real table inside the CTE
    assert "FROM flights AS f" in out.sql  # the CTE reference is left alone
    assert "gold__route_daily_stats AS r" in out.sql
    assert "'gold.route_daily_stats'" in out.sql  # a string literal is not a table


def test_unaliased_table_keeps_its_short_name_for_qualified_columns() -> None:
    out = translate("SELECT flights.carrier FROM silver.flights", KNOWN)
    assert out.sql == "SELECT flights.carrier FROM silver__flights AS flights"


def test_unity_catalog_names_on_databricks() -> None:
    out = translate(
        "SELECT * FROM gold.dq_results d WHERE d.run_id IN (SELECT run_id FROM gold.dq_results)",
        KNOWN,
        lambda n: "medallion_prod." + n,
    )
    assert out.sql.count("medallion_prod.gold.dq_results") == 2 and out.tables == ("gold.dq_results",)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM gold.route_daly_stats", "gold.route_daily_stats"),
        ("SELECT * FROM flights", "silver.flights"),
        ("SELECT * FROM silver.flight", "silver.flights"),
    ],
)
def test_unknown_table_names_close_matches(sql: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected.replace(".", r"\.")):
        translate(sql, KNOWN)


def test_syntax_error_is_one_line_with_position() -> None:
    with pytest.raises(UsageError) as err:
        translate("SELECT carrier\nFROM WHERE x = 1", KNOWN)
    message = str(err.value)
    assert "\n" not in message and "line 2" in message and "column" in message


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE gold.route_daily_stats",
        "INSERT INTO gold.route_daily_stats SELECT * FROM gold.route_daily_stats",
        "SELECT 1; SELECT 2",
        "   ",
        "SELECT * FROM cat.gold.route_daily_stats",
    ],
)
def test_only_one_query_by_logical_names(sql: str) -> None:
    with pytest.raises(UsageError):
        translate(sql, KNOWN)


def test_check_knows_dq_results_and_quarantine_tables_without_spark() -> None:
    settings = load_settings("local")
    names = known_names(settings)
    assert {"gold.dq_results", "silver.weather_quarantine", "gold.flight_features"} <= set(names)
    assert check(settings, "SELECT * FROM silver.weather_quarantine").tables == ("silver.weather_quarantine",)
    with pytest.raises(UsageError, match="gold.flight_features"):
        check(settings, "SELECT * FROM gold.fligth_features")


def test_output_formats() -> None:
    cols = ["carrier", "flights", "share", "day", "note"]
    rows = [("UA", 58665, 0.8312345, dt.date(2013, 1, 1), None), ("AA", 7, 1.0, dt.date(2013, 1, 2), "a,b")]
    table = render("table", cols, rows).splitlines()
    assert table[0].split() == cols and table[2].split() == ["UA", "58665", "0.8312", "2013-01-01", "NULL"]
    assert table[2].index("58665") + 5 == table[3].index("7") + 1  # numbers right-aligned
    assert render("csv", cols, rows).splitlines() == [
        "carrier,flights,share,day,note",
        "UA,58665,0.8312345,2013-01-01,",
        'AA,7,1.0,2013-01-02,"a,b"',
    ]
    assert json.loads(render("json", cols, rows))[0] == {
        "carrier": "UA",
        "flights": 58665,
        "share": 0.8312345,
        "day": "2013-01-01",
        "note": None,
    }
