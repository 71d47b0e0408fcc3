"""Where MLflow keeps runs, artifacts and the registry, from config.

Locally (``ml.tracking_uri`` unset): a SQLite file ``<paths.state>/mlflow/mlflow.db`` for runs and the registry,
artifacts under ``<paths.state>/mlflow/artifacts``. On Databricks: ``tracking_uri: databricks`` and
``registry_uri: databricks-uc`` (model names ``catalog.schema.model``), set in conf/dev.yml and prod.yml.

Launched by ``mlflow run`` (``MLFLOW_RUN_ID`` set), the tracking URI that ``mlflow run`` passes down in
``MLFLOW_TRACKING_URI`` wins, so the project run and our run are the same run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config import Settings


@dataclass(frozen=True)
class TrackingInfo:
    tracking_uri: str
    registry_uri: str
    artifact_location: str | None
    experiment: str
    model_name: str
    local_db: Path | None  # the SQLite file when tracking is local


def mlflow_dir(settings: Settings) -> Path:
    return settings.state_dir / "mlflow"


def tracking_info(settings: Settings) -> TrackingInfo:
    conf = settings.ml
    local_db = None
    if os.environ.get("MLFLOW_RUN_ID") and os.environ.get("MLFLOW_TRACKING_URI"):
        tracking = os.environ["MLFLOW_TRACKING_URI"]
    elif conf.tracking_uri:
        tracking = conf.tracking_uri
    else:
        local_db = mlflow_dir(settings) / "mlflow.db"
        tracking = f"sqlite:///{local_db}"
    if tracking.startswith("sqlite:///"):
        local_db = Path(tracking.removeprefix("sqlite:///"))
    artifacts = conf.artifact_location
    if artifacts is None and tracking.startswith("sqlite:"):
        artifacts = (mlflow_dir(settings) / "artifacts").as_uri()
    return TrackingInfo(
        tracking_uri=tracking,
        registry_uri=conf.registry_uri or tracking,
        artifact_location=artifacts,
        experiment=conf.experiment,
        model_name=registered_name(settings),
        local_db=local_db,
    )


def registered_name(settings: Settings) -> str:
    """The registry name of the model: ``ml.model_name`` as is when it is qualified or names are paths;
    with Unity Catalog naming, a bare name lives beside the gold tables: ``<catalog>.<gold schema>.<name>``
    (the bundle's registered-model resource declares the same)."""
    name = settings.ml.model_name
    if "." in name or settings.storage.naming != "catalog":
        return name
    return f"{settings.storage.catalog}.{settings.storage.schemas['gold']}.{name}"


def configure(settings: Settings) -> TrackingInfo:
    """Point the mlflow module at the configured stores (creating the local folder); return what it used."""
    import mlflow

    info = tracking_info(settings)
    if info.local_db is not None:
        info.local_db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(info.tracking_uri)
    mlflow.set_registry_uri(info.registry_uri)
    return info


def ensure_experiment(info: TrackingInfo) -> str:
    """The experiment id, creating the experiment with the configured artifact location if needed."""
    import mlflow

    existing = mlflow.get_experiment_by_name(info.experiment)
    if existing is not None:
        return str(existing.experiment_id)
    return str(mlflow.create_experiment(info.experiment, artifact_location=info.artifact_location))


def client(info: TrackingInfo) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=info.tracking_uri, registry_uri=info.registry_uri)
