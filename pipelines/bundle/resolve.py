"""The bundle for one target, resolved the way the Databricks CLI does (``databricks bundle validate -t T``).

What the CLI does, in its order, and what this module does the same way:

1. ``databricks.yml`` and every ``include:`` file are merged into one document: mappings key by key, sequences
   concatenated; a resource key declared in two files is an error. Relative paths (libraries, notebooks,
   artifacts) are relative to the file that names them; here they become relative to the bundle root.
2. The target's ``bundle``, ``workspace``, ``artifacts``, ``resources``, ``sync``, ``permissions`` and
   ``presets`` are merged in the same way; ``run_as`` and ``mode`` replace; a target's ``variables`` replace
   the defaults one by one. Job tasks with the same ``task_key`` (job clusters with the same
   ``job_cluster_key``) are then merged into one.
3. Variable values: the default, then the target's value, then ``BUNDLE_VAR_<name>``, then ``--var``
   (complex variables only from the files). A variable without a value is an error.
4. ``workspace.current_user`` is the deploying identity; ``root_path`` defaults to
   ``~/.bundle/${bundle.name}/${bundle.target}`` (``~`` is ``/Workspace/Users/<userName>``), and
   ``file_path``, ``artifact_path``, ``state_path``, ``resource_path`` sit under it.
5. ``${var.*}``, ``${bundle.*}`` and ``${workspace.*}`` are substituted.
6. ``mode: development`` sets the presets (unless given): name prefix ``[dev <short_name>] ``, tag
   ``dev: <short_name>``, ``jobs_max_concurrent_runs: 4``, ``trigger_pause_status: PAUSED``; the presets are
   applied: jobs, experiments (the last path segment) and pipelines get the prefix, schemas, registered models
   and serving endpoints get it normalised (``dev_<short_name>_``); volumes keep their names. Development mode
   refuses an UNPAUSED preset and workspace paths without the user; production mode wants an explicit
   ``root_path``.
7. ``${resources.<type>.<key>.<field>}`` is substituted last, from the resources as deployed (prefixed).

Dynamic value references (``{{job.run_id}}``) are left for the job run, as the CLI leaves them.
"""

from __future__ import annotations

import copy
import os
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import BundleError

BUNDLE_FILE = "databricks.yml"
_REF = re.compile(r"\$\{([A-Za-z0-9_.\-\[\]]+)\}")
# Top-level keys of a bundle file (the official schema has a few more this bundle does not use).
TOP_LEVEL = frozenset(
    {"bundle", "include", "variables", "artifacts", "resources", "targets", "workspace", "sync",
     "permissions", "run_as", "presets", "experimental", "scripts", "python"}
)  # fmt: skip
INCLUDED_TOP_LEVEL = frozenset({"resources", "variables", "targets", "artifacts", "sync", "permissions"})
# Target fields merged into the root document (the rest are handled one by one).
MERGED_TARGET_FIELDS = ("bundle", "workspace", "artifacts", "resources", "sync", "permissions", "presets")
# Keyed sequences merged element by element after the target is merged (the CLI's Merge* mutators).
KEYED = (
    ("jobs", "tasks", "task_key"),
    ("jobs", "job_clusters", "job_cluster_key"),
    ("jobs", "parameters", "name"),
)
WORKSPACE_PATHS = ("file_path", "artifact_path", "state_path", "resource_path")
DEV_CONCURRENT_RUNS = 4


def normalize(text: str) -> str:
    """The CLI's NormalizeString: lower case, every run of non-letters/digits one ``_``, none at the ends."""
    mapped = "".join(c if c.isalnum() else "_" for c in text.lower())
    return re.sub(r"_+", "_", mapped).strip("_")


def short_name(user_name: str) -> str:
    """The CLI's short name of a user: the part before ``@``, normalised (``first.last@x`` -> ``first_last``)."""
    return normalize(user_name.partition("@")[0])


def normalize_prefix(prefix: str) -> str:
    """``[dev someone] `` -> ``dev_someone_`` (the prefix of schemas, registered models, endpoints)."""
    prefix = prefix.replace("[", "").strip(" ")
    return normalize(prefix) + ("_" if prefix.endswith("]") else "")


@dataclass(frozen=True)
class Identity:
    """Who deploys (``workspace.current_user``): a user's e-mail, or a service principal's application id."""

    user_name: str
    service_principal: bool = False
    display_name: str = ""

    @property
    def short_name(self) -> str:
        name = self.display_name if self.service_principal and self.display_name else self.user_name
        return short_name(name)

    def as_config(self) -> dict[str, Any]:
        return {"userName": self.user_name, "short_name": self.short_name, "displayName": self.display_name}


