"""Training runs: fit on the gold features, log to MLflow with lineage, register, promote by alias.

One training = one MLflow run holding: the parameters; validation metrics of the model and of a naive
baseline (the training base rate for every flight); the model (the pyfunc in ``serving_model.py`` around
a fitted scikit-learn pipeline) with signature, input example and explicit pip requirements; ROC, PR,
calibration and feature-importance plots; and the input lineage (``mlflow.log_input`` with a Delta dataset
source naming the table and its exact version, plus ``medallion.*`` tags).

Then the model is registered as a new version with alias ``challenger``. It takes alias ``champion`` when
there is none yet, or when it beats the current champion on ``ml.promotion_metric`` by ``ml.promotion_margin``,
the champion being re-scored on the same validation rows. Decision and reason are version tags.
"""

from __future__ import annotations

import itertools
import os
import random
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.config import MLConf, Settings
from pipelines.errors import ConfigError, ModelError
from pipelines.ml.estimators import build_estimator, coerce_params
from pipelines.ml.evaluate import (
    HIGHER_IS_BETTER,
    classification_metrics,
    f1_threshold,
    permutation_importance_table,
    write_plots,
)
from pipelines.ml.features import TrainingData, feature_columns, x_y
from pipelines.ml.gate import GateResult
from pipelines.ml.tracking import TrackingInfo

if TYPE_CHECKING:
    from pipelines.lakehouse import Lakehouse

SERVING_MODEL = Path(__file__).with_name("serving_model.py")
CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class FitResult:
    kind: str
    params: dict[str, Any]
    estimator: Any
    threshold: float
    metrics: dict[str, float]
    baseline: dict[str, float]
    val_proba: Any
    baseline_proba: Any
    seconds: float


@dataclass
class TrainResult:
    run_id: str
    model_name: str
    version: str
    promoted: bool
    reason: str
    metrics: dict[str, float]
    baseline: dict[str, float]
    features_table: str
    features_version: int
    child_run_ids: list[str] = field(default_factory=list)
    parent_run_id: str | None = None


# ---- fitting (no MLflow) -----------------------------------------------------------------------------------


def fit_and_evaluate(data: TrainingData, conf: MLConf, kind: str, params: Mapping[str, Any]) -> FitResult:
    import numpy as np
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    typed = coerce_params(kind, params)
    x_train, y_train = x_y(data.train, conf)
    x_val, y_val = x_y(data.validation, conf)
    estimator = build_estimator(kind, typed, conf.categorical_features, conf.numeric_features, conf.seed)
    with threadpool_limits(conf.threads or None):
        estimator.fit(x_train, y_train)
        proba = estimator.predict_proba(x_val)[:, 1]
    threshold = conf.threshold if conf.threshold is not None else f1_threshold(y_val, proba)
    base_rate = float(y_train.mean())
    baseline_proba = np.full(len(y_val), base_rate)
    return FitResult(
        kind=kind,
        params=typed,
        estimator=estimator,
        threshold=float(threshold),
        metrics=classification_metrics(y_val, proba, threshold),
        baseline=classification_metrics(y_val, baseline_proba, threshold),
        val_proba=proba,
        baseline_proba=baseline_proba,
        seconds=time.perf_counter() - started,
    )


def metric_is_better(metric: str, challenger: float, champion: float, margin: float) -> bool:
    if HIGHER_IS_BETTER[metric]:
        return challenger - champion >= margin
    return champion - challenger >= margin


# ---- MLflow logging ----------------------------------------------------------------------------------------


