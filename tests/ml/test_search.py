"""`train --search`: one parent run, N nested child runs, the best child (by MLflow query) is registered."""

from __future__ import annotations

import pytest
from ml_support import MLHome

pytestmark = pytest.mark.slow


def test_search_logs_parent_and_children_and_registers_the_best(ml_home: MLHome) -> None:
    import dataclasses

    import mlflow

    from pipelines.ml import tracking
    from pipelines.ml.train import train

    conf = ml_home.settings.ml
    grid = {"learning_rate": (0.05, 0.3), "max_leaf_nodes": (3.0, 15.0), "max_iter": (20.0,)}
    settings = dataclasses.replace(
        ml_home.settings,
        ml=dataclasses.replace(conf, search=dataclasses.replace(conf.search, grid=grid, max_runs=3)),
    )
    result = train(settings, ml_home.lh, search=True, say=lambda line: None)
    client = tracking.client(tracking.configure(settings))

    children = mlflow.search_runs(
        experiment_names=[conf.experiment],
        filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
    )
    assert len(children) == 3 == len(result.child_run_ids)
    assert set(children["run_id"]) == set(result.child_run_ids)
    best = children.sort_values("metrics.val_roc_auc", ascending=False).iloc[0]
    assert result.run_id == best["run_id"]

    versions = client.search_model_versions(f"name = '{conf.model_name}'")
    from_search = [v for v in versions if v.run_id in set(result.child_run_ids) | {result.parent_run_id}]
    assert [str(v.version) for v in from_search] == [result.version]
    assert from_search[0].run_id == result.run_id
    # only the best child carries a model and plots
    with_model = [c for c in result.child_run_ids if client.list_artifacts(c, "plots")]
    assert with_model == [result.run_id]
