"""A local job run of the bundle (``medallion bundle run -t dev``): the jobs as Databricks runs them, here.

What it does, in order:

1. **Resolve** the target as the CLI does (:mod:`pipelines.bundle.resolve`), with ``catalog=spark_catalog``
   (the one catalog local Spark has; ``--var`` overrides) and the local user as ``current_user``, then run
   the semantic checks (:mod:`pipelines.bundle.checks`), and the access checks (analysts' grants, the key's
   secret scope) of every other target: a bundle with problems is not run.
2. **Build** each artifact with its own ``build`` command (``python -m pip wheel --no-deps -w dist .``).
3. **Platform**: a work folder stands in for the workspace: ``Volumes/<catalog>/<schema>/<volume>`` (the
   tasks see it through ``MEDALLION_VOLUMES``), one Hive metastore with a warehouse for ``spark_catalog``
   (``MEDALLION_METASTORE``), and a real MLflow tracking server with a registry (``mlflow server``, its own
   process group, artifacts served through it) that tasks reach through ``MEDALLION_TRACKING_URI`` /
   ``MEDALLION_REGISTRY_URI``. **Deploy** creates what the bundle declares: the schemas, the volume folders,
   the registered models, the experiments, and the secret scopes as folders ``secrets/<scope>`` (the tasks see
   them through ``MEDALLION_SECRETS``, read by :func:`pipelines.sensitive.load_key`). Into each scope deploy
   puts a random pseudonymisation key, ``secrets/<scope>/pseudonym-key`` (``secrets.token_hex(32)``, mode 0600),
   when it is not there yet: the stand-in for what an admin does once on a workspace (``databricks secrets
   put-secret <scope> pseudonym-key``, DEPLOY.md). A key already there is kept, as on a workspace, so the
   pseudonyms of a work folder stay the same from run to run.
4. **Clusters**: each job cluster gets a clean environment per job run: the runtime its ``spark_version``
   names (:mod:`pipelines.bundle.runtimes`; built once and cached), plus the libraries of the tasks that run
   on it (the wheel, PyPI packages), installed as each task starts. Installing a library that would replace a
   runtime package fails the task, as it would break a cluster.
5. **Tasks**, in ``depends_on`` order, each in its own process: a ``python_wheel_task`` calls the entry point
   the wheel's metadata names for ``package_name``/``entry_point`` with ``sys.argv = [entry_point,
   *parameters]`` (dynamic values such as ``{{job.run_id}}`` filled in); a ``notebook_task`` runs the notebook
   source with a ``dbutils`` whose widgets are its ``base_parameters``. A task's environment is built from
   nothing (:meth:`Platform.task_environment`): a few system variables pass through, never the caller's
   ``MEDALLION_*`` (a cluster has no ``MEDALLION_PSEUDONYM_KEY``: the key comes from the secret scope), and
   ``XDG_CONFIG_HOME`` is an empty folder of the work folder, so no ``medallion setup`` key of this machine is
   found either. The exit code is the task's result; a failed task is retried ``max_retries`` times,
   ``min_retry_interval_millis`` apart (``--retry-wait`` shortens that); tasks downstream of a failure are not
   run. The run's exit code is 0 only when every task succeeded.

Nothing is downloaded while tasks run except what installs fetch (runtimes, libraries; pip's cache keeps them).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.bundle.checks import access_problems_of_other_targets, check_bundle, secret_scope_uses
from pipelines.bundle.resolve import Bundle, Identity, resolve
from pipelines.bundle.runtimes import Runtime, canonical, runtime_for
from pipelines.errors import BundleError, JobRunError

LOCAL_CATALOG = "spark_catalog"
LOCAL_VARIABLES = {"catalog": LOCAL_CATALOG}  # applied when the bundle declares the variable
Say = Callable[[str], None]

# A python_wheel_task, as the Databricks wheel-task runner calls it: the entry point from the installed
# package's metadata (else the package's function of that name), sys.argv = [entry point, *parameters].
WHEEL_LAUNCHER = """\
import importlib, sys
from importlib.metadata import distribution
package, name, *parameters = sys.argv[1:]
found = [e for e in distribution(package).entry_points if e.group == "console_scripts" and e.name == name]
func = found[0].load() if found else getattr(importlib.import_module(package.replace("-", "_")), name)
sys.argv = [name, *parameters]
try:
    code = func()