def _signature(conf: MLConf) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    columns: list[Any] = [ColSpec("string", c) for c in conf.categorical_features]
    columns += [ColSpec("double", c) for c in conf.numeric_features]
    inputs = Schema(columns)
    outputs = Schema([ColSpec("double", "probability"), ColSpec("long", "predicted_label")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def pip_requirements() -> list[str]:
    """Pinned from the running environment (MLflow's inference of them costs 4-23 s per model)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "scikit-learn", "pandas", "numpy", "joblib")]


def _delta_source(location: str, version: int, ref_kind: str) -> Any:
    """A Delta dataset source naming the table and its exact version.

    MLflow 3.17's DeltaDatasetSource.to_dict drops a version that is 0 (``if self._delta_table_version:``);
    version 0 is a real version (the first write), so the subclass always records it. The serialised form
    (source type ``delta_table``) is the one MLflow reads back."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource

    class VersionedDeltaSource(DeltaDatasetSource):
        def to_dict(self) -> dict[Any, Any]:
            info = super().to_dict()
            info["delta_table_version"] = self.delta_table_version
            return info

    if ref_kind == "catalog":
        return VersionedDeltaSource(delta_table_name=location, delta_table_version=version)
    return VersionedDeltaSource(path=location, delta_table_version=version)


def _log_lineage(data: TrainingData, conf: MLConf, kind: str, gate: GateResult | None) -> None:
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    source = _delta_source(data.location, data.version, kind)
    tags = {"table": data.table, "delta_version": str(data.version)}
    for context, part in (("training", data.train), ("validation", data.validation)):
        dataset = from_pandas(
            part, source=source, targets=conf.label, name=f"{data.table}@v{data.version}/{context}"
        )
        mlflow.log_input(dataset, context=context, tags=tags)
    mlflow.set_tags(
        {
            "medallion.features_table": data.table,
            "medallion.features_version": str(data.version),
            "medallion.features_location": data.location,
            "medallion.train_months": ",".join(data.train_months),
            "medallion.validation_months": ",".join(data.validation_months),
            "medallion.dq_runs": ",".join(gate.runs) if gate else "",
            "medallion.dq_checks": str(gate.checks) if gate else "0",
        }
    )


def log_fit(fit: FitResult, data: TrainingData, conf: MLConf) -> None:
    """Parameters and metrics of one fit into the active run."""
    import mlflow

    mlflow.log_params(
        {
            "model_kind": fit.kind,
            **{f"model.{k}": v for k, v in fit.params.items()},
            "decision_threshold": round(fit.threshold, 6),
            "threshold_rule": "configured" if conf.threshold is not None else "max F1 on validation",
            "features_table": data.table,
            "features_version": data.version,
            "sample_max_rows": conf.sample_max_rows,
            "rows_in_table": data.rows_in_table,
            "rows_train": len(data.train),
            "rows_validation": len(data.validation),
            "validation_months": ",".join(data.validation_months),
            "seed": conf.seed,
        }
    )
    metrics = {f"val_{k}": v for k, v in fit.metrics.items()}
    metrics.update({f"baseline_{k}": v for k, v in fit.baseline.items()})
    metrics["fit_seconds"] = fit.seconds
    mlflow.log_metrics(metrics)


def log_model_and_artifacts(
    fit: FitResult, data: TrainingData, conf: MLConf, ref_kind: str, gate: GateResult | None
) -> str:
    """Model, plots and lineage into the active run; returns the logged model's URI."""
    import joblib
    import mlflow

    x_val, y_val = x_y(data.validation, conf)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(conf.threads or None):
        importance = permutation_importance_table(fit.estimator, x_val, y_val, seed=conf.seed)
    with tempfile.TemporaryDirectory(prefix="medallion-train-") as tmp:
        folder = Path(tmp)
        write_plots(folder / "plots", y_val, fit.val_proba, fit.baseline_proba, importance)
        mlflow.log_artifacts(str(folder / "plots"), artifact_path="plots")
        mlflow.log_dict({name: value for name, value in importance}, "feature_importance.json")
        joblib.dump(fit.estimator, folder / "pipeline.joblib")
        example = x_val.dropna().head(3)
        if example.empty:
            example = x_val.head(3)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(SERVING_MODEL),
            artifacts={"pipeline": str(folder / "pipeline.joblib")},
            model_config={
                "categorical_features": list(conf.categorical_features),
                "numeric_features": list(conf.numeric_features),
                "threshold": fit.threshold,
            },
            signature=_signature(conf),
            input_example=example,
            pip_requirements=pip_requirements(),
        )
    _log_lineage(data, conf, ref_kind, gate)
    return str(info.model_uri)


# ---- registry and promotion --------------------------------------------------------------------------------


def _champion(client: Any, name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def score_validation(model_uri: str, data: TrainingData, conf: MLConf) -> Any:
    import mlflow

    model = mlflow.pyfunc.load_model(model_uri)
    return model.predict(data.validation[feature_columns(conf)])["probability"].to_numpy()


def register_and_promote(
    client: Any,
    info: TrackingInfo,
    model_uri: str,
    run_id: str,
    fit: FitResult,
    data: TrainingData,
    conf: MLConf,
) -> tuple[str, bool, str]:
    """Register a version (alias challenger); make it champion when it wins. Returns (version, promoted, reason)."""
    import mlflow

    metric = conf.promotion_metric
    if metric not in HIGHER_IS_BETTER:
        raise ConfigError(f"ml.promotion_metric is {metric!r}; allowed: {', '.join(HIGHER_IS_BETTER)}")
    name = info.model_name
    tags = {
        "medallion.features_table": data.table,
        "medallion.features_version": str(data.version),
        "medallion.features_location": data.location,
        "medallion.training_run_id": run_id,
        f"medallion.val_{metric}": repr(fit.metrics[metric]),
    }
    mv = mlflow.register_model(model_uri, name, tags=tags)
    version = str(mv.version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    current = _champion(client, name)
    challenger_value = fit.metrics[metric]
    if current is None:
        promoted, reason = True, "first registered model: no champion to beat"
    else:
        try:
            champion_proba = score_validation(f"models:/{name}/{current.version}", data, conf)
            champion_value = classification_metrics(
                data.validation[conf.label].astype(int), champion_proba, fit.threshold
            )[metric]
        except Exception as exc:  # a champion that cannot score today's features has lost
            promoted = True
            reason = f"champion v{current.version} cannot score this validation data ({type(exc).__name__})"
        else:
            client.set_model_version_tag(name, version, "medallion.champion_metric", repr(champion_value))
            promoted = metric_is_better(metric, challenger_value, champion_value, conf.promotion_margin)
            verdict = "beats" if promoted else "does not beat"
            reason = (
                f"val {metric} {challenger_value:.4f} {verdict} champion v{current.version} {champion_value:.4f} "
                f"by the margin {conf.promotion_margin} (same validation rows: {data.table} v{data.version}, "
                f"months {','.join(data.validation_months)})"
            )
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "medallion.decision", CHAMPION if promoted else CHALLENGER)
    client.set_model_version_tag(name, version, "medallion.decision_reason", reason)
    return version, promoted, reason


# ---- search ------------------------------------------------------------------------------------------------


def search_candidates(conf: MLConf, base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Parameter sets of the configured search, each on top of ``base`` (grid order, or a seeded random draw)."""
    grid = {k: list(v) for k, v in conf.search.grid.items()}
    if not grid:
        raise ConfigError("ml.search.grid is empty: give at least one parameter and its values")
    if conf.search.max_runs < 1:
        raise ConfigError("ml.search.max_runs must be at least 1")
    names = sorted(grid)
    combos = [
        dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))
    ]
    if conf.search.strategy == "grid":
        chosen = combos[: conf.search.max_runs]
    elif conf.search.strategy == "random":
        chosen = random.Random(conf.seed).sample(combos, min(conf.search.max_runs, len(combos)))
    else:
        raise ConfigError(f"ml.search.strategy is {conf.search.strategy!r}; allowed: grid, random")
    return [{**base, **c} for c in chosen]


# ---- the command -------------------------------------------------------------------------------------------


def train(
    settings: Settings,
    lh: Lakehouse,
    *,
    version: int | None = None,
    params: Mapping[str, Any] | None = None,
    kind: str | None = None,
    search: bool = False,
    say: Callable[[str], None] = print,
) -> TrainResult:
    """Gate, fit, log, register, promote (``search``: N nested fits, the best one registered)."""
    import mlflow

    from pipelines.ml import tracking
    from pipelines.ml.features import load_training_data, pinned_version
    from pipelines.ml.gate import check_gate

    conf = settings.ml
    kind = kind or conf.model.kind
    base_params = {**conf.model.params, **(params or {})}
    coerce_params(kind, base_params)  # fail on a bad parameter before Spark or MLflow does any work
    table = conf.features_table
    pinned = pinned_version(lh, table, version)
    gate = check_gate(lh, table, pinned, conf.dq_table)
    say(
        f"data-quality gate passed: {table} v{pinned}, {gate.checks} check result(s) from run(s) "
        f"{', '.join(gate.runs)}" + (f"; warnings: {', '.join(gate.warnings)}" if gate.warnings else "")
    )
    started = time.perf_counter()
    data = load_training_data(lh, conf, pinned)
    say(
        f"read {table} v{pinned}: {data.rows_in_table:,} rows, {data.rows_sampled:,} sampled; "
        f"train {len(data.train):,} ({data.train_months[0]}..{data.train_months[-1]}), validate "
        f"{len(data.validation):,} ({','.join(data.validation_months)}) in {time.perf_counter() - started:.1f} s"
    )
    info = tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(info)
    client = tracking.client(info)
    ref_kind = lh.ref(table).kind
    if not os.environ.get("MLFLOW_RUN_ID"):  # under `mlflow run` the project's run (and experiment) is used
        mlflow.set_experiment(experiment_id=experiment_id)

    if not search:
        with mlflow.start_run(run_name=f"train {table}@v{pinned}") as run:
            fit = fit_and_evaluate(data, conf, kind, base_params)
            log_fit(fit, data, conf)
            model_uri = log_model_and_artifacts(fit, data, conf, ref_kind, gate)
            run_id = run.info.run_id
        mv, promoted, reason = register_and_promote(client, info, model_uri, run_id, fit, data, conf)
        return TrainResult(
            run_id, info.model_name, mv, promoted, reason, fit.metrics, fit.baseline, table, pinned
        )

    candidates = search_candidates(conf, base_params)
    metric = conf.promotion_metric
    fits: dict[str, FitResult] = {}
    with mlflow.start_run(run_name=f"search {table}@v{pinned}") as parent:
        parent_id = parent.info.run_id
        mlflow.set_tags(
            {"medallion.search": conf.search.strategy, "medallion.candidates": str(len(candidates))}
        )
        for i, candidate in enumerate(candidates, 1):
            with mlflow.start_run(run_name=f"candidate {i}", nested=True) as child:
                fit = fit_and_evaluate(data, conf, kind, candidate)
                log_fit(fit, data, conf)
                fits[child.info.run_id] = fit
            say(f"  candidate {i}/{len(candidates)} {fit.params}: val {metric} {fit.metrics[metric]:.4f}")
        order = "DESC" if HIGHER_IS_BETTER[metric] else "ASC"
        runs = mlflow.search_runs(
            experiment_ids=[parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
            order_by=[f"metrics.val_{metric} {order}"],
        )
        if runs.empty:
            raise ModelError(f"the search run {parent_id} has no child runs in MLflow")
        best_id = str(runs.iloc[0]["run_id"])
        best = fits[best_id]
        mlflow.set_tags({"medallion.best_run_id": best_id})
        mlflow.log_metric(f"best_val_{metric}", best.metrics[metric])
        with mlflow.start_run(run_id=best_id, nested=True):
            mlflow.set_tag("medallion.search_best", "true")
            model_uri = log_model_and_artifacts(best, data, conf, ref_kind, gate)
        _log_lineage(data, conf, ref_kind, gate)
    mv, promoted, reason = register_and_promote(client, info, model_uri, best_id, best, data, conf)
    return TrainResult(
        best_id,
        info.model_name,
        mv,
        promoted,
        reason,
        best.metrics,
        best.baseline,
        table,
        pinned,
        child_run_ids=list(fits),
        parent_run_id=parent_id,
    )
