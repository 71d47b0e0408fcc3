"""Batch scoring with the champion into ``ml.predictions_table``.

The model runs inside Spark (``mlflow.pyfunc.spark_udf``, ``env_manager="local"``: the workers use this
environment, nothing is installed at run time). Predictions are MERGEd on ``flight_id``: the table holds the
current prediction of each flight (scoring again replaces the row; ``model_version`` says which model made it).
Earlier predictions stay reachable through Delta time travel (``medallion history``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.config import Settings
from pipelines.errors import ModelError
from pipelines.lakehouse import MergeSpec
from pipelines.lakehouse.base import with_comments
from pipelines.ml.features import feature_columns, pinned_version

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipelines.lakehouse import Lakehouse

PREDICTION_COLUMNS = (
    "flight_id",
    "probability",
    "predicted_label",
    "model_name",
    "model_version",
    "scored_at",
)


@dataclass(frozen=True)
class ScoreResult:
    model_name: str
    model_version: str
    features_table: str
    features_version: int
    rows_scored: int
    table_version: int
    seconds: float


def resolve_model(settings: Settings, model_version: str | None = None) -> tuple[str, str]:
    """(model name, version) of ``model_version`` or of the alias ``champion``."""
    from mlflow.exceptions import MlflowException

    from pipelines.ml import tracking

    info = tracking.configure(settings)
    client = tracking.client(info)
    name = info.model_name
    try:
        if model_version:
            return name, str(client.get_model_version(name, model_version).version)
        return name, str(client.get_model_version_by_alias(name, "champion").version)
    except MlflowException:
        wanted = f"version {model_version}" if model_version else "champion"
        raise ModelError(
            f"registered model {name!r} has no {wanted} in {info.registry_uri}: train first (medallion train)"
        ) from None


def predictions(
    features: DataFrame, settings: Settings, name: str, version: str, scored_at: object = None
) -> DataFrame:
    """The predictions DataFrame of ``features`` (lazy: the model runs when it is written)."""
    import mlflow
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    conf = settings.ml
    result_type = StructType(
        [StructField("probability", DoubleType()), StructField("predicted_label", LongType())]
    )
    udf = mlflow.pyfunc.spark_udf(
        features.sparkSession, f"models:/{name}/{version}", result_type=result_type, env_manager="local"
    )
    numeric = set(conf.numeric_features)
    inputs = [F.col(c).cast("double").alias(c) if c in numeric else F.col(c) for c in feature_columns(conf)]
    scored = features.select(F.col(conf.key).alias("flight_id"), udf(F.struct(*inputs)).alias("p"))
    stamp = F.lit(scored_at).cast("timestamp") if scored_at is not None else F.current_timestamp()
    return scored.select(
        "flight_id",
        F.col("p.probability").alias("probability"),
        F.col("p.predicted_label").cast("int").alias("predicted_label"),
        F.lit(name).alias("model_name"),
        F.lit(version).alias("model_version"),
        stamp.alias("scored_at"),
    )


def score(
    settings: Settings,
    lh: Lakehouse,
    *,
    features_version: int | None = None,
    model_version: str | None = None,
    since: str | None = None,
    run_id: str | None = None,
) -> ScoreResult:
    """Score the feature table (optionally only flights on or after ``since``) and MERGE into the predictions."""
    from pyspark.sql import functions as F

    conf = settings.ml
    started = time.perf_counter()
    pinned = pinned_version(lh, conf.features_table, features_version)
    name, version = resolve_model(settings, model_version)
    features = lh.read(conf.features_table, pinned)
    if since:
        features = features.where(F.col(conf.time_column) >= F.lit(since).cast("date"))
    # The MERGE source must be materialised once (the model is not re-run per pass); checkpoint it locally.
    scored = predictions(features, settings, name, version).localCheckpoint(eager=True)
    rows = scored.count()
    commit = {
        "medallion.run_id": run_id or "",
        "medallion.model": f"{name}/{version}",
        "medallion.features_version": str(pinned),
    }
    target = conf.predictions_table
    scored = with_comments(scored, settings.table(target).columns)  # documented from the first commit
    if lh.exists(target):
        result = lh.merge(scored, target, MergeSpec(keys=("flight_id",)), commit_info=commit)
    else:
        result = lh.write(
            scored, target, "overwrite", description=settings.table(target).description, commit_info=commit
        )
    return ScoreResult(
        name, version, conf.features_table, pinned, rows, result.version, time.perf_counter() - started
    )
