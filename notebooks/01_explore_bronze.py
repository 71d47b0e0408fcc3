# Databricks notebook source
# MAGIC %md
# MAGIC # Explore bronze
# MAGIC Landed records as delivered, with their ingestion metadata. Logic lives in the `pipelines` package;
# MAGIC this notebook only reads through the same storage layer the jobs use.

# COMMAND ----------

from pipelines.config import load_settings
from pipelines.lakehouse import open_lakehouse

settings = load_settings()  # MEDALLION_ENV picks the environment (local, dev, prod)
lakehouse = open_lakehouse(settings)

# COMMAND ----------

flights = lakehouse.read("bronze.flights")
print(f"bronze.flights: {flights.count():,} rows, Delta version {lakehouse.version('bronze.flights')}")
flights.groupBy("_source_file").count().orderBy("_source_file").show(truncate=False)

# COMMAND ----------

# Records that did not parse into the source's columns, with the reason (never dropped).
flights.where("_corrupt_record IS NOT NULL").select("_corrupt_record", "_rescue_reason", "_source_file").show(truncate=False)

# COMMAND ----------

lakehouse.read("bronze.ingest_manifest").orderBy("table", "file_name").show(50, truncate=False)
