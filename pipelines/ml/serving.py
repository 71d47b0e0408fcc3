"""The deployment step after training: point a model serving endpoint at the champion (``medallion
deploy-endpoint NAME``, the ``serving`` task of the daily job).

A served entity names a model *version*, and a fresh workspace has none before the first training, so the
endpoint is not a bundle resource (a deploy could not create it): this step creates it on the first run
and moves it to the new champion afterwards, as mlops-stacks' deployment task does. Before anything
changes, the champion is loaded and made to score its own input example, so an endpoint is never pointed
at a model that cannot serve.

Where the endpoint lives follows the registry: a Databricks registry (``databricks``, ``databricks-uc``)
means Databricks Model Serving, through the Databricks SDK the ML runtime ships; any other registry (the
local job run's MLflow server, a laptop's SQLite store) means a local endpoint record,
``<paths.state>/serving/<name>.json``, in the same shape as the Databricks request, which ``medallion serve
--endpoint NAME`` serves.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.errors import ModelError

SERVED_NAME = "champion"


@dataclass(frozen=True)
class EndpointConfig:
    """What the endpoint serves: one entity, all traffic."""

    name: str
    entity_name: str
    entity_version: str
    workload_size: str = "Small"
    scale_to_zero: bool = True

    def request(self) -> dict[str, Any]:
        """The ``config`` of the Databricks serving-endpoints API (create, update-config)."""
        return {
            "served_entities": [
                {
                    "name": SERVED_NAME,
                    "entity_name": self.entity_name,
                    "entity_version": self.entity_version,
                    "workload_size": self.workload_size,
                    "scale_to_zero_enabled": self.scale_to_zero,
                }
            ],
            "traffic_config": {"routes": [{"served_model_name": SERVED_NAME, "traffic_percentage": 100}]},
        }


@dataclass(frozen=True)
class EndpointResult:
    config: EndpointConfig
    action: str  # created, updated, unchanged
    where: str  # "Databricks Model Serving" or the local record's path
    previous_version: str | None = None

    def summary(self) -> str:
        what = f"endpoint {self.config.name} serves {self.config.entity_name} v{self.config.entity_version}"
        if self.action == "updated":
            what += f" (was v{self.previous_version})"
        return f"{what}: {self.action} ({self.where})"


def check_servable(model_uri: str) -> int:
    """Load the model and score its input example; return the rows scored (ModelError when it cannot)."""
    import mlflow
    from mlflow.models import Model

    try:
        with tempfile.TemporaryDirectory(prefix="medallion-serving-") as tmp:
            local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
            example = Model.load(local).load_input_example(local)
            if example is None:
                raise ModelError(
                    f"{model_uri} has no input example: log models with one (pipelines.ml.train)"
                )
            predicted = mlflow.pyfunc.load_model(local).predict(example)
    except ModelError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ModelError(f"{model_uri} cannot serve: scoring its input example failed ({first})") from None
    if "probability" not in getattr(predicted, "columns", ()):
        raise ModelError(f"{model_uri} cannot serve: its predictions have no probability column")
    return len(predicted)


class LocalEndpoints:
    """Endpoint records in a folder (the local stand-in for Databricks Model Serving)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def get(self, name: str) -> dict[str, Any] | None:
        path = self.path(name)
        return json.loads(path.read_text()) if path.is_file() else None

    def apply(self, config: EndpointConfig) -> EndpointResult:
        current = self.get(config.name)
        previous = None
        if current is not None:
            served = current["config"]["served_entities"][0]
            previous = str(served["entity_version"])
            if served["entity_name"] == config.entity_name and previous == config.entity_version:
                return EndpointResult(config, "unchanged", str(self.path(config.name)), previous)
        record = {
            "name": config.name,
            "config": config.request(),
            "updated_at": datetime.now(UTC).isoformat(),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(config.name).with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, self.path(config.name))
        action = "created" if current is None else "updated"
        return EndpointResult(config, action, str(self.path(config.name)), previous)


class DatabricksEndpoints:
    """Databricks Model Serving through the Databricks SDK (shipped by Databricks Runtime ML)."""

    def apply(self, config: EndpointConfig) -> EndpointResult:
        try:
            from databricks.sdk import WorkspaceClient
            from databricks.sdk.errors import NotFound
            from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput
        except ImportError as exc:  # pragma: no cover - Databricks Runtime ML ships the SDK
            raise ModelError(
                f"the Databricks SDK is not installed ({exc}): run on Databricks Runtime ML"
            ) from None
        entity = ServedEntityInput.from_dict(config.request()["served_entities"][0])
        workspace = WorkspaceClient()
        try:
            current = workspace.serving_endpoints.get(config.name)
        except NotFound:
            workspace.serving_endpoints.create_and_wait(
                name=config.name, config=EndpointCoreConfigInput(name=config.name, served_entities=[entity])
            )
            return EndpointResult(config, "created", "Databricks Model Serving")
        served = list(getattr(current.config, "served_entities", None) or [])
        versions = [str(e.entity_version) for e in served if e.entity_name == config.entity_name]
        if versions == [config.entity_version]:
            return EndpointResult(config, "unchanged", "Databricks Model Serving", versions[0])
        workspace.serving_endpoints.update_config_and_wait(name=config.name, served_entities=[entity])
        return EndpointResult(
            config, "updated", "Databricks Model Serving", versions[0] if versions else None
        )


def endpoints_for(settings: Settings, registry_uri: str) -> LocalEndpoints | DatabricksEndpoints:
    """Databricks Model Serving for a Databricks registry, local records otherwise."""
    if registry_uri.startswith("databricks"):
        return DatabricksEndpoints()
    return LocalEndpoints(settings.state_dir / "serving")


def deploy_endpoint(
    settings: Settings, name: str, *, workload_size: str = "Small", scale_to_zero: bool = True
) -> EndpointResult:
    """Point endpoint ``name`` at the champion of the configured registered model."""
    from pipelines.ml import tracking
    from pipelines.ml.score import resolve_model

    info = tracking.configure(settings)
    model, version = resolve_model(settings, None)  # ModelError when no champion exists yet
    check_servable(f"models:/{model}/{version}")
    config = EndpointConfig(name, model, version, workload_size, scale_to_zero)
    return endpoints_for(settings, info.registry_uri).apply(config)


def served_version(settings: Settings, name: str, model: str) -> str:
    """The version of ``model`` the local endpoint ``name`` serves (``medallion serve --endpoint``)."""
    folder = settings.state_dir / "serving"
    record = LocalEndpoints(folder).get(name)
    if record is None:
        raise ModelError(
            f"no local endpoint {name!r} in {folder}: run medallion deploy-endpoint {name} first"
        )
    served = record["config"]["served_entities"][0]
    if served["entity_name"] != model:
        raise ModelError(f"endpoint {name} serves {served['entity_name']}, not the configured model {model}")
    return str(served["entity_version"])
