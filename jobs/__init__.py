"""Thin entry points, one per Databricks task: parse arguments, get the session, call pipelines, exit code."""