except SystemExit as exc:
    code = exc.code
sys.exit(code if isinstance(code, int) else (0 if code is None else 1))
"""

# A notebook_task: the notebook's source with a dbutils whose widgets hold the base_parameters.
NOTEBOOK_LAUNCHER = """\
import json, runpy, sys
path, parameters = sys.argv[1], json.loads(sys.argv[2])

class Widgets:
    def __init__(self, values):
        self.values = dict(values)
    def text(self, name, default_value="", label=None):
        self.values.setdefault(name, default_value)
    dropdown = combobox = lambda self, name, default_value="", choices=(), label=None: self.text(name, default_value)
    def get(self, name):
        if name not in self.values:
            raise ValueError(f"InputWidgetNotDefined: no widget named {name}")
        return self.values[name]

class DBUtils:
    def __init__(self, values):
        self.widgets = Widgets(values)

runpy.run_path(path, init_globals={"dbutils": DBUtils(parameters)}, run_name="__main__")
"""

# Deploy's catalog step: the bundle's schemas in the platform's metastore (the same session conf the tasks use).
SCHEMA_SCRIPT = """\
import json, sys
from pipelines.session import hive_catalog_conf
from pyspark.sql import SparkSession
metastore, schemas = sys.argv[1], json.loads(sys.argv[2])
builder = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
builder = builder.config("spark.driver.extraJavaOptions", f"-Dderby.system.home={metastore}")
for key, value in hive_catalog_conf(metastore).items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
for schema in schemas:
    comment = schema.get("comment", "").replace("'", "''")
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema['catalog_name']}.`{schema['name']}` COMMENT '{comment}'")
print(len(schemas))
spark.stop()
"""

_DYNAMIC = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_PASS_THROUGH = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "JAVA_HOME", "TZ", "PIP_CACHE_DIR",
                 "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "XDG_CACHE_HOME", "MEDALLION_DELTA_CACHE",
                 "MEDALLION_DELTA_JARS", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")  # fmt: skip


@dataclass(frozen=True)
class RunOptions:
    target: str | None = None
    jobs: tuple[str, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    workdir: Path | None = None
    fresh: bool = False
    python: str | None = None
    retry_wait: float | None = (
        None  # seconds between attempts (default: the task's min_retry_interval_millis)
    )
    runtime_cache: Path | None = None


@dataclass(frozen=True)
class TaskResult:
    job: str
    task: str
    status: str  # ok, failed, upstream_failed
    attempts: int
    seconds: float
    log: Path | None = None
    detail: str = ""


@dataclass(frozen=True)
class Attempt:
    code: int
    detail: str = ""


# ---- the scheduler (pure of I/O: tests drive it with their own launcher) -----------------------------------


def task_order(tasks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every task after the tasks it depends on; ties in declaration order. A cycle or an unknown task in
    ``depends_on`` is a BundleError."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(key: str, trail: tuple[str, ...]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise BundleError(f"tasks depend on each other in a cycle: {' -> '.join((*trail, key))}")
        state[key] = 1
        for dep in tasks[key].get("depends_on") or []:
            if dep.get("task_key") not in tasks:
                raise BundleError(
                    f"task {key} depends on {dep.get('task_key')!r}, which is not a task of its job"
                )
            visit(dep["task_key"], (*trail, key))
        state[key] = 2
        order.append(key)

    for key in tasks:
        visit(key, ())
    return order


def run_tasks(
    job: str,
    tasks: Mapping[str, Mapping[str, Any]],
    launch: Callable[[str, Mapping[str, Any], int], Attempt],
    *,
    retry_wait: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    say: Say = print,
) -> list[TaskResult]:
    """Run ``tasks`` in dependency order through ``launch(task_key, task, attempt)``, honouring
    ``max_retries`` and ``min_retry_interval_millis``; a task whose upstream failed is not run."""
    results: dict[str, TaskResult] = {}
    for key in task_order(tasks):
        task = tasks[key]
        run_if = str(task.get("run_if") or "ALL_SUCCESS")
        deps = [d["task_key"] for d in task.get("depends_on") or []]
        failed_deps = [d for d in deps if results[d].status != "ok"]
        if run_if == "ALL_SUCCESS" and failed_deps:
            results[key] = TaskResult(
                job, key, "upstream_failed", 0, 0.0, detail=f"{', '.join(failed_deps)} did not succeed"
            )
            say(f"  {key:<16} skipped: upstream {', '.join(failed_deps)} did not succeed")
            continue
        if run_if not in ("ALL_SUCCESS", "ALL_DONE"):
            raise BundleError(f"job {job} task {key}: run_if {run_if} is not supported by the local job run")
        retries = int(task.get("max_retries") or 0)
        wait = (
            retry_wait if retry_wait is not None else int(task.get("min_retry_interval_millis") or 0) / 1000
        )
        started = time.perf_counter()
        attempt_result = Attempt(1, "not run")
        attempt = 0
        for attempt in range(1, retries + 2):
            attempt_result = launch(key, task, attempt)
            if attempt_result.code == 0:
                break
            if attempt <= retries:
                say(
                    f"  {key:<16} attempt {attempt} failed ({attempt_result.detail}); retrying in {wait:.0f} s"
                )
                sleep(wait)
        seconds = time.perf_counter() - started
        status = "ok" if attempt_result.code == 0 else "failed"
        results[key] = TaskResult(job, key, status, attempt, seconds, detail=attempt_result.detail)
        tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
        line = f"  {key:<16} {status:<7} {tries:<11} {seconds:7.1f} s"
        say(line if status == "ok" else f"{line}  {attempt_result.detail}")
    return list(results.values())


def wait_task(proc: subprocess.Popen[Any], timeout: float | None) -> int | None:
    """The exit code of a task's process (its own process group), None when it timed out (the group is
    stopped). A cancelled job run (Ctrl-C, SIGTERM) stops the task's group before it goes: the task runs in
    its own session, so a terminal's Ctrl-C never reaches it, and it would outlive the run."""
    from pipelines.ml.servers import stop_group

    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        return None
    except BaseException:
        stop_group(proc)
        raise


