"""Train -> register -> promote -> score -> REST, on one MLflow store (SQLite in tmp) and real Spark/Delta.

The module trains three models on the same synthetic gold table version: a deliberately weak one (one
stump: first model, so champion), the configured one (better: takes champion), the weak one again (worse:
stays challenger). Scoring, serving and the UI then use the champion.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from ml_support import FEATURES, MLHome, free_port, http_request

pytestmark = pytest.mark.slow

WEAK = {"max_iter": 1, "max_leaf_nodes": 2}
METRICS = ("roc_auc", "pr_auc", "log_loss", "precision", "recall")
PLOTS = {"roc_curve.png", "pr_curve.png", "calibration.png", "feature_importance.png"}


@pytest.fixture(scope="module")
def trained(ml_home: MLHome) -> dict[str, Any]:
    from pipelines.ml.train import train

    quiet = lambda line: None  # noqa: E731
    first = train(ml_home.settings, ml_home.lh, params=WEAK, say=quiet)
    better = train(ml_home.settings, ml_home.lh, say=quiet)
    worse = train(ml_home.settings, ml_home.lh, params=WEAK, say=quiet)
    return {"first": first, "better": better, "worse": worse}


@pytest.fixture(scope="module")
def client(ml_home: MLHome, trained: dict[str, Any]) -> Any:
    from pipelines.ml import tracking

    return tracking.client(tracking.configure(ml_home.settings))


def test_training_run_logs_params_metrics_artifacts_and_lineage(
    ml_home: MLHome, trained: dict[str, Any], client: Any
) -> None:
    from pipelines.ml.train import pip_requirements

    result = trained["better"]
    run = client.get_run(result.run_id)
    params = run.data.params
    for key in ("model_kind", "model.learning_rate", "model.max_iter", "decision_threshold", "features_table",
                "features_version", "sample_max_rows", "rows_train", "rows_validation", "validation_months"):  # fmt: skip
        assert key in params, key
    assert params["features_table"] == FEATURES and params["features_version"] == str(
        ml_home.features_version
    )
    metrics = run.data.metrics
    for name in METRICS:
        assert math.isfinite(metrics[f"val_{name}"]) and math.isfinite(metrics[f"baseline_{name}"]), name
    # the learnable signal is learnt: clearly better than the base-rate baseline
    assert metrics["val_roc_auc"] > metrics["baseline_roc_auc"] + 0.1
    assert metrics["val_log_loss"] < metrics["baseline_log_loss"]

    plots = {Path(a.path).name for a in client.list_artifacts(result.run_id, "plots")}
    assert plots == PLOTS
    local = Path(client.download_artifacts(result.run_id, "plots"))
    for name in PLOTS:
        assert (local / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    import mlflow

    model_uri = f"models:/{result.model_name}/{result.version}"
    info = mlflow.models.get_model_info(model_uri)
    assert [c["name"] for c in info.signature.inputs.to_dict()][:3] == ["carrier", "origin", "dest"]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == ["probability", "predicted_label"]
    assert info.saved_input_example_info is not None
    model_dir = Path(mlflow.artifacts.download_artifacts(model_uri))
    assert (model_dir / "requirements.txt").read_text().split() == pip_requirements()

    inputs = run.inputs.dataset_inputs
    contexts = {next(t.value for t in i.tags if t.key == "mlflow.data.context") for i in inputs}
    assert contexts == {"training", "validation"}
    source = json.loads(inputs[0].dataset.source)
    assert inputs[0].dataset.source_type == "delta_table"
    assert source["delta_table_version"] == ml_home.features_version
    assert source["path"] == ml_home.lh.ref(FEATURES).location
    assert run.data.tags["medallion.features_table"] == FEATURES

    version = client.get_model_version(result.model_name, result.version)
    assert version.tags["medallion.features_table"] == FEATURES
    assert version.tags["medallion.features_version"] == str(ml_home.features_version)
    assert version.run_id == result.run_id


def test_better_model_takes_champion_and_worse_does_not(trained: dict[str, Any], client: Any) -> None:
    first, better, worse = trained["first"], trained["better"], trained["worse"]
    assert first.promoted and better.promoted and not worse.promoted
    assert better.metrics["roc_auc"] > first.metrics["roc_auc"]
    name = better.model_name
    assert str(client.get_model_version_by_alias(name, "champion").version) == better.version
    assert str(client.get_model_version_by_alias(name, "challenger").version) == worse.version
    tags = client.get_model_version(name, worse.version).tags
    assert tags["medallion.decision"] == "challenger"
    assert "does not beat" in tags["medallion.decision_reason"]
    # the champion was re-scored on the same validation rows: same number as its own training metric
    assert float(tags["medallion.champion_metric"]) == pytest.approx(better.metrics["roc_auc"], abs=1e-12)
    assert client.get_model_version(name, better.version).tags["medallion.decision"] == "champion"


@pytest.fixture(scope="module")
def scored(ml_home: MLHome, trained: dict[str, Any]) -> dict[str, Any]:
    from pipelines.ml.score import score

    first = score(ml_home.settings, ml_home.lh)
    second = score(ml_home.settings, ml_home.lh)
    rows = {
        r["flight_id"]: r.asDict() for r in ml_home.lh.read(ml_home.settings.ml.predictions_table).collect()
    }
    return {"first": first, "second": second, "rows": rows}


def test_predictions_hold_one_row_per_flight_after_scoring_twice(
    ml_home: MLHome, trained: dict[str, Any], scored: dict[str, Any]
) -> None:
    from pyspark.sql import functions as F

    table = ml_home.settings.ml.predictions_table
    df = ml_home.lh.read(table)
    flights = ml_home.lh.read(FEATURES).count()
    assert scored["first"].rows_scored == scored["second"].rows_scored == flights
    assert df.count() == flights
    assert df.select("flight_id").distinct().count() == flights
    assert ml_home.lh.version(table) == 2  # the documented table created, the first write, then a MERGE
    assert df.columns == [
        "flight_id",
        "probability",
        "predicted_label",
        "model_name",
        "model_version",
        "scored_at",
    ]
    assert {r.model_version for r in df.select("model_version").distinct().collect()} == {
        trained["better"].version
    }
    bad = df.where(
        (F.col("probability") < 0) | (F.col("probability") > 1) | F.col("probability").isNull()
    ).count()
    assert bad == 0


def _post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _records(ml_home: MLHome, flight_ids: list[str]) -> list[dict[str, Any]]:
    conf = ml_home.settings.ml
    rows = (
        ml_home.lh.read(FEATURES).where(f"flight_id in ({', '.join(repr(f) for f in flight_ids)})").collect()
    )
    by_id = {r["flight_id"]: r for r in rows}
    return [
        {c: by_id[f][c] for c in (*conf.categorical_features, *conf.numeric_features)} for f in flight_ids
    ]


def test_serve_answers_like_batch_scoring_and_rejects_bad_requests(
    ml_home: MLHome, scored: dict[str, Any], cli_process: Any
) -> None:
    port = free_port()
    proc = cli_process(["serve", "--port", str(port)], ml_home.env())
    proc.wait_for("example request", timeout=180)
    curl = proc.wait_for("curl", timeout=10)
    assert f"http://127.0.0.1:{port}/invocations" in curl
    url = f"http://127.0.0.1:{port}/invocations"

    # two flights with nulls in nullable columns, if the table has such flights
    ids = sorted(scored["rows"])[:2]
    status, body = _post(url, {"dataframe_records": _records(ml_home, ids)})
    assert status == 200, body
    got = [p["probability"] for p in body["predictions"]]
    assert got == pytest.approx([scored["rows"][i]["probability"] for i in ids], abs=1e-9)
    assert [p["predicted_label"] for p in body["predictions"]] == [
        scored["rows"][i]["predicted_label"] for i in ids
    ]

    records = _records(ml_home, ids)
    missing = [{k: v for k, v in r.items() if k != "distance"} for r in records]
    status, body = _post(url, {"dataframe_records": missing})
    assert 400 <= status < 500 and "distance" in body.get("message", ""), body
    wrong_type = [{**r, "distance": "far"} for r in records]
    status, body = _post(url, {"dataframe_records": wrong_type})
    assert 400 <= status < 500 and body.get("message"), body

    # Only this machine's Host names and browser origins (DNS rebinding, cross-site pages: 403).
    body = json.dumps({"dataframe_records": records})
    assert http_request(port, "POST", "/invocations", host=f"localhost:{port}", body=body)[0] == 200
    for host in ("evil.example", f"evil.example:{port}", f"192.168.1.5:{port}"):
        assert http_request(port, "POST", "/invocations", host=host, body=body)[0] == 403, host
        assert http_request(port, "GET", "/ping", host=host)[0] == 403, host
    assert http_request(port, "POST", "/invocations", origin="http://evil.example", body=body)[0] == 403
    status, headers = http_request(port, "POST", "/invocations", origin=f"http://127.0.0.1:{port}", body=body)
    assert status == 200 and headers["access-control-allow-origin"] == f"http://127.0.0.1:{port}"

    assert proc.interrupt() == 0
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=3)


def test_ui_serves_health_and_lists_the_run(
    ml_home: MLHome, trained: dict[str, Any], cli_process: Any
) -> None:
    port = free_port()
    proc = cli_process(["ui", "--port", str(port)], ml_home.env())
    line = proc.wait_for("MLflow UI:", timeout=120)
    base = f"http://127.0.0.1:{port}"
    assert base in line
    with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
        assert response.status == 200
    experiment = trained["better"]
    status, body = _post(f"{base}/api/2.0/mlflow/experiments/search", {"max_results": 10})
    assert status == 200, body
    ids = [e["experiment_id"] for e in body["experiments"] if e["name"] == ml_home.settings.ml.experiment]
    status, body = _post(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": ids, "max_results": 100})
    assert status == 200, body
    assert experiment.run_id in {r["info"]["run_id"] for r in body["runs"]}
    assert proc.interrupt() == 0
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base}/health", timeout=3)


def test_the_serving_step_points_the_endpoint_at_the_champion(
    ml_home: MLHome, trained: dict[str, Any]
) -> None:
    """The deployment step after training: created on the first run, moved when the champion changes, left
    alone when it already serves the champion; the record is what `medallion serve --endpoint` serves."""
    from pipelines.ml import tracking
    from pipelines.ml.serving import EndpointConfig, LocalEndpoints, deploy_endpoint, served_version

    settings = ml_home.settings
    name, champion = trained["better"].model_name, trained["better"].version
    endpoints = LocalEndpoints(settings.state_dir / "serving")
    endpoints.apply(EndpointConfig("ep", name, trained["first"].version))  # the previous champion's
    moved = deploy_endpoint(settings, "ep")
    assert (moved.action, moved.previous_version, moved.config.entity_version) == (
        "updated", trained["first"].version, champion,
    )  # fmt: skip
    assert deploy_endpoint(settings, "ep").action == "unchanged"
    created = deploy_endpoint(settings, "fresh")
    assert created.action == "created" and created.config.entity_version == champion
    record = endpoints.get("fresh")
    assert record is not None and record["config"]["served_entities"][0] == {
        "name": "champion", "entity_name": name, "entity_version": champion,
        "workload_size": "Small", "scale_to_zero_enabled": True,
    }  # fmt: skip
    assert served_version(settings, "fresh", tracking.registered_name(settings)) == champion
