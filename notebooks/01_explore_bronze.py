# Databricks notebook source
# MAGIC %md
# MAGIC # Explore bronze and silver
# MAGIC Landed records as delivered with their ingestion metadata, then the silver tables and what data quality
# MAGIC kept out of them. Logic lives in the `pipelines` package (`pipelines.reports`); this notebook only reads
# MAGIC through the storage layer the jobs use. On Databricks the widgets (set by the `medallion_reports` job)
# MAGIC name the deployment; locally `MEDALLION_ENV` picks the environment (default local).

# COMMAND ----------

from pipelines import reports
from pipelines.lakehouse import open_lakehouse
from pipelines.notebooks import notebook_settings

# Tables this notebook needs (tests/integration/test_jobs_and_notebooks.py builds them before running it)
# and tables it shows when they exist.
INPUT_TABLES = ("bronze.flights",)
OPTIONAL_TABLES = ("silver.flights", "silver.weather", "silver.planes", "gold.dq_results")

# On Databricks the widgets (set by the medallion_reports job) name the deployment; locally, conf/local.yml.
settings = notebook_settings(globals().get("dbutils"))
lakehouse = open_lakehouse(settings)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Bronze: files and records

# COMMAND ----------

flights = lakehouse.read("bronze.flights")
print(f"bronze.flights: {flights.count():,} rows, Delta version {lakehouse.version('bronze.flights')}")
reports.files_summary(flights).show(truncate=False)

# COMMAND ----------

# Records that did not parse into the source's columns, with the reason (never dropped).
reports.rescued_records(flights).show(truncate=False)

# COMMAND ----------

if lakehouse.exists("bronze.ingest_manifest"):  # the manifest path (local); Auto Loader keeps a checkpoint instead
    lakehouse.read("bronze.ingest_manifest").orderBy("table", "file_name").show(50, truncate=False)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Silver: row counts, quarantine reasons, the latest data-quality results

# COMMAND ----------

silver_counts = {}
for name in [t for t, conf in settings.tables.items() if conf.layer == "silver" and conf.built_by_runner]:
    if lakehouse.exists(name):
        silver_counts[name] = lakehouse.read(name).count()
        quarantine = f"{name}_quarantine"
        if lakehouse.exists(quarantine):
            print(f"{quarantine}: rows per failed check")
            reports.quarantine_reasons(lakehouse.read(quarantine)).show(truncate=False)
print(silver_counts or "no silver table is built yet")

# COMMAND ----------

if lakehouse.exists("gold.dq_results"):
    reports.latest_dq_results(lakehouse.read("gold.dq_results")).show(100, truncate=False)
