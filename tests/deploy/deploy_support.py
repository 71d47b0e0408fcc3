"""Helpers for the offline deployment checks: the bundle as the Databricks CLI would see it, the official
bundle JSON schema, and the wheel the bundle deploys (built once per test session).

The bundle schema is kept in ``tests/deploy/schemas/`` (see its README).
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_NAME = "databricks-bundle.schema.json"
# What a workspace would fill in for ${workspace.*} (no workspace here).
WORKSPACE = {"current_user": {"userName": "someone@example.com", "short_name": "someone"}}
_REF = re.compile(r"\$\{([A-Za-z0-9_.\-\[\]]+)\}")


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


def _merge(base: Any, over: Any) -> Any:
    """Maps merge key by key; anything else is replaced (enough for this bundle's target overrides)."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


def load_bundle(root: Path = ROOT) -> dict[str, Any]:
    """databricks.yml with every ``include:`` file merged in, as one document (targets still nested)."""
    bundle = yaml.safe_load((root / "databricks.yml").read_text())
    for pattern in bundle.get("include", []):
        files = sorted(root.glob(pattern))
        assert files, f"include pattern {pattern!r} matches no file"
        for path in files:
            part = yaml.safe_load(path.read_text())
            unknown = set(part) - {"resources", "variables", "targets", "artifacts"}
            assert not unknown, f"{path}: unexpected top-level keys {unknown}"
            bundle = _merge(bundle, part)
    return bundle


# What `databricks bundle deploy -t prod --var writer_principal=<application id>` adds.
PROD_VARS = {"writer_principal": "6f0c1c1e-0000-4000-8000-000000000001"}


def target_view(
    bundle: Mapping[str, Any], target: str, cli_vars: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The bundle for one target: target overrides merged, variables reduced to their values (defaults, the
    target's, then ``--var`` ones), every ``${...}`` reference resolved (``{{job.*}}`` dynamic values stay,
    as the CLI leaves them)."""
    spec = bundle["targets"][target]
    doc = {k: copy.deepcopy(v) for k, v in bundle.items() if k != "targets"}
    for key in ("resources", "run_as", "permissions", "workspace", "artifacts", "presets"):
        if key in spec:
            doc[key] = _merge(doc.get(key, {} if key != "permissions" else []), spec[key])
    values = {name: var.get("default") for name, var in bundle.get("variables", {}).items()}
    values.update(spec.get("variables", {}))
    values.update(cli_vars or {})
    missing = sorted(name for name, value in values.items() if value is None)
    assert not missing, f"target {target}: variables without a value: {missing}"
    context = {
        **doc,
        "var": values,
        "bundle": {**doc["bundle"], "target": target},
        "workspace": {**WORKSPACE, **doc.get("workspace", {})},
    }
    return _resolve(doc, context, ())


def view_for(bundle: Mapping[str, Any], target: str) -> dict[str, Any]:
    """:func:`target_view` with the ``--var`` values DEPLOY.md says a target needs."""
    return target_view(bundle, target, PROD_VARS if target == "prod" else None)


def _lookup(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"${{{path}}} refers to nothing")
        node = node[part]
    return node


def _resolve(node: Any, doc: Mapping[str, Any], trail: tuple[str, ...]) -> Any:
    if isinstance(node, Mapping):
        return {k: _resolve(v, doc, trail) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, doc, trail) for v in node]
    if not isinstance(node, str) or "${" not in node:
        return node
    whole = _REF.fullmatch(node)
    if whole:  # a complete reference keeps the referenced value's type (complex variables are lists)
        path = whole.group(1)
        assert path not in trail, f"reference cycle: {' -> '.join((*trail, path))}"
        return _resolve(_lookup(doc, path), doc, (*trail, path))

    def one(match: re.Match[str]) -> str:
        path = match.group(1)
        assert path not in trail, f"reference cycle: {' -> '.join((*trail, path))}"
        return str(_resolve(_lookup(doc, path), doc, (*trail, path)))

    return _REF.sub(one, node)


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
