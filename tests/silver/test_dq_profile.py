"""``medallion dq profile``: the profile of a small real Delta table, candidate checks as YAML in the form of
conf/tables/*.yml, which the loader's validation accepts and which all pass on the data they came from."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml
from dq_support import DDL, ROWS, with_table

from pipelines.config import ExpectationConf, TableConf, _convert
from pipelines.dq.profile import profile, render
from pipelines.dq.spec import validate_table_expectations
from pipelines.lakehouse import Lakehouse
from pipelines.runner import run_table

pytestmark = pytest.mark.fast


def test_profile_proposes_checks_that_validate_and_pass_on_the_profiled_data(lakehouse: Lakehouse) -> None:
    lh = lakehouse
    lh.write(lh.spark.createDataFrame([(*r, "r0") for r in ROWS], DDL), "bronze.items", "overwrite")
    prof = profile(lh.read("bronze.items"), "bronze.items", lh.version("bronze.items"))
    by_name = {c.name: c for c in prof.columns}
    assert prof.rows == 5 and by_name["code"].nulls == 1 and by_name["email"].nulls == 1
    assert (by_name["amount"].minimum, by_name["amount"].maximum) == (-1.0, 250.0)
    assert by_name["code"].values == ["A", "B", "Z"] and by_name["id"].unique and not by_name["code"].unique

    text = render(prof)
    document = yaml.safe_load(text)  # the comment lines are YAML comments: the whole output parses
    checks = {c["name"]: c for c in document["expectations"]}
    assert checks["id_present"] == {
        "name": "id_present",
        "type": "not_null",
        "column": "id",
        "action": "warn",
    }
    assert "code_present" not in checks and "email_present" not in checks  # they hold nulls
    assert checks["amount_range"]["min"] == -1 and checks["amount_range"]["max"] == 250
    assert checks["code_known"]["values"] == ["A", "B", "Z"]
    assert checks["id_unique"]["columns"] == ["id"] and "_run_id_present" not in checks
    assert checks["rows_at_least_one"] == {
        "name": "rows_at_least_one",
        "type": "row_count",
        "min": 1,
        "action": "warn",
    }

    declared = tuple(
        _convert(ExpectationConf, c, f"expectations[{c['name']}]", "profile") for c in checks.values()
    )
    columns = {part.split()[0]: "" for part in DDL.split(",")}
    table = TableConf(layer="silver", description="items", expectations=declared, columns=columns)
    validate_table_expectations(lh.settings, "silver.items", table)

    checked = with_table(lh, *declared)
    step = run_table(checked, "silver.items", "prof-1")
    results = checked.read("gold.dq_results").where("run_id = 'prof-1'").collect()
    assert step.status == "ok" and len(results) == len(declared)
    assert {r["check_name"]: r["passed"] for r in results} == dict.fromkeys(checks, True)


def test_profile_of_an_empty_table_proposes_no_bounds(lakehouse: Lakehouse, spark: Any) -> None:
    lakehouse.write(spark.createDataFrame([], DDL), "bronze.items", "overwrite")
    prof = profile(lakehouse.read("bronze.items"), "bronze.items", 0)
    assert prof.rows == 0
    document = yaml.safe_load(render(prof))
    assert document["expectations"] is None or document["expectations"] == []
    assert dataclasses.asdict(prof)["columns"][0]["nulls"] == 0
