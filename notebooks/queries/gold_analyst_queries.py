# Databricks notebook source
# MAGIC %md
# MAGIC # Gold tables: example analyst queries
# MAGIC
# MAGIC The queries live in `pipelines/analyst/queries.py` (also in `docs/ANALYSTS.md`) and use logical table
# MAGIC names (`gold.route_daily_stats`). `pipelines.analyst.sql.query` maps them to Unity Catalog names on
# MAGIC Databricks (`<catalog>.<schema>.<table>` from the bundle's configuration) and to temporary views over the
# MAGIC Delta folders locally, so this notebook runs unchanged in both places.

# COMMAND ----------

import os

from pipelines.analyst.queries import QUERIES
from pipelines.analyst.sql import query
from pipelines.config import load_settings
from pipelines.lakehouse import open_lakehouse

lh = open_lakehouse(load_settings(os.environ.get("MEDALLION_ENV")))

# COMMAND ----------

results = {}
for q in QUERIES:
    print(f"-- {q.name}: {q.question}")
    results[q.name] = query(lh, q.sql)
    try:
        display(results[q.name])  # noqa: F821 (Databricks notebooks provide display)
    except NameError:
        results[q.name].show(20, truncate=False)