def fill_dynamic(value: Any, context: Mapping[str, str], where: str) -> Any:
    """``{{job.run_id}}`` and the other dynamic value references of a task, from ``context``."""
    if isinstance(value, list):
        return [fill_dynamic(v, context, where) for v in value]
    if isinstance(value, Mapping):
        return {k: fill_dynamic(v, context, where) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(1) not in context:
            raise BundleError(
                f"{where}: the dynamic value {match.group(0)} is not known to the local job run"
            )
        return context[match.group(1)]

    return _DYNAMIC.sub(one, value)


# ---- environments ------------------------------------------------------------------------------------------


def _site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python3*/site-packages"))
    if not found:
        raise JobRunError(f"{env} is not a virtual environment (no lib/python3*/site-packages)")
    return found[0]


def _pip(python: Path, *args: str, log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {python} -m pip {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(
            [str(python), "-m", "pip", *args], stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or [""]
        raise JobRunError(
            f"pip {' '.join(args[:2])} ... failed (exit {proc.returncode}): {tail[0][:300]} (see {log})"
        )


def find_python(version: str, explicit: str | None, say: Say) -> str:
    """An interpreter for the runtimes' Python ``version``: ``explicit`` (``--python`` /
    ``MEDALLION_RUNTIME_PYTHON``), else ``python<version>`` if it runs (on PATH, or installed by pyenv),
    else this interpreter (said)."""
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"), reverse=True)
    candidates = (
        [explicit]
        if explicit
        else [os.environ.get("MEDALLION_RUNTIME_PYTHON"), f"python{version}", *map(str, pyenv)]
    )
    for candidate in filter(None, candidates):
        path = shutil.which(candidate) or candidate
        try:
            out = subprocess.run(
                [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        except OSError:
            out = None
        if out is not None and out.returncode == 0:
            if out.stdout.strip() != version:
                say(f"note: {candidate} is Python {out.stdout.strip()}; the runtimes run Python {version}")
            return path
        if explicit:
            raise JobRunError(f"--python {explicit} does not run")
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if here != version:
        say(f"note: no Python {version} found (the runtimes run it; give --python): using this Python {here}")
    return sys.executable


def runtime_cache_dir(explicit: Path | None = None) -> Path:
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("MEDALLION_RUNTIME_CACHE") or Path(base) / "medallion" / "runtimes")


def ensure_runtime(runtime: Runtime, python: str, cache: Path, say: Say) -> Path:
    """The cached environment of ``runtime`` (built when missing: an install step, it fetches from PyPI)."""
    probe = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    )
    folder = cache / f"{runtime.key}-{probe.stdout.strip()}"
    manifest = folder / "runtime.json"
    if manifest.is_file():
        return folder
    say(f"building the {runtime.name} environment once ({len(runtime.packages)} packages) in {folder} ...")
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    log = folder.parent / f"{folder.name}.log"
    subprocess.run([python, "-m", "venv", str(folder)], check=True)
    env_python = folder / "bin" / "python"
    _pip(env_python, "install", "-q", "--upgrade", "pip", log=log)
    _pip(env_python, "install", "-q", *runtime.packages, log=log)
    manifest.write_text(
        json.dumps(
            {
                "runtime": runtime.name,
                "packages": list(runtime.packages),
                "installed": _installed(env_python),
            },
            indent=1,
        )
    )
    return folder


def _installed(python: Path) -> dict[str, str]:
    code = "import json, importlib.metadata as m; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return {canonical(k): v for k, v in json.loads(out.stdout).items()}


@dataclass
class ClusterEnv:
    """One job cluster of one job run: the runtime (read-only, through a .pth file) plus installed libraries."""

    key: str
    runtime: Runtime
    base: Path
    path: Path
    root: Path
    log: Path
    installed: set[str] = field(default_factory=set)

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @classmethod
    def create(cls, key: str, runtime: Runtime, base: Path, path: Path, root: Path) -> ClusterEnv:
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([str(base / "bin" / "python"), "-m", "venv", "--without-pip", str(path)], check=True)
        (_site_packages(path) / "_databricks_runtime.pth").write_text(f"{_site_packages(base)}\n")
        return cls(key, runtime, base, path, root, path.parent / f"{path.name}.install.log")

    def install(self, libraries: Sequence[Mapping[str, Any]], where: str) -> None:
        """Install a task's libraries (once per cluster); refuse any that replaces a runtime package."""
        specs: list[str] = []
        for lib in libraries:
            if "whl" in lib:
                matches = sorted(self.root.glob(str(lib["whl"])))
                if not matches:
                    raise JobRunError(
                        f"{where}: library whl {lib['whl']} matches no file (was the artifact built?)"
                    )
                specs += [str(m) for m in matches]
            elif "pypi" in lib:
                specs.append(str(lib["pypi"]["package"]))
            else:
                raise JobRunError(f"{where}: library {lib} is not supported by the local job run (whl, pypi)")
        todo = [s for s in specs if s not in self.installed]
        if not todo:
            return
        before = json.loads((self.base / "runtime.json").read_text())["installed"]
        _pip(self.python, "install", "-q", "--disable-pip-version-check", *todo, log=self.log)
        after = _installed(self.python)
        replaced = sorted(f"{n} {v} -> {after[n]}" for n, v in before.items() if n in after and after[n] != v)
        if replaced:
            raise JobRunError(
                f"{where}: installing {', '.join(Path(t).name for t in todo)} replaces runtime package(s) of "
                f"{self.runtime.name}: {', '.join(replaced)} (a cluster would lose its own versions)"
            )
        self.installed.update(todo)


# ---- the platform ------------------------------------------------------------------------------------------


@dataclass
class Platform:
    """The work folder that stands in for the workspace, and its MLflow server."""

    workdir: Path
    server: Any = None
    tracking_uri: str = ""

    @property
    def volumes(self) -> Path:
        return self.workdir / "Volumes"

    @property
    def metastore(self) -> Path:
        return self.workdir / "metastore"

    @property
    def mlflow(self) -> Path:
        return self.workdir / "mlflow"

    @property
    def secrets(self) -> Path:
        """The workspace's secret scopes: ``secrets/<scope>/<secret>`` (``MEDALLION_SECRETS`` of the tasks)."""
        return self.workdir / "secrets"

    @property
    def config_home(self) -> Path:
        """The tasks' ``XDG_CONFIG_HOME``: empty, as on a cluster (no key of ``medallion setup``)."""
        return self.workdir / "config"

    def volume(self, catalog: str, schema: str, name: str) -> Path:
        return self.volumes / catalog / schema / name

    def start_mlflow(self, say: Say) -> None:
        from pipelines.ml.servers import mlflow_server_command, mlflow_server_env, start_server

        self.mlflow.mkdir(parents=True, exist_ok=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        cmd = mlflow_server_command(
            f"sqlite:///{self.mlflow / 'mlflow.db'}",
            str(self.mlflow / "artifacts"),
            port,
            serve_artifacts=True,
        )
        log = (self.mlflow / "server.log").open("a")
        self.server = start_server(cmd, mlflow_server_env(), f"{url}/health", timeout=180, log=log)
        self.tracking_uri = url
        say(f"MLflow tracking server and registry at {url} (store {self.mlflow})")

    def stop(self) -> None:
        if self.server is not None:
            from pipelines.ml.servers import stop_group

            stop_group(self.server)
            self.server = None

    def task_environment(self, env: ClusterEnv) -> dict[str, str]:
        out = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
        out.update(
            {
                "PATH": f"{env.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
                "VIRTUAL_ENV": str(env.path),
                "PYSPARK_PYTHON": str(env.python),
                "PYSPARK_DRIVER_PYTHON": str(env.python),
                "SPARK_LOCAL_IP": "127.0.0.1",
                "PYTHONUNBUFFERED": "1",
                "MEDALLION_VOLUMES": str(self.volumes),
                "MEDALLION_METASTORE": str(self.metastore),
                "MEDALLION_SECRETS": str(self.secrets),
                "XDG_CONFIG_HOME": str(self.config_home),
            }
        )
        if self.tracking_uri:
            out["MEDALLION_TRACKING_URI"] = self.tracking_uri
            out["MEDALLION_REGISTRY_URI"] = self.tracking_uri
        return out


def put_secret_once(path: Path) -> bool:
    """A random key (``secrets.token_hex(32)``) at ``path``, readable by its owner only, unless one is there
    (True: created). The local stand-in for ``databricks secrets put-secret``, done once by an admin."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return True


def deploy_secret_scopes(bundle: Bundle, platform: Platform) -> tuple[int, int]:
    """The bundle's secret scopes as folders, each with the pseudonymisation key the tasks read from it
    (the secret their settings name; ``pseudonym-key`` by default): (scopes, keys created)."""
    from pipelines.config import PseudonymKeyConf

    names = [str(s["name"]) for s in (bundle.resources.get("secret_scopes") or {}).values()]
    wanted: dict[str, set[str]] = {name: set() for name in names}
    for _, settings, _ in secret_scope_uses(bundle):
        scope = settings.pseudonym_key.secret_scope
        if scope in wanted:
            wanted[scope].add(settings.pseudonym_key.secret)
    platform.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    platform.config_home.mkdir(parents=True, exist_ok=True)
    created = 0
    for scope, keys in wanted.items():
        (platform.secrets / scope).mkdir(mode=0o700, exist_ok=True)
        for key in sorted(keys or {PseudonymKeyConf().secret}):
            created += put_secret_once(platform.secrets / scope / key)
    return len(wanted), created


def deploy(bundle: Bundle, platform: Platform, say: Say) -> None:
    """Create what the bundle declares: volume folders, schemas, registered models, experiments, secret
    scopes (with their key)."""
    resources = bundle.resources
    catalogs = {s.get("catalog_name") for s in (resources.get("schemas") or {}).values()}
    catalogs |= {v.get("catalog_name") for v in (resources.get("volumes") or {}).values()}
    if catalogs - {LOCAL_CATALOG}:
        raise BundleError(
            f"the local job run has one catalog, {LOCAL_CATALOG}, but the bundle names {', '.join(sorted(map(str, catalogs)))}: "
            f"set the catalog variable to {LOCAL_CATALOG} (--var)"
        )
    for volume in (resources.get("volumes") or {}).values():
        platform.volume(volume["catalog_name"], volume["schema_name"], volume["name"]).mkdir(
            parents=True, exist_ok=True
        )
    schemas = list((resources.get("schemas") or {}).values())
    if schemas:
        platform.metastore.mkdir(parents=True, exist_ok=True)
        log = platform.workdir / "deploy.log"
        with log.open("a") as out:
            proc = subprocess.run(
                [sys.executable, "-c", SCHEMA_SCRIPT, str(platform.metastore), json.dumps(schemas)],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}, check=False,
            )  # fmt: skip
        if proc.returncode != 0:
            raise JobRunError(f"deploy: creating the schemas failed (see {log})")
    if platform.tracking_uri:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=platform.tracking_uri, registry_uri=platform.tracking_uri)
        for model in (resources.get("registered_models") or {}).values():
            name = f"{model['catalog_name']}.{model['schema_name']}.{model['name']}"
            try:
                client.get_registered_model(name)
            except MlflowException:
                client.create_registered_model(name, description=model.get("comment"))
        for experiment in (resources.get("experiments") or {}).values():
            if client.get_experiment_by_name(experiment["name"]) is None:
                client.create_experiment(experiment["name"])
    scopes, keys = deploy_secret_scopes(bundle, platform)
    say(
        f"deployed: {len(schemas)} schema(s) in {LOCAL_CATALOG}, {len(resources.get('volumes') or {})} volume(s), "
        f"{len(resources.get('registered_models') or {})} registered model(s), {len(resources.get('experiments') or {})} experiment(s), "
        f"{scopes} secret scope(s) in {platform.secrets} ({keys} new key(s))"
    )


def build_artifacts(bundle: Bundle, log: Path, say: Say) -> None:
    """Run each artifact's build command in its folder (the CLI does the same before a deploy)."""
    for name, artifact in (bundle.config.get("artifacts") or {}).items():
        command = artifact.get("build")
        if not command:
            continue
        folder = bundle.root / str(artifact.get("path", "."))
        say(f"building artifact {name}: {command}")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        with log.open("a") as out:
            proc = subprocess.run(
                command, shell=True, cwd=folder, stdout=out, stderr=subprocess.STDOUT, env=env, check=False
            )
        if proc.returncode != 0:
            raise JobRunError(f"artifact {name}: `{command}` failed (exit {proc.returncode}, see {log})")


def next_run_id(workdir: Path) -> int:
    counter = workdir / "runs" / "last_run_id"
    counter.parent.mkdir(parents=True, exist_ok=True)
    value = int(counter.read_text()) + 1 if counter.is_file() else 1
    counter.write_text(str(value))
    return value


def _last_error(log: Path) -> str:
    lines = (
        [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        if log.is_file()
        else []
    )
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1][:300]


def task_command(task: Mapping[str, Any], root: Path, python: Path) -> list[str]:
    if "python_wheel_task" in task:
        spec = task["python_wheel_task"]
        return [
            str(python),
            "-c",
            WHEEL_LAUNCHER,
            spec["package_name"],
            spec["entry_point"],
            *map(str, spec.get("parameters") or []),
        ]
    if "notebook_task" in task:
        spec = task["notebook_task"]
        return [
            str(python),
            "-c",
            NOTEBOOK_LAUNCHER,
            str(root / spec["notebook_path"]),
            json.dumps(spec.get("base_parameters") or {}),
        ]
    kinds = sorted(k for k in task if k.endswith("_task"))
    raise BundleError(
        f"task {task.get('task_key')}: {', '.join(kinds) or 'no task type'} is not supported locally (python_wheel_task, notebook_task)"
    )


def run_bundle(root: Path, options: RunOptions, say: Say = print) -> int:
    """The local job run: 0 when every task of every selected job succeeded, else 1."""
    user = options.user or os.environ.get("MEDALLION_BUNDLE_USER") or f"{getpass.getuser()}@localhost"
    variables = {**LOCAL_VARIABLES, **options.variables}
    from pipelines.bundle.resolve import load

    loaded = load(root)
    declared = loaded.get("variables") or {}
    variables = {k: v for k, v in variables.items() if k in declared or k in options.variables}
    bundle = resolve(root, options.target, Identity(user), variables, loaded=loaded)
    problems = check_bundle(bundle)
    problems += access_problems_of_other_targets(root, loaded, Identity(user), bundle.target)
    if problems:
        for problem in problems:
            say(f"  - {problem}")
        raise BundleError(
            f"target {bundle.target}: {len(problems)} problem(s) found by the bundle checks; not run"
        )
    jobs = list(options.jobs) or list(bundle.jobs())
    for job in jobs:
        bundle.tasks(job)  # an unknown job fails before anything is built
    workdir = (options.workdir or root / ".medallion" / "bundle" / bundle.target).absolute()
    if options.fresh:
        shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    say(
        f"bundle {bundle.config['bundle']['name']} target {bundle.target} (mode {bundle.mode or 'none'}) as {user}: {', '.join(jobs)}"
    )
    say(f"work folder {workdir}")
    build_artifacts(bundle, workdir / "build.log", say)

    runtimes = {
        job: {
            t.get("job_cluster_key", ""): runtime_for(str(bundle.job_cluster(job, t).get("spark_version")))
            for t in bundle.tasks(job).values()
        }
        for job in jobs
    }
    python = find_python(next(iter(next(iter(runtimes.values())).values())).python, options.python, say)
    cache = runtime_cache_dir(options.runtime_cache)
    bases = {r.key: ensure_runtime(r, python, cache, say) for rs in runtimes.values() for r in rs.values()}

    platform = Platform(workdir)
    results: list[TaskResult] = []
    try:
        if any(bundle.resources.get(k) for k in ("registered_models", "experiments")):
            platform.start_mlflow(say)
        deploy(bundle, platform, say)
        for job in jobs:
            results += _run_job(bundle, job, runtimes[job], bases, platform, options, say)
    finally:
        platform.stop()
    failed = [r for r in results if r.status != "ok"]
    say(
        f"done: {len(results) - len(failed)} of {len(results)} task(s) succeeded"
        + (f"; failed: {', '.join(f'{r.job}.{r.task}' for r in failed)}" if failed else "")
    )
    return 1 if failed else 0


def _run_job(
    bundle: Bundle,
    job: str,
    runtimes: Mapping[str, Runtime],
    bases: Mapping[str, Path],
    platform: Platform,
    options: RunOptions,
    say: Say,
) -> list[TaskResult]:
    spec = bundle.jobs()[job]
    run_id = next_run_id(platform.workdir)
    run_dir = platform.workdir / "runs" / str(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    say(f"job {job} ({spec.get('name')}), run {run_id}")
    clusters: dict[str, ClusterEnv] = {}
    started = time.monotonic()
    deadline = started + float(spec.get("timeout_seconds") or 0) if spec.get("timeout_seconds") else None
    tasks = bundle.tasks(job)

    def launch(key: str, task: Mapping[str, Any], attempt: int) -> Attempt:
        where = f"job {job} task {key}"
        cluster_key = str(task.get("job_cluster_key", ""))
        log = run_dir / f"{key}.{attempt}.log"
        try:
            if cluster_key not in clusters:
                runtime = runtimes[cluster_key]
                clusters[cluster_key] = ClusterEnv.create(
                    cluster_key, runtime, bases[runtime.key], run_dir / f"cluster-{cluster_key}", bundle.root
                )
            env = clusters[cluster_key]
            env.install(task.get("libraries") or [], where)
            context = {
                "job.run_id": str(run_id),
                "job.id": job,
                "job.name": str(spec.get("name", job)),
                "task.name": key,
            }
            command = fill_dynamic(task_command(task, bundle.root, env.python), context, where)
        except (BundleError, JobRunError) as exc:
            log.write_text(f"error: {type(exc).__name__}: {exc}\n")
            return Attempt(1, f"error: {exc}")
        timeout = float(task["timeout_seconds"]) if task.get("timeout_seconds") else None
        if deadline is not None:
            left = deadline - time.monotonic()
            timeout = min(timeout, left) if timeout else left
        with log.open("w") as out:
            proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=platform.task_environment(env), cwd=run_dir, start_new_session=True,
            )  # fmt: skip
            code = wait_task(proc, timeout)
            if code is None:
                return Attempt(124, f"timed out after {timeout:.0f} s (see {log})")
        return Attempt(code, "" if code == 0 else f"exit {code}: {_last_error(log)} (see {log})")

    return run_tasks(job, tasks, launch, retry_wait=options.retry_wait, say=say)
