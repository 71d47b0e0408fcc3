"""scikit-learn estimators for the delay classifier (pure: no I/O, no MLflow).

Two kinds, chosen in ``ml.model.kind``:

- ``hist_gradient_boosting``: HistGradientBoostingClassifier; categoricals ordinal-encoded and declared
  categorical (unknown values and nulls become NaN, which the trees route natively), numeric nulls kept as NaN.
- ``logistic_regression``: one-hot categoricals (rare values grouped), median-imputed, standardised numerics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.errors import ConfigError

KINDS = ("hist_gradient_boosting", "logistic_regression")

# Parameter name -> type, per kind (YAML numbers arrive as floats; whole-number parameters are cast back).
PARAMS: dict[str, dict[str, type]] = {
    "hist_gradient_boosting": {
        "learning_rate": float,
        "max_iter": int,
        "max_leaf_nodes": int,
        "max_depth": int,
        "min_samples_leaf": int,
        "l2_regularization": float,
        "max_bins": int,
    },
    "logistic_regression": {"C": float, "max_iter": int},
}


def coerce_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``kind`` and parameter names, and give each parameter its type."""
    if kind not in KINDS:
        raise ConfigError(f"ml.model.kind is {kind!r}; allowed: {', '.join(KINDS)}")
    allowed = PARAMS[kind]
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name not in allowed:
            raise ConfigError(
                f"parameter {name!r} is not a {kind} parameter; allowed: {', '.join(sorted(allowed))}"
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"parameter {name}={value!r} must be a number") from None
        if allowed[name] is int:
            if number != int(number):
                raise ConfigError(f"parameter {name}={value!r} must be a whole number")
            out[name] = int(number)
        else:
            out[name] = number
    return out


def build_estimator(
    kind: str,
    params: Mapping[str, Any],
    categorical: Sequence[str],
    numeric: Sequence[str],
    seed: int = 42,
) -> Any:
    """An unfitted sklearn Pipeline taking a DataFrame with ``categorical`` + ``numeric`` columns."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    typed = coerce_params(kind, params)
    if kind == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.preprocessing import OrdinalEncoder

        encode = ColumnTransformer(
            [
                (
                    "cat",
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=np.nan,
                        encoded_missing_value=np.nan,
                    ),
                    list(categorical),
                ),
                ("num", "passthrough", list(numeric)),
            ]
        )
        model = HistGradientBoostingClassifier(
            categorical_features=list(range(len(categorical))),
            early_stopping=False,
            random_state=seed,
            **typed,
        )
        return Pipeline([("encode", encode), ("model", model)])

    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    encode = ColumnTransformer(
        [
            (
                "cat",
                Pipeline(
                    [
                        ("fill", SimpleImputer(strategy="constant", fill_value="(missing)")),
                        ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20)),
                    ]
                ),
                list(categorical),
            ),
            (
                "num",
                Pipeline([("fill", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                list(numeric),
            ),
        ]
    )
    typed.setdefault("max_iter", 1000)
    return Pipeline([("encode", encode), ("model", LogisticRegression(random_state=seed, **typed))])
