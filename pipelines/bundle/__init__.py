"""The Databricks bundle (``databricks.yml`` + ``resources/*.yml``) as the Databricks CLI resolves it, its
semantic checks, and a local job run of it (``medallion bundle validate | run``).

- :mod:`pipelines.bundle.resolve`: load, merge a target, resolve variables and substitutions, apply the
  deployment-mode presets, the way ``databricks bundle validate`` does.
- :mod:`pipelines.bundle.checks`: what a JSON schema cannot see (entry points, names that must agree, grants,
  cluster kinds, paths).
- :mod:`pipelines.bundle.runtimes`: what a Databricks Runtime provides, for the local run's environments.
- :mod:`pipelines.bundle.localrun`: build the wheel, install it in clean runtime environments, run the jobs'
  tasks in dependency order, each in its own process, against a local platform (catalog, volume, MLflow).
"""