@dataclass(frozen=True)
class Bundle:
    """One target of the bundle, resolved: ``config`` is the document ``bundle validate -o json`` shows."""

    root: Path
    target: str
    mode: str
    identity: Identity
    config: dict[str, Any]
    target_spec: dict[str, Any]
    warnings: tuple[str, ...] = ()

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.config.get("resources") or {})

    def document(self) -> dict[str, Any]:
        """``config`` as a bundle file (what the JSON schema validates): without what the CLI adds at
        run time (``bundle.target``/``mode``, ``workspace.current_user``)."""
        doc = copy.deepcopy(self.config)
        for key in ("target", "environment", "mode"):
            doc["bundle"].pop(key, None)
        doc.get("workspace", {}).pop("current_user", None)
        return doc

    def jobs(self) -> dict[str, dict[str, Any]]:
        return dict(self.resources.get("jobs") or {})

    def tasks(self, job: str) -> dict[str, dict[str, Any]]:
        try:
            tasks = self.jobs()[job].get("tasks") or []
        except KeyError:
            raise BundleError(
                f"the bundle has no job {job!r} (target {self.target}); jobs: {', '.join(self.jobs())}"
            ) from None
        return {t["task_key"]: t for t in tasks}

    def job_cluster(self, job: str, task: Mapping[str, Any]) -> dict[str, Any]:
        """The ``new_cluster`` of a task's job cluster."""
        key = task.get("job_cluster_key")
        clusters = {c["job_cluster_key"]: c for c in self.jobs()[job].get("job_clusters") or []}
        if key not in clusters:
            raise BundleError(
                f"job {job} task {task.get('task_key')}: job_cluster_key {key!r} names no job cluster "
                f"({', '.join(clusters) or 'none declared'})"
            )
        return dict(clusters[key].get("new_cluster") or {})


# ---- loading -----------------------------------------------------------------------------------------------


def find_root(start: Path | None = None) -> Path:
    """The folder holding ``databricks.yml``: ``start`` (default: the working directory) or a parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / BUNDLE_FILE).is_file():
            return folder
    raise BundleError(f"no {BUNDLE_FILE} in {here} or a folder above it: run this in the project checkout")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BundleError(f"{path}: cannot be read as YAML ({exc})".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: the top level must be a mapping")
    return data


def merge(base: Any, over: Any) -> Any:
    """The CLI's merge: mappings key by key (``over`` wins), sequences concatenated, scalars replaced."""
    if base is None:
        return copy.deepcopy(over)
    if over is None:
        return base
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(over, list):
        return [*base, *copy.deepcopy(over)]
    if isinstance(base, Mapping | list) or isinstance(over, Mapping | list):
        raise BundleError(f"cannot merge {type(base).__name__} with {type(over).__name__}")
    return copy.deepcopy(over)


def _is_local_path(value: Any) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and "${" not in value
        and not value.startswith(("/", "~"))
        and "://" not in value
    )


def _rebase(value: str, folder: Path, root: Path) -> str:
    rel = posixpath.normpath(posixpath.join(folder.relative_to(root).as_posix(), value))
    if rel.startswith("../"):
        raise BundleError(f"path {value!r} in {folder} leaves the bundle root {root}")
    return rel


def _translate_paths(doc: dict[str, Any], folder: Path, root: Path) -> None:
    """Make the relative paths of one file relative to the bundle root (in place)."""

    def resources(res: Mapping[str, Any]) -> None:
        for job in (res.get("jobs") or {}).values():
            for task in (job or {}).get("tasks") or []:
                for lib in task.get("libraries") or []:
                    for kind in ("whl", "jar", "requirements"):
                        if _is_local_path(lib.get(kind)):
                            lib[kind] = _rebase(lib[kind], folder, root)
                for key, attr in (("notebook_task", "notebook_path"), ("spark_python_task", "python_file")):
                    spec = task.get(key) or {}
                    if _is_local_path(spec.get(attr)):
                        spec[attr] = _rebase(spec[attr], folder, root)

    resources(doc.get("resources") or {})
    for name, artifact in (doc.get("artifacts") or {}).items():
        if _is_local_path((artifact or {}).get("path")):
            artifact["path"] = _rebase(artifact["path"], folder, root)
        elif artifact is not None and "path" not in artifact and name:
            artifact.setdefault("path", _rebase(".", folder, root))
    for target in (doc.get("targets") or {}).values():
        if target:
            resources(target.get("resources") or {})
            for artifact in (target.get("artifacts") or {}).values():
                if _is_local_path((artifact or {}).get("path")):
                    artifact["path"] = _rebase(artifact["path"], folder, root)


