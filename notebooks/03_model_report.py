# Databricks notebook source
# MAGIC %md
# MAGIC # Flight-delay model report
# MAGIC Training runs, the champion and its metrics, and the batch predictions against what actually happened.
# MAGIC MLflow is configured from `conf/` (`pipelines.ml.tracking`): a local SQLite store on a laptop, the
# MAGIC workspace tracking server and Unity Catalog registry on Databricks.

# COMMAND ----------

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow

from pipelines import reports
from pipelines.lakehouse import open_lakehouse
from pipelines.ml.tracking import client, configure
from pipelines.notebooks import notebook_settings

INPUT_TABLES = ("gold.flight_features", "gold.flight_delay_predictions")

# On Databricks the widgets (set by the medallion_reports job) name the deployment; locally, conf/local.yml.
settings = notebook_settings(globals().get("dbutils"))
lakehouse = open_lakehouse(settings)
tracking = configure(settings)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Runs and the champion

# COMMAND ----------

runs = mlflow.search_runs(experiment_names=[tracking.experiment], order_by=["start_time DESC"], max_results=20)
metric_columns = [c for c in runs.columns if c.startswith("metrics.")]
print(runs[["run_id", "start_time", *metric_columns]].to_string() if len(runs) else "no runs yet")

registry = client(tracking)
try:
    champion = registry.get_model_version_by_alias(tracking.model_name, "champion")
except Exception as exc:  # no champion yet: the report still shows runs and predictions
    champion = None
    print(f"no champion for {tracking.model_name}: {exc}")
if champion is not None:
    print(f"champion: {tracking.model_name} version {champion.version} (run {champion.run_id})")
    print(registry.get_run(champion.run_id).data.metrics)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Predictions against actual delays

# COMMAND ----------

outcomes = reports.prediction_outcomes(
    lakehouse.read("gold.flight_delay_predictions"), lakehouse.read("gold.flight_features")
)
reports.confusion_counts(outcomes).show(truncate=False)
calibration = reports.calibration(outcomes).toPandas()  # at most 10 rows
fig, ax = plt.subplots(figsize=(5, 5))
ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
ax.plot(calibration["mean_probability"], calibration["observed_rate"], marker="o")
ax.set_xlabel("predicted probability of a 15+ minute delay")
ax.set_ylabel("observed delay rate")
ax.set_title("Calibration of the scored flights")
fig.tight_layout()
