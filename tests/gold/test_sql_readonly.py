"""`medallion sql` is read-only for real: every escape is refused before Spark runs anything, legitimate
analyst SQL still works, and time travel reads the version asked for on both engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.analyst.sql import analyst_lakehouse, fetch, translate
from pipelines.errors import QueryNotAllowedError, UsageError

KNOWN = ["gold.route_daily_stats", "silver.flights", "gold.dq_results"]
STATS = "gold.route_daily_stats"

ESCAPES = {
    # shell commands
    "transform": "SELECT TRANSFORM(id) USING 'touch /tmp/x' AS (x) FROM range(1)",
    "transform_in_cte": "WITH t AS (SELECT TRANSFORM(id) USING 'cat' AS (x) FROM range(1)) SELECT * FROM t",
    "transform_in_subquery": "SELECT * FROM gold.route_daily_stats WHERE origin IN "
    "(SELECT TRANSFORM(id) USING 'cat' AS (x) FROM range(1))",
    # reflection
    "java_method": "SELECT java_method('java.lang.System', 'getProperty', 'user.home')",
    "reflect": "SELECT reflect('java.lang.Thread', 'sleep', 1000L)",
    "try_reflect": "SELECT try_reflect('java.lang.Math', 'abs', -1)",
    "reflect_qualified": "SELECT system.builtin.reflect('java.lang.Math', 'abs', -1)",
    "reflect_quoted": "SELECT `reflect`('java.lang.Math', 'abs', -1)",
    "reflect_in_where": "SELECT * FROM gold.route_daily_stats WHERE reflect('java.lang.Math', 'abs', -1) > 0",
    "reflect_in_table_function": "SELECT * FROM stack(1, reflect('java.lang.Math', 'abs', -1))",
    "reflect_in_lambda": "SELECT transform(array(1), x -> java_method('java.lang.Math', 'abs', x))",
    "reflect_in_union": "SELECT 1 UNION ALL SELECT try_reflect('java.lang.Math', 'abs', -1)",
    # names made at run time
    "identifier_table": "SELECT * FROM IDENTIFIER('csv.`/etc/passwd`')",
    "identifier_column": "SELECT IDENTIFIER('origin') FROM gold.route_daily_stats",
    # functions that read paths, streams, secrets
    "read_files": "SELECT * FROM read_files('/etc/passwd', format => 'text')",
    "read_files_in_cte": "WITH f AS (SELECT * FROM read_files('/etc')) SELECT * FROM f",
    "secret": "SELECT secret('scope', 'key')",
    "unknown_table_function": "SELECT * FROM sql_keywords()",
    # file-path tables, also hidden
    "csv_path": "SELECT * FROM csv.`/etc/passwd`",
    "parquet_path": "SELECT * FROM parquet.`/tmp/data`",
    "json_path": "SELECT * FROM json.`/tmp/data.json`",
    "text_path": "SELECT * FROM text.`/etc/hosts`",
    "delta_path": "SELECT * FROM delta.`/tmp/table`",
    "path_in_cte": "WITH x AS (SELECT * FROM parquet.`/tmp/p`) SELECT * FROM x",
    "path_in_subquery": "SELECT * FROM (SELECT * FROM orc.`/tmp/o`) s",
    "path_in_exists": "SELECT 1 WHERE EXISTS (SELECT * FROM csv.`/etc/passwd`)",
    "path_in_union": "SELECT * FROM gold.route_daily_stats UNION ALL SELECT * FROM delta.`/tmp/d`",
    "path_in_join": "SELECT * FROM gold.route_daily_stats r JOIN json.`/tmp/j` j ON r.origin = j.origin",
    "path_in_lateral": "SELECT * FROM range(1) CROSS JOIN LATERAL (SELECT * FROM csv.`/etc/passwd`)",
    "path_in_scalar_subquery": "SELECT (SELECT max(_c0) FROM csv.`/etc/passwd`)",
    "path_under_layer": "SELECT * FROM gold.`/an/absolute/path`",
    "four_part_name": "SELECT * FROM a.b.c.d",
    # DDL, DML, commands (the allow-list has only queries)
    "create_view": "CREATE TEMPORARY VIEW v AS SELECT * FROM csv.`/etc/passwd`",
    "create_table": "CREATE TABLE t AS SELECT * FROM gold.route_daily_stats",
    "select_into": "SELECT * INTO gold.route_daily_stats FROM gold.route_daily_stats",
    "insert": "INSERT INTO gold.route_daily_stats SELECT * FROM gold.route_daily_stats",
    "insert_overwrite_directory": "INSERT OVERWRITE DIRECTORY '/tmp/out' SELECT 1",
    "delete": "DELETE FROM gold.route_daily_stats WHERE true",
    "update": "UPDATE gold.route_daily_stats SET flights = 0",
    "merge": "MERGE INTO gold.route_daily_stats t USING gold.route_daily_stats s ON true WHEN MATCHED THEN DELETE",
    "drop": "DROP TABLE gold.route_daily_stats",
    "alter": "ALTER TABLE gold.route_daily_stats SET TBLPROPERTIES ('a' = 'b')",
    "set": "SET spark.sql.runSQLOnFiles = true",
    "reset": "RESET",
    "use": "USE default",
    "add_jar": "ADD JAR '/tmp/evil.jar'",
    "cache": "CACHE TABLE gold.route_daily_stats",
    "uncache": "UNCACHE TABLE gold.route_daily_stats",
    "refresh": "REFRESH TABLE gold.route_daily_stats",
    "explain": "EXPLAIN SELECT 1",
    "show": "SHOW TABLES",
    "analyze": "ANALYZE TABLE gold.route_daily_stats COMPUTE STATISTICS",
    "vacuum": "VACUUM gold.route_daily_stats RETAIN 0 HOURS",
    "describe_history": "DESCRIBE HISTORY gold.route_daily_stats",
    "describe_function": "DESCRIBE FUNCTION reflect",
    # values Spark would fill in from its configuration or the environment
    "substitution": "SELECT * FROM gold.route_daily_stats WHERE origin = ${env:HOME}",
    "placeholder": "SELECT * FROM gold.route_daily_stats WHERE origin = ?",
    # hidden in hints, LATERAL and table clauses
    "function_in_hint": "SELECT /*+ REPARTITION(reflect('java.lang.Math', 'abs', -1)) */ 1",
    "subquery_in_hint": "SELECT /*+ BROADCAST((SELECT 1)) */ 1",
    "quoted_name_in_hint": "SELECT /*+ BROADCAST(`a b`) */ 1",
    "lateral_table_function": "SELECT * FROM range(1), LATERAL sql_keywords()",
    "lateral_read_files": "SELECT * FROM range(1), LATERAL read_files('/etc')",
    "table_of": "SELECT * FROM TABLE(gold.route_daily_stats)",
    "changes": "SELECT * FROM gold.route_daily_stats CHANGES (INFORMATION => DEFAULT)",
    "execute_immediate": "EXECUTE IMMEDIATE 'SELECT 1'",
    "declare": "DECLARE VARIABLE x INT",
}

LEGITIMATE = {
    "cte_join_window": (
        "WITH flights AS (SELECT carrier, dest FROM silver.flights WHERE origin = 'JFK') "
        "SELECT f.carrier, r.flights, row_number() OVER (PARTITION BY f.carrier ORDER BY r.flights DESC) AS rk "
        "FROM flights f JOIN gold.route_daily_stats r ON f.dest = r.dest"
    ),
    "aggregates": "SELECT origin, count(*) AS n, avg(flights), percentile_approx(flights, 0.5), "
    "count(*) FILTER (WHERE flights > 10) FROM gold.route_daily_stats GROUP BY origin HAVING n > 1 "
    "ORDER BY n DESC LIMIT 10",
    "grouping_sets": "SELECT origin, dest, sum(flights) FROM gold.route_daily_stats "
    "GROUP BY GROUPING SETS ((origin), (origin, dest), ())",
    "set_operations": "SELECT origin FROM gold.route_daily_stats INTERSECT SELECT origin FROM silver.flights",
    "words_in_literals": "SELECT 'SELECT TRANSFORM(id) USING ''touch x''' AS a, 'java_method(1)' AS b, "
    "'csv.`/etc/passwd`' AS c, 'gold.route_daily_stats@v3' AS d, '${env:HOME}' AS e "
    "FROM gold.route_daily_stats WHERE origin <> 'IDENTIFIER(x)' AND dest NOT LIKE '%read_files%'",
    "words_in_comments": "SELECT origin -- TRANSFORM(x) USING 'rm -rf /', java_method(), csv.`/etc`\n"
    "FROM gold.route_daily_stats /* reflect('a', 'b') read_files('/') DROP TABLE x */",
    "higher_order_transform": "SELECT transform(array(1, 2), x -> x + 1) AS t, filter(array(1), x -> x > 0) AS f",
    "generators": "SELECT * FROM range(3) CROSS JOIN LATERAL (SELECT explode(array(1, 2)) AS e)",
    "lateral_view": "SELECT origin, d FROM gold.route_daily_stats LATERAL VIEW explode(array(dest)) t AS d",
    "values": "SELECT * FROM VALUES (1, 'a'), (2, 'b') AS t(id, name)",
    "dates_and_casts": "SELECT date_trunc('MONTH', flight_date), CAST(flights AS DECIMAL(10, 2)), "
    "try_cast('x' AS INT), flight_date - INTERVAL 1 DAY, CASE WHEN flights > 1 THEN 'many' END "
    "FROM gold.route_daily_stats",
    "json_paths": "SELECT get_json_object(details, '$.a.b[0]') FROM gold.dq_results",
    "hint": "SELECT /*+ BROADCAST(r) */ * FROM gold.route_daily_stats r JOIN silver.flights f ON r.dest = f.dest",
    "hint_partitioning": "SELECT /*+ REPARTITION(3, origin), COALESCE(2) */ * FROM gold.route_daily_stats",
    "describe": "DESCRIBE EXTENDED gold.route_daily_stats",
    "describe_query": "DESCRIBE SELECT origin FROM gold.route_daily_stats",
    "pivot": "SELECT * FROM gold.route_daily_stats PIVOT (sum(flights) FOR origin IN ('JFK', 'LGA'))",
    "tablesample": "SELECT * FROM gold.route_daily_stats TABLESAMPLE (10 PERCENT)",
    "column_named_like_a_function": "SELECT r.transform, r.reflect FROM gold.route_daily_stats r",
}


@pytest.mark.fast
@pytest.mark.parametrize("sql", ESCAPES.values(), ids=ESCAPES.keys())
def test_every_escape_is_refused_before_spark(sql: str) -> None:
    with pytest.raises(QueryNotAllowedError) as err:
        translate(sql, KNOWN)
    assert "\n" not in str(err.value)


@pytest.mark.fast
def test_a_comment_end_inside_a_hint_is_refused_not_run() -> None:
    # Spark's lexer and sqlglot's could disagree on where such a hint ends: it is refused either way.
    with pytest.raises(UsageError) as err:
        translate("SELECT /*+ REPARTITION('*/') */ 1", KNOWN)
    assert "\n" not in str(err.value) and "SQL syntax error" in str(err.value)


@pytest.mark.fast
@pytest.mark.parametrize(
    "sql", ["SELECT * FROM default.secrets", "SELECT * FROM global_temp.v", "SELECT * FROM v"]
)
def test_names_other_than_the_declared_tables_are_unknown(sql: str) -> None:
    with pytest.raises(UsageError):
        translate(sql, KNOWN)


@pytest.mark.fast
@pytest.mark.parametrize("sql", LEGITIMATE.values(), ids=LEGITIMATE.keys())
def test_legitimate_analyst_queries_pass(sql: str) -> None:
    out = translate(sql, KNOWN)
    assert "gold.route_daily_stats" not in out.sql.replace("'gold.route_daily_stats@v3'", "")
    assert set(out.tables) <= set(KNOWN)


@pytest.mark.fast
def test_literals_and_comments_reach_spark_unchanged_or_not_at_all() -> None:
    out = translate(LEGITIMATE["words_in_literals"], KNOWN)
    for literal in (
        "'java_method(1)'",
        "'csv.`/etc/passwd`'",
        "'gold.route_daily_stats@v3'",
        "'${env:HOME}'",
    ):
        assert literal in out.sql
    assert out.reads[0].version is None  # '@v3' inside a string is no time travel
    comments = translate(LEGITIMATE["words_in_comments"], KNOWN)
    assert "--" not in comments.sql and "/*" not in comments.sql and "reflect" not in comments.sql


@pytest.mark.fast
@pytest.mark.parametrize(
    ("sql", "version", "timestamp"),
    [
        ("SELECT * FROM gold.route_daily_stats@v3", 3, None),
        ("SELECT * FROM gold.route_daily_stats@v3 r WHERE r.flights > 1", 3, None),
        ("SELECT * FROM `gold`.`route_daily_stats@v12`", 12, None),
        ("SELECT * FROM gold.route_daily_stats VERSION AS OF 2 AS r", 2, None),
        ("SELECT * FROM gold.route_daily_stats FOR VERSION AS OF 0", 0, None),
        ("SELECT * FROM gold.route_daily_stats TIMESTAMP AS OF '2013-01-02'", None, "'2013-01-02'"),
        ("SELECT * FROM gold.route_daily_stats@20130102030405006", None, "'2013-01-02 03:04:05.006Z'"),
    ],
)
def test_time_travel_becomes_a_versioned_read(sql: str, version: int | None, timestamp: str | None) -> None:
    out = translate(sql, KNOWN)
    (read,) = out.reads
    assert (read.logical, read.version, read.timestamp) == (STATS, version, timestamp)
    assert read.view in out.sql and "AS OF" not in out.sql and "@" not in out.sql


@pytest.mark.fast
def test_time_travel_on_a_catalog_stays_with_delta() -> None:
    out = translate("SELECT * FROM gold.route_daily_stats@v3 r", KNOWN, lambda n: f"cat.{n}")
    assert out.sql == "SELECT * FROM cat.gold.route_daily_stats VERSION AS OF 3 AS r" and not out.reads


@pytest.mark.fast
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM gold.route_daily_stats VERSION AS OF -1",
        "SELECT * FROM gold.route_daily_stats VERSION AS OF 'x'",
        "SELECT * FROM gold.route_daily_stats TIMESTAMP AS OF (SELECT max(flight_date) FROM silver.flights)",
        "SELECT * FROM gold.route_daily_stats TIMESTAMP AS OF flight_date",
        "SELECT * FROM gold.route_daily_stats@20131399000000000",
        "WITH c AS (SELECT 1) SELECT * FROM c VERSION AS OF 1",
    ],
)
def test_time_travel_that_cannot_be_honoured_is_refused(sql: str) -> None:
    with pytest.raises(UsageError):
        translate(sql, KNOWN)


# ---- with Spark: both engines ---------------------------------------------------------------------------


@pytest.fixture(
    params=[pytest.param("offline", marks=pytest.mark.fast), pytest.param("native", marks=pytest.mark.native)]
)
def versioned(request: Any, spark: Any, lakehouse: Any, native_store_factory: Any) -> Any:
    """A lakehouse (on the engine of the parameter) whose gold.route_daily_stats has versions 0, 1, 2."""
    from pipelines.lakehouse import Lakehouse

    lh = lakehouse if request.param == "offline" else Lakehouse(lakehouse.settings, native_store_factory())
    ddl = "origin string, flights long"
    lh.write(spark.createDataFrame([("JFK", 1)], ddl), STATS, "overwrite")
    lh.write(spark.createDataFrame([("JFK", 2)], ddl), STATS, "overwrite")
    lh.write(spark.createDataFrame([("LGA", 3)], ddl), STATS, "append")
    assert lh.version(STATS) == 2
    return lh


def _rows(lh: Any, sql: str) -> list[tuple[Any, ...]]:
    return sorted(fetch(lh, sql, None)[1])


def test_time_travel_reads_each_version(versioned: Any) -> None:
    lh = versioned
    assert _rows(lh, "SELECT * FROM gold.route_daily_stats") == [("JFK", 2), ("LGA", 3)]
    assert _rows(lh, "SELECT * FROM gold.route_daily_stats@v0") == [("JFK", 1)]
    assert _rows(lh, "SELECT * FROM gold.route_daily_stats VERSION AS OF 1 r") == [("JFK", 2)]
    both = "SELECT o.flights, n.flights FROM gold.route_daily_stats@v0 o JOIN gold.route_daily_stats n USING (origin)"
    assert _rows(lh, both) == [(1, 2)]
    commits = {int(c["version"]): int(c["timestamp"]) for c in lh.history(STATS)}
    at = f"TIMESTAMP AS OF timestamp_millis({commits[1]})"
    assert _rows(lh, f"SELECT * FROM gold.route_daily_stats {at}") == [("JFK", 2)]
    with pytest.raises(UsageError):
        fetch(lh, "SELECT * FROM gold.route_daily_stats@v7", None)
    with pytest.raises(UsageError):  # before the first commit
        fetch(
            lh,
            f"SELECT * FROM gold.route_daily_stats TIMESTAMP AS OF timestamp_millis({commits[0] - 1})",
            None,
        )
    with pytest.raises(UsageError):  # after the latest commit, as Delta refuses it
        fetch(
            lh,
            "SELECT * FROM gold.route_daily_stats TIMESTAMP AS OF current_timestamp() + INTERVAL 1 DAY",
            None,
        )


def test_the_analyst_session_reads_no_paths_and_substitutes_nothing(
    versioned: Any, spark: Any, tmp_path: Path
) -> None:
    analyst = analyst_lakehouse(versioned)
    assert analyst.spark is not spark and analyst_lakehouse(versioned) is analyst  # made once
    for key in ("spark.sql.runSQLOnFiles", "spark.sql.variable.substitute"):
        assert analyst.spark.conf.get(key) == "false"
        assert spark.conf.get(key) == "true"  # the pipeline's session is untouched (delta.`path` SQL)
    location = versioned.ref(STATS).location
    fmt = "delta" if versioned.engine == "native" else "parquet"
    path_sql = f"SELECT count(*) FROM {fmt}.`{location if fmt == 'delta' else location + '/*.parquet'}`"
    assert spark.sql(path_sql).first()[0] > 0  # what the setting stops
    from pyspark.errors import AnalysisException

    with pytest.raises(AnalysisException) as err:
        analyst.spark.sql(path_sql).collect()
    assert err.value.getCondition() == "TABLE_OR_VIEW_NOT_FOUND"
    assert _rows(versioned, "SELECT '${env:HOME}', '${spark.app.name}'") == [
        ("${env:HOME}", "${spark.app.name}")
    ]
    # The analyst's temp views are its own.
    fetch(versioned, "SELECT * FROM gold.route_daily_stats@v1", None)
    assert not spark.catalog.tableExists("gold__route_daily_stats__v1")


@pytest.mark.fast
def test_a_shell_command_never_runs(lakehouse: Any, spark: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    lakehouse.write(spark.createDataFrame([("JFK", 1)], "origin string, flights long"), STATS)
    for sql in (
        f"SELECT TRANSFORM(origin) USING 'touch {marker}' AS (x) FROM gold.route_daily_stats",
        f"SELECT java_method('java.io.File', 'createTempFile', 'x', 'y', '{tmp_path}')",
    ):
        with pytest.raises(QueryNotAllowedError):
            fetch(lakehouse, sql, None)
    assert list(tmp_path.iterdir()) == [tmp_path / "lakehouse"] and not marker.exists()


@pytest.mark.fast
def test_cli_refuses_in_one_line_before_spark_starts(cli: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    out = cli(
        tmp_path, "sql", f"SELECT TRANSFORM(id) USING 'touch {marker}' AS (x) FROM range(1)", timeout=120
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: QueryNotAllowedError:"), out.stderr
    assert "starting Spark" not in out.stdout and not marker.exists()
