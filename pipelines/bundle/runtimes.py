"""What a Databricks Runtime provides to a job task's Python, for the local job run's clean environments.

A job cluster's ``spark_version`` names its runtime. The local run builds one virtual environment per runtime
(once, cached under ``~/.cache/medallion/runtimes``), holding only what that runtime ships and the project
needs to see: Spark, Delta's Python API, the Python data libraries the runtime preinstalls, and on the ML
variant MLflow and scikit-learn. The wheel and a task's ``libraries`` go on top of it, per job run, as a
cluster installs them, so a task that imports something the cluster does not have fails here too.

Versions, and where they come from:

- Databricks Runtime 18 LTS runs Apache Spark 4.1.0 on Python 3.12 (the runtime release notes);
  ``pyspark==4.1.0``. Its Delta is built in; locally that is ``delta-spark`` 4.4.0, the Python API of the
  jars ``medallion setup`` fetched (``io.delta:delta-spark_4.1_2.13:4.4.0``).
- Its ML variant ships MLflow 3.8.1 (the MLflow compatibility matrix of the runtime release notes).
- scikit-learn, pandas, NumPy, PyArrow, Matplotlib and PyYAML are preinstalled on both variants; their exact
  Runtime 18 versions are not in the documentation available here, so these are the project's own pins where
  MLflow 3.8.1 allows them (PyArrow below 23) and PyYAML 6.0.2, older than the project's 6.0.3, so that a wheel
  pinning PyYAML exactly is caught replacing a runtime library.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pipelines.errors import BundleError

PYTHON = "3.12"  # Databricks Runtime 18 LTS
_BASE = (
    "pyspark==4.1.0",
    "delta-spark==4.4.0",
    "pyyaml==6.0.2",
    "numpy==2.4.6",
    "pandas==2.3.3",
    "pyarrow==22.0.0",
    "matplotlib==3.11.2",
)
_ML = ("mlflow==3.8.1", "scikit-learn==1.9.1")


@dataclass(frozen=True)
class Runtime:
    """One Databricks Runtime, as the Python packages a task sees on it."""

    spark_version: str
    name: str
    python: str
    ml: bool
    packages: tuple[str, ...]

    @property
    def key(self) -> str:
        """A folder name that changes whenever what the runtime holds changes."""
        digest = hashlib.sha256("\n".join((self.python, *self.packages)).encode()).hexdigest()[:10]
        return f"{self.spark_version}-py{self.python}-{digest}"

    def pinned(self) -> dict[str, str]:
        """``{normalised package name: version}`` of the packages named above."""
        out = {}
        for spec in self.packages:
            name, _, version = spec.partition("==")
            out[canonical(name)] = version
        return out


RUNTIMES: dict[str, Runtime] = {
    "18.x-scala2.13": Runtime("18.x-scala2.13", "Databricks Runtime 18 LTS", PYTHON, False, _BASE),
    "18.x-cpu-ml-scala2.13": Runtime(
        "18.x-cpu-ml-scala2.13", "Databricks Runtime 18 LTS ML", PYTHON, True, (*_BASE, *_ML)
    ),
}


def canonical(name: str) -> str:
    """A package name as pip compares them (PEP 503)."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def is_ml(spark_version: str) -> bool:
    """Whether a ``spark_version`` names a Databricks Runtime ML (``...-ml-...``), known here or not."""
    return "-ml-" in spark_version


def runtime_for(spark_version: str) -> Runtime:
    try:
        return RUNTIMES[spark_version]
    except KeyError:
        raise BundleError(
            f"spark_version {spark_version!r} is not a runtime the local job run knows "
            f"({', '.join(RUNTIMES)}): add it to pipelines/bundle/runtimes.py with the packages it ships"
        ) from None