def load(root: Path) -> dict[str, Any]:
    """``databricks.yml`` with every ``include:`` file merged in (targets still nested), paths root-relative."""
    root = root.resolve()
    doc = _read(root / BUNDLE_FILE)
    unknown = sorted(set(doc) - TOP_LEVEL)
    if unknown:
        raise BundleError(f"{root / BUNDLE_FILE}: unknown top-level key(s) {', '.join(unknown)}")
    _translate_paths(doc, root, root)
    owners: dict[tuple[str, str], Path] = {
        (kind, key): root / BUNDLE_FILE
        for kind, items in (doc.get("resources") or {}).items()
        for key in (items or {})
    }
    for pattern in doc.get("include") or []:
        files = sorted(root.glob(pattern))
        if not files:
            raise BundleError(f"{root / BUNDLE_FILE}: include pattern {pattern!r} matches no file")
        for path in files:
            part = _read(path)
            extra = sorted(set(part) - INCLUDED_TOP_LEVEL)
            if extra:
                raise BundleError(f"{path}: top-level key(s) {', '.join(extra)} belong in {BUNDLE_FILE}")
            _translate_paths(part, path.parent, root)
            for kind, items in (part.get("resources") or {}).items():
                for key in items or {}:
                    if (kind, key) in owners:
                        raise BundleError(
                            f"resource {kind}.{key} is declared twice: {owners[(kind, key)]} and {path}"
                        )
                    owners[(kind, key)] = path
            doc = merge(doc, part)
    return doc


# ---- one target ----------------------------------------------------------------------------------------


def _select_target(doc: Mapping[str, Any], target: str | None) -> tuple[str, dict[str, Any]]:
    targets = doc.get("targets") or {}
    if not targets:
        raise BundleError(f"{BUNDLE_FILE} declares no targets")
    if target is None:
        defaults = [name for name, spec in targets.items() if (spec or {}).get("default")]
        if len(defaults) != 1:
            raise BundleError(f"give a target (-t): {', '.join(targets)} (exactly one may be default: true)")
        target = defaults[0]
    if target not in targets:
        raise BundleError(f"no target {target!r} in {BUNDLE_FILE}; targets: {', '.join(targets)}")
    return target, copy.deepcopy(targets[target] or {})


def _merge_keyed(doc: dict[str, Any]) -> None:
    resources = doc.get("resources") or {}
    for kind, seq, key in KEYED:
        for item in (resources.get(kind) or {}).values():
            elements = (item or {}).get(seq)
            if not elements:
                continue
            merged: dict[str, Any] = {}
            for element in elements:
                k = element.get(key)
                merged[k] = merge(merged[k], element) if k in merged else element
            item[seq] = list(merged.values())


def _variable_values(
    doc: Mapping[str, Any],
    target: str,
    spec: Mapping[str, Any],
    cli_vars: Mapping[str, str],
    environ: Mapping[str, str],
) -> dict[str, Any]:
    declared = doc.get("variables") or {}
    values: dict[str, Any] = {}
    for name, var in declared.items():
        var = var or {}
        if not isinstance(var, Mapping):
            raise BundleError(f"variable {name}: declare it as a mapping (description, default, type)")
        values[name] = var.get("default")
    for name, value in (spec.get("variables") or {}).items():
        if name not in declared:
            raise BundleError(f"target {target}: variable {name} is not declared under variables")
        if isinstance(value, Mapping) and ("default" in value or "lookup" in value):
            if "lookup" in value:
                raise BundleError(f"target {target}: variable {name}: lookups need a workspace; use --var")
            value = value["default"]
        values[name] = value
    for name in declared:
        from_env = environ.get(f"BUNDLE_VAR_{name}")
        if from_env is not None:
            values[name] = from_env
    for name, value in cli_vars.items():
        if name not in declared:
            raise BundleError(f"--var {name}=...: no variable {name} is declared in {BUNDLE_FILE}")
        if (declared[name] or {}).get("type") == "complex":
            raise BundleError(f"--var {name}: a complex variable cannot be set on the command line")
        values[name] = value
    for name, var in declared.items():
        if (var or {}).get("lookup") and values.get(name) is None:
            raise BundleError(f"variable {name} is a lookup, which needs a workspace: give --var {name}=...")
    missing = sorted(name for name, value in values.items() if value is None)
    if missing:
        raise BundleError(
            f"target {target}: variable(s) without a value: {', '.join(missing)} "
            f"(give --var {missing[0]}=... or BUNDLE_VAR_{missing[0]})"
        )
    return values


