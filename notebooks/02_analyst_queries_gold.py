# Databricks notebook source
# MAGIC %md
# MAGIC # Analyst queries on gold
# MAGIC The questions analysts ask of the gold tables, in SQL (the same statements run in a Databricks SQL
# MAGIC warehouse against `<catalog>.gold.<table>`) and through `pipelines.reports`. Plots use matplotlib.

# COMMAND ----------

import matplotlib

matplotlib.use("Agg")  # headless locally; Databricks renders the figures inline either way
import matplotlib.pyplot as plt

from pipelines import reports
from pipelines.lakehouse import open_lakehouse
from pipelines.notebooks import notebook_settings

INPUT_TABLES = ("gold.carrier_monthly_performance", "gold.route_daily_stats", "gold.airport_weather_delays")

# On Databricks the widgets (set by the medallion_reports job) name the deployment; locally, conf/local.yml.
settings = notebook_settings(globals().get("dbutils"))
lakehouse = open_lakehouse(settings)
spark = lakehouse.spark
# Temporary views named like the tables, so the SQL below is the SQL an analyst writes in the workspace.
for name in INPUT_TABLES:
    lakehouse.read(name).createOrReplaceTempView(name.partition(".")[2])

# COMMAND ----------

# MAGIC %md
# MAGIC ## Which carriers are on time? (flight-weighted over the year)

# COMMAND ----------

ranking = reports.carrier_ranking(lakehouse.read("gold.carrier_monthly_performance"))
ranking.show(truncate=False)
ranking_pd = ranking.toPandas()  # one row per carrier: small
fig, ax = plt.subplots(figsize=(8, 4))
ax.bar(ranking_pd["carrier"], ranking_pd["on_time_share"])
ax.set_ylabel("on-time share")
ax.set_title("On-time share by carrier")
fig.tight_layout()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Month by month, in SQL

# COMMAND ----------

spark.sql(
    """
    SELECT year, month, carrier, flights, round(on_time_share, 3) AS on_time_share,
           round(avg_arr_delay, 1) AS avg_arr_delay, cancelled_flights
    FROM carrier_monthly_performance
    ORDER BY year, month, on_time_share DESC
    """
).show(50, truncate=False)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Worst routes and weather

# COMMAND ----------

reports.worst_routes(lakehouse.read("gold.route_daily_stats"), min_flights=50).show(truncate=False)

# COMMAND ----------

reports.delay_by_weather(lakehouse.read("gold.airport_weather_delays")).show(50, truncate=False)
