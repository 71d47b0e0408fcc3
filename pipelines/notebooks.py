"""Settings for a notebook (``notebooks/``): the same names the job tasks get, from the notebook's widgets.

On Databricks a notebook runs as a task of the ``medallion_reports`` job, which installs the wheel and sets
the widgets from the bundle (``base_parameters``: env, catalog, the layer schemas, the landing volume, the
registered model, the experiment, the secret scope of the pseudonymisation key), so the notebook reads the tables
the jobs wrote, with the jobs' key. Run by hand, set the widgets yourself.
Off Databricks (no ``dbutils``), the notebook uses the local configuration (``MEDALLION_ENV``, default local).
"""

from __future__ import annotations

import os
from typing import Any

from pipelines.config import DEPLOYMENT_VARIABLES, Settings, deployment_environment, load_settings
from pipelines.errors import ConfigError

# The widgets a notebook reads (the job's base_parameters set them): env and the deployment's names.
WIDGETS = ("env", *DEPLOYMENT_VARIABLES)


def notebook_settings(dbutils: Any = None) -> Settings:
    """The settings of the environment the widgets name (``dbutils`` is the notebook's global; None off
    Databricks, where the local configuration is used)."""
    if dbutils is None:
        return load_settings()
    values = {}
    for name in WIDGETS:
        dbutils.widgets.text(name, "")  # defines the widget when run by hand; a job's value is kept
        values[name] = str(dbutils.widgets.get(name) or "").strip()
    env = values.pop("env")
    if not env:
        raise ConfigError(
            "the notebook's env widget is empty: run it as a task of the bundle's medallion_reports job (which "
            f"sets every widget), or set the widgets {', '.join(WIDGETS)} yourself"
        )
    os.environ.update(deployment_environment(env, **values))
    return load_settings(env)