class _Resolver:
    """Substitutes ``${...}`` references from a lookup, recursively, with cycle detection."""

    def __init__(self, lookup: Callable[[str], Any], defer: tuple[str, ...] = ()) -> None:
        self.lookup = lookup
        self.defer = defer

    def value(self, path: str, trail: tuple[str, ...]) -> Any:
        if path in trail:
            raise BundleError(f"reference cycle: {' -> '.join((*trail, path))}")
        return self.node(self.lookup(path), (*trail, path))

    def node(self, node: Any, trail: tuple[str, ...] = ()) -> Any:
        if isinstance(node, Mapping):
            return {k: self.node(v, trail) for k, v in node.items()}
        if isinstance(node, list):
            return [self.node(v, trail) for v in node]
        if not isinstance(node, str) or "${" not in node:
            return node
        whole = _REF.fullmatch(node)
        if whole and not whole.group(1).startswith(self.defer):
            return self.value(whole.group(1), trail)  # a whole reference keeps the value's type

        def one(match: re.Match[str]) -> str:
            if match.group(1).startswith(self.defer):
                return match.group(0)
            value = self.value(match.group(1), trail)
            if isinstance(value, Mapping | list):
                raise BundleError(f"${{{match.group(1)}}} is a complex value inside the text {node!r}")
            return str(value)

        return _REF.sub(one, node)


