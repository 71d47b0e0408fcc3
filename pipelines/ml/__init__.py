"""Flight-delay model on the gold features: train (MLflow-tracked, DQ-gated, lineage to Delta versions),
register and promote by alias (champion/challenger), batch scoring into gold, REST serving.

Modules: ``features`` (read, sample, split), ``gate`` (DQ gate), ``estimators`` and ``evaluate`` (pure
scikit-learn), ``tracking`` (MLflow URIs), ``train`` (runs, registry, promotion, search), ``score`` (batch),
``servers`` (``medallion ui`` / ``serve``), ``serving_model`` (the pyfunc logged with each model), ``cli``.
"""
