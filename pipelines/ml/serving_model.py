"""The pyfunc logged with every flight-delay model ("models from code": MLflow stores this file with the model).

It imports nothing from this project, so a registered model loads wherever mlflow, scikit-learn and pandas are
installed (a Databricks serving endpoint, ``mlflow models serve``, ``spark_udf``). The fitted scikit-learn
pipeline is the artifact ``pipeline``; feature names and the decision threshold come from the model config.

Input: one row per flight with the feature columns. Output: ``probability`` (of arriving 15+ min late) and
``predicted_label`` (1 when probability >= threshold). A request without a feature column, or with a value
that is not a number where one is expected, raises MlflowException(INVALID_PARAMETER_VALUE): HTTP 400.

(No ``from __future__ import annotations`` here: MLflow reads the ``pd.DataFrame`` hint of ``predict`` as a real
type, which tells it to rely on the explicit signature instead of inferring one from hints.)
"""

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel


class FlightDelayModel(PythonModel):
    def load_context(self, context):  # type: ignore[no-untyped-def]
        import joblib

        config = context.model_config
        self.categorical = list(config["categorical_features"])
        self.numeric = list(config["numeric_features"])
        self.threshold = float(config["threshold"])
        self.pipeline = joblib.load(context.artifacts["pipeline"])

    def predict(self, context, model_input: pd.DataFrame, params=None):  # type: ignore[no-untyped-def]
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [c for c in (*self.categorical, *self.numeric) if c not in frame.columns]
        if missing:
            raise MlflowException(
                f"missing input column(s): {', '.join(missing)}; every row needs "
                f"{', '.join((*self.categorical, *self.numeric))}",
                error_code=INVALID_PARAMETER_VALUE,
            )
        features = pd.DataFrame(index=frame.index)
        for column in self.categorical:
            values = frame[column]
            features[column] = values.where(values.isna(), values.astype(str)).astype(object)
        for column in self.numeric:
            try:
                features[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
            except (TypeError, ValueError) as exc:
                raise MlflowException(
                    f"column {column!r} must be numeric (null allowed): {exc}",
                    error_code=INVALID_PARAMETER_VALUE,
                ) from None
        probability = self.pipeline.predict_proba(features)[:, 1]
        return pd.DataFrame(
            {"probability": probability, "predicted_label": (probability >= self.threshold).astype("int64")},
            index=frame.index,
        )


mlflow.models.set_model(FlightDelayModel())
