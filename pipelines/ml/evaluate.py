"""Metrics and plots of a probabilistic classifier (pure: arrays in, numbers and PNG files out)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Direction of each promotion metric: True when higher is better.
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "log_loss": False}


def f1_threshold(y_true: Any, proba: Any) -> float:
    """The probability threshold that maximises F1 on (y_true, proba)."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    if len(thresholds) == 0:
        return 0.5
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def classification_metrics(y_true: Any, proba: Any, threshold: float) -> dict[str, float]:
    """roc_auc, pr_auc (average precision), log_loss, precision, recall, f1 at ``threshold``, positive rate."""
    import numpy as np
    from sklearn.metrics import (
        average_precision_score,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(proba, dtype=float), 1e-7, 1 - 1e-7)
    predicted = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "positive_rate": float(y.mean()),
    }


def permutation_importance_table(
    estimator: Any, x: Any, y: Any, max_rows: int = 2000, seed: int = 42
) -> list[tuple[str, float]]:
    """(feature, mean drop in ROC AUC when shuffled), largest first, on at most ``max_rows`` rows."""
    from sklearn.inspection import permutation_importance

    if len(x) > max_rows:
        x = x.sample(n=max_rows, random_state=seed)
        y = y.loc[x.index]
    result = permutation_importance(estimator, x, y, scoring="roc_auc", n_repeats=2, random_state=seed)
    pairs = list(zip(x.columns, result.importances_mean, strict=True))
    return sorted(((str(n), float(v)) for n, v in pairs), key=lambda kv: kv[1], reverse=True)


def write_plots(
    folder: Path,
    y_true: Any,
    proba: Any,
    baseline_proba: Any,
    importance: Sequence[tuple[str, float]],
) -> list[Path]:
    """roc_curve.png, pr_curve.png, calibration.png, feature_importance.png in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    folder.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(5, 5))
    for label, p in (("model", proba), ("baseline (base rate)", baseline_proba)):
        fpr, tpr, _ = roc_curve(y_true, p)
        ax.plot(fpr, tpr, label=f"{label} AUC={auc(fpr, tpr):.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (validation)")
    ax.legend(loc="lower right")
    paths.append(_save(fig, folder / "roc_curve.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    precision, recall, _ = precision_recall_curve(y_true, proba)
    ax.plot(recall, precision, label="model")
    ax.axhline(float(sum(y_true)) / max(len(y_true), 1), linestyle=":", color="grey", label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (validation)")
    ax.legend(loc="upper right")
    paths.append(_save(fig, folder / "pr_curve.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    observed, predicted = calibration_curve(y_true, proba, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, "o-", label="model")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed late share", title="Calibration")
    ax.legend(loc="upper left")
    paths.append(_save(fig, folder / "calibration.png"))

    fig, ax = plt.subplots(figsize=(6, max(3.0, 0.3 * len(importance))))
    names = [n for n, _ in importance][::-1]
    values = [v for _, v in importance][::-1]
    ax.barh(names, values)
    ax.set(xlabel="drop in ROC AUC when shuffled", title="Permutation feature importance")
    paths.append(_save(fig, folder / "feature_importance.png"))
    return paths


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
