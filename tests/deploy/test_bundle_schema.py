"""databricks.yml (with its include: files) against the official Databricks bundle JSON schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from deploy_support import check_jsonschema, load_bundle, target_view, view_for

from pipelines.errors import BundleError

pytestmark = pytest.mark.fast


def _write(tmp_path: Path, name: str, doc: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_bundle_with_includes_validates_against_the_official_schema(
    bundle: dict[str, Any], bundle_schema: Path, tmp_path: Path
) -> None:
    assert bundle["include"] == ["resources/*.yml"]
    assert {"jobs", "schemas", "volumes", "registered_models", "experiments"} <= set(bundle["resources"])
    result = check_jsonschema(bundle_schema, _write(tmp_path, "bundle.json", bundle))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_each_resolved_target_validates(
    bundle: dict[str, Any], bundle_schema: Path, tmp_path: Path, target: str
) -> None:
    view = view_for(bundle, target)
    result = check_jsonschema(bundle_schema, _write(tmp_path, f"{target}.json", view))
    assert result.returncode == 0, result.stdout + result.stderr


def _broken_unknown_key(doc: dict[str, Any]) -> None:
    doc["resources"]["jobs"]["medallion_daily"]["tasks"][0]["python_wheel_task"]["entrypoint"] = "typo"


def _broken_wrong_type(doc: dict[str, Any]) -> None:
    doc["resources"]["jobs"]["medallion_daily"]["max_concurrent_runs"] = "several"


def _broken_missing_required(doc: dict[str, Any]) -> None:
    del doc["resources"]["jobs"]["medallion_daily"]["schedule"]["timezone_id"]


def _broken_bad_enum(doc: dict[str, Any]) -> None:
    doc["resources"]["schemas"]["gold"]["grants"][0]["privileges"].append("READ_EVERYTHING")


@pytest.mark.parametrize(
    ("breakage", "named"),
    [
        (_broken_unknown_key, "entrypoint"),
        (_broken_wrong_type, "max_concurrent_runs"),
        (_broken_missing_required, "timezone_id"),
        (_broken_bad_enum, "READ_EVERYTHING"),
    ],
)
def test_a_broken_bundle_fails_validation(
    bundle: dict[str, Any], bundle_schema: Path, tmp_path: Path, breakage: Any, named: str
) -> None:
    doc = copy.deepcopy(bundle)
    breakage(doc)
    result = check_jsonschema(bundle_schema, _write(tmp_path, "broken.json", doc))
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "validation errors" in output.lower() and named in output


def test_load_bundle_fails_on_an_include_that_matches_nothing(tmp_path: Path) -> None:
    (tmp_path / "databricks.yml").write_text("bundle: {name: x}\ninclude: [resources/*.yml]\n")
    with pytest.raises(BundleError, match="matches no file"):
        load_bundle(tmp_path)


def test_prod_cannot_resolve_without_naming_its_service_principal(bundle: dict[str, Any]) -> None:
    with pytest.raises(BundleError, match="writer_principal"):
        target_view(bundle, "prod")
    assert target_view(bundle, "dev")["resources"]["schemas"]["gold"]["grants"][0]["principal"] == (
        "someone@example.com"
    )