def _path_lookup(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            raise BundleError(f"${{{path}}} refers to nothing")
    return node


def _apply_presets(doc: dict[str, Any], presets: Mapping[str, Any]) -> None:
    prefix = str(presets.get("name_prefix") or "")
    normalized = normalize_prefix(prefix) if prefix else ""
    tags = dict(presets.get("tags") or {})
    pause = presets.get("trigger_pause_status")
    resources = doc.get("resources") or {}
    for job in (resources.get("jobs") or {}).values():
        job["name"] = prefix + str(job.get("name", ""))
        if tags:
            job_tags = dict(job.get("tags") or {})
            for key, value in sorted(tags.items()):
                if not job_tags.get(key):
                    job_tags[key] = value
            job["tags"] = job_tags
        if not job.get("max_concurrent_runs") and presets.get("jobs_max_concurrent_runs"):
            job["max_concurrent_runs"] = presets["jobs_max_concurrent_runs"]
        if pause:
            for trigger in ("schedule", "continuous", "trigger"):
                if job.get(trigger) is not None and not job[trigger].get("pause_status"):
                    job[trigger]["pause_status"] = pause
    for pipeline in (resources.get("pipelines") or {}).values():
        pipeline["name"] = prefix + str(pipeline.get("name", ""))
    for experiment in (resources.get("experiments") or {}).values():
        name = str(experiment.get("name", ""))
        folder, base = posixpath.split(name)
        experiment["name"] = f"{folder}/{prefix}{base}" if folder else prefix + base
        if tags:
            have = {t.get("key") for t in experiment.get("tags") or []}
            extra = [{"key": k, "value": v} for k, v in sorted(tags.items()) if k not in have]
            experiment["tags"] = [*(experiment.get("tags") or []), *extra]
    for kind in ("registered_models", "schemas", "model_serving_endpoints"):
        for item in (resources.get(kind) or {}).values():
            item["name"] = normalized + str(item.get("name", ""))


def _mode_problems(bundle: Bundle) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the deployment mode, as the CLI's ValidateTargetMode reports them."""
    errors: list[str] = []
    warnings: list[str] = []
    workspace = bundle.config.get("workspace") or {}
    presets = bundle.config.get("presets") or {}
    user = bundle.identity
    if bundle.mode == "development":
        if presets.get("trigger_pause_status") == "UNPAUSED":
            errors.append("target with 'mode: development' cannot set trigger pause status to UNPAUSED")
        for key in ("root_path", *WORKSPACE_PATHS):
            path = str(workspace.get(key) or "")
            if path and user.user_name not in path and user.short_name not in path:
                errors.append(
                    f"{key} must contain the current username to ensure uniqueness in development mode"
                )
                break
    elif bundle.mode == "production":
        if not (bundle.target_spec.get("workspace") or {}).get("root_path"):
            warnings.append("target with 'mode: production' should set workspace.root_path")
    elif bundle.mode:
        errors.append(f"unsupported mode {bundle.mode!r}: development or production")
    return errors, warnings


def resolve(
    root: Path,
    target: str | None = None,
    identity: Identity | None = None,
    variables: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    loaded: Mapping[str, Any] | None = None,
) -> Bundle:
    """The bundle for ``target`` (default: the target with ``default: true``), resolved for ``identity``."""
    root = root.resolve()
    environ = os.environ if environ is None else environ
    identity = identity or Identity("someone@example.com")
    doc = copy.deepcopy(dict(loaded)) if loaded is not None else load(root)
    target, spec = _select_target(doc, target)
    for key in MERGED_TARGET_FIELDS:
        if key in spec:
            doc[key] = merge(doc.get(key), spec[key])
    if "run_as" in spec:
        doc["run_as"] = copy.deepcopy(spec["run_as"])
    bundle_section = dict(doc.get("bundle") or {})
    if "mode" in spec:
        bundle_section["mode"] = spec["mode"]
    for key in ("compute_id", "cluster_id", "git"):
        if key in spec:
            bundle_section[key] = spec[key]
    mode = str(bundle_section.get("mode") or "")
    bundle_section.update({"target": target, "environment": target})
    doc["bundle"] = bundle_section
    _merge_keyed(doc)
    values = _variable_values(doc, target, spec, variables or {}, environ)
    doc.pop("targets", None)
    doc.pop("include", None)

    workspace = dict(doc.get("workspace") or {})
    workspace["current_user"] = identity.as_config()
    workspace.setdefault("root_path", "~/.bundle/${bundle.name}/${bundle.target}")
    context = {"var": values, "bundle": bundle_section, "workspace": workspace}

    def lookup(path: str) -> Any:
        head = path.split(".", 1)[0]
        if head not in context:
            raise BundleError(f"${{{path}}} refers to nothing (known: var, bundle, workspace, resources)")
        return _path_lookup(context, path)

    first = _Resolver(lookup, defer=("resources.",))
    root_path = str(first.node(workspace["root_path"]))
    if root_path.startswith("~"):
        root_path = f"/Workspace/Users/{identity.user_name}{root_path[1:]}"
    workspace["root_path"] = root_path
    workspace["file_path"] = workspace.get("file_path") or f"{root_path}/files"
    workspace["artifact_path"] = workspace.get("artifact_path") or f"{root_path}/artifacts"
    workspace["state_path"] = workspace.get("state_path") or f"{root_path}/state"
    workspace["resource_path"] = workspace.get("resource_path") or f"{root_path}/resources"
    resolved_workspace = first.node(workspace)
    context["workspace"] = resolved_workspace
    context["var"] = first.node(values)
    resolved = first.node({k: v for k, v in doc.items() if k != "variables"})
    resolved["workspace"] = resolved_workspace
    resolved["variables"] = {  # each with its value as the default (the document stays schema-valid)
        name: {**{k: v for k, v in (var or {}).items() if k not in ("default", "lookup")}, "default": value}
        for name, var, value in ((n, v, context["var"][n]) for n, v in (doc.get("variables") or {}).items())
    }

    presets = dict(resolved.get("presets") or {})
    if mode == "development":
        presets.setdefault("name_prefix", f"[dev {identity.short_name}] ")
        presets["tags"] = {"dev": identity.short_name, **dict(presets.get("tags") or {})}
        presets.setdefault("jobs_max_concurrent_runs", DEV_CONCURRENT_RUNS)
        presets.setdefault("trigger_pause_status", "PAUSED")
    if presets:
        resolved["presets"] = presets
    _apply_presets(resolved, presets)

    deployed = resolved.get("resources") or {}
    second = _Resolver(lambda path: _path_lookup({"resources": deployed}, path))
    resolved = second.node(resolved)

    bundle = Bundle(root, target, mode, identity, resolved, spec)
    errors, warnings = _mode_problems(bundle)
    if errors:
        raise BundleError(f"target {target}: {errors[0]}")
    return Bundle(root, target, mode, identity, resolved, spec, tuple(warnings))
