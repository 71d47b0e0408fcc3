"""medallion: a Spark/Delta medallion lakehouse pipeline that runs offline and on Databricks."""

__version__ = "0.1.0"
