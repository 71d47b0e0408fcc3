"""Helpers for the offline deployment checks: the bundle as the Databricks CLI resolves it
(:mod:`pipelines.bundle.resolve`), the official bundle JSON schema, and the wheel the bundle deploys (built
once per test session).

The bundle schema is kept in ``tests/deploy/schemas/`` (see its README).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.bundle.resolve import Bundle, Identity, load, resolve

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_NAME = "databricks-bundle.schema.json"
DEV_USER = Identity("someone@example.com")
# CI deploys prod as the service principal (`databricks bundle deploy -t prod --var writer_principal=<id>`).
PROD_PRINCIPAL = "6f0c1c1e-0000-4000-8000-000000000001"
PROD_VARS = {"writer_principal": PROD_PRINCIPAL}


SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def check_jsonschema(schema: Path, instance: Path) -> subprocess.CompletedProcess[str]:
    """Validate ``instance`` with check-jsonschema (ECMAScript regexes, so the schema's \\p{L} patterns work)."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--regex-variant", "default", "--schemafile", str(schema),
         str(instance)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def load_bundle(root: Path = ROOT) -> dict[str, Any]:
    """databricks.yml with every ``include:`` file merged in, as one document (targets still nested)."""
    return load(root)


def identity_for(target: str) -> Identity:
    return Identity(PROD_PRINCIPAL, service_principal=True) if target == "prod" else DEV_USER


def resolved(
    target: str,
    cli_vars: Mapping[str, str] | None = None,
    doc: Mapping[str, Any] | None = None,
    root: Path = ROOT,
) -> Bundle:
    """The target as the CLI resolves it for its deployer (dev: a developer; prod: the service principal)."""
    variables = PROD_VARS if cli_vars is None and target == "prod" else cli_vars
    return resolve(root, target, identity_for(target), variables or {}, environ={}, loaded=doc)


def target_view(
    bundle: Mapping[str, Any], target: str, cli_vars: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The resolved bundle document of one target (the ``--var`` values given, no others)."""
    return resolve(ROOT, target, identity_for(target), cli_vars or {}, environ={}, loaded=bundle).document()


def view_for(bundle: Mapping[str, Any], target: str) -> dict[str, Any]:
    """:func:`target_view` with the ``--var`` values DEPLOY.md says a target needs."""
    return target_view(bundle, target, PROD_VARS if target == "prod" else None)


# ---- the wheel ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    unpacked: Path
    names: frozenset[str]
    console_scripts: dict[str, str]
    metadata: str

    def run_python(self, code: str, *args: str, env: Mapping[str, str] | None = None) -> Any:
        """Run ``code`` in a fresh interpreter that imports the package from the unpacked wheel only."""
        prelude = (
            "import sys; sys.path.insert(0, sys.argv.pop(1)); import pipelines, jobs; "
            "assert pipelines.__file__.startswith(sys.path[0]), pipelines.__file__; "
            "assert jobs.__file__.startswith(sys.path[0]), jobs.__file__\n"
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "DATABRICKS_"))}
        return subprocess.run(
            [sys.executable, "-c", prelude + code, str(self.unpacked), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.unpacked.parent,  # not the checkout: nothing may come from the source tree
            env={**clean, **(env or {})},
        )


def job_tasks(doc: dict[str, Any], job: str = "medallion_daily") -> dict[str, dict[str, Any]]:
    """The tasks of ``job`` in a loaded bundle document, by task_key."""
    return {t["task_key"]: t for t in doc["resources"]["jobs"][job]["tasks"]}


def drop_option(params: list[str], option: str) -> list[str]:
    """``params`` without ``option`` and its value."""
    i = params.index(option)
    return params[:i] + params[i + 2 :]
