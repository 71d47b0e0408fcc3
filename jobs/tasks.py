"""One entry point per Databricks task of the ``medallion_daily`` and ``medallion_maintenance`` jobs.

    medallion-bronze   --env dev --catalog medallion_dev [--land sample] --run-id {{job.run_id}}
    medallion-silver   --env dev --catalog medallion_dev --run-id {{job.run_id}}
    medallion-gold     --env dev --catalog medallion_dev --run-id {{job.run_id}}
    medallion-train    --env dev --catalog medallion_dev --model-name C.S.M --experiment /Users/.../name
    medallion-score    --env dev --catalog medallion_dev --model-name C.S.M --run-id {{job.run_id}}
    medallion-serving  --env dev --catalog medallion_dev --model-name C.S.M --endpoint NAME
    medallion-maintain --env dev --catalog medallion_dev [--retention-hours 168]

Every task also takes ``--secret-scope NAME``: the bundle's secret scope that holds the pseudonymisation key
(``pipelines.sensitive.load_key`` reads its secret ``pseudonym-key`` with ``dbutils.secrets``).

Each is thin: parse the task's arguments, put the deployment's names into the environment the config
loader reads (``MEDALLION_CATALOG``, ``MEDALLION_SCHEMA_<LAYER>``, ``MEDALLION_HOME``, ``MEDALLION_MODEL_NAME``,
``MEDALLION_EXPERIMENT``, ``MEDALLION_SECRET_SCOPE``), and call :func:`pipelines.cli.run_cli` with the same command a developer types
locally (``medallion run --select silver --no-ml``, ``medallion train``, ...). The layer tasks never train or
score (``--no-ml``: the job has its own ML tasks, and the ETL cluster has no ML libraries); an ML task first
checks that its cluster's runtime has them (:class:`ClusterRuntimeError` otherwise). The session factory
picks the cluster's session and native Delta on Databricks (``DATABRICKS_RUNTIME_VERSION``); ``storage.ingest``
in ``conf/<env>.yml`` picks Auto Loader or the manifest for bronze. A non-zero exit code fails the task, so
the job's retry policy and failure notifications apply; every task is idempotent, so a retry is safe.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

LAYERS = ("bronze", "silver", "gold")
# What a Databricks Runtime ML has and the standard runtime lacks; an ML task needs all of them.
ML_MODULES = ("mlflow", "sklearn")


@dataclass(frozen=True)
class TaskSpec:
    """A job task: its console script, what it runs, and which options it takes beyond the common ones."""

    name: str
    script: str
    summary: str
    run_id: bool = True  # takes --run-id (recorded with every write)
    ml: bool = False  # needs an ML runtime (mlflow, scikit-learn): the bundle runs it on the ML cluster
    model: bool = False  # takes --model-name (the bundle's registered model)


TASKS: dict[str, TaskSpec] = {
    "bronze": TaskSpec("bronze", "medallion-bronze", "ingest landed files into the bronze tables"),
    "silver": TaskSpec(
        "silver", "medallion-silver", "build the silver tables (typed, deduplicated, checked)"
    ),
    "gold": TaskSpec("gold", "medallion-gold", "build the gold tables (aggregates and ML features)"),
    "train": TaskSpec(
        "train",
        "medallion-train",
        "train, evaluate and register the model",
        run_id=False,
        ml=True,
        model=True,
    ),
    "score": TaskSpec("score", "medallion-score", "score with the champion into gold", ml=True, model=True),
    "serving": TaskSpec(
        "serving",
        "medallion-serving",
        "point the model serving endpoint at the champion (create it on the first run)",
        run_id=False,
        ml=True,
        model=True,
    ),
    "maintain": TaskSpec("maintain", "medallion-maintain", "OPTIMIZE and VACUUM every table", run_id=False),
}


def parser(task: str) -> argparse.ArgumentParser:
    """The argument parser of one task (the bundle's ``parameters`` must parse with it)."""
    spec = TASKS[task]
    p = argparse.ArgumentParser(
        prog=spec.script,
        description=f"Databricks job task '{task}': {spec.summary}. Runs the same code as the medallion CLI.",
    )
    p.add_argument(
        "--env", required=True, help="configuration environment: conf/<env>.yml (local, dev, prod)"
    )
    p.add_argument("--catalog", help="Unity Catalog catalog (overrides storage.catalog)")
    for layer in LAYERS:
        p.add_argument(f"--{layer}-schema", metavar="NAME", help=f"schema of the {layer} layer")
    p.add_argument(
        "--home", metavar="PATH", help="root of landing/ and state/ (the landing volume on Databricks)"
    )
    p.add_argument(
        "--secret-scope",
        metavar="NAME",
        help="Databricks secret scope holding the pseudonymisation key (the bundle's secret_scopes resource)",
    )
    if spec.run_id:
        p.add_argument("--run-id", help="identifier recorded with every write (the job run id)")
    if spec.model:
        p.add_argument(
            "--model-name",
            metavar="NAME",
            help="registered model (<catalog>.<schema>.<model> in Unity Catalog)",
        )
    if task == "train":
        p.add_argument(
            "--experiment", metavar="PATH", help="MLflow experiment (the bundle's experiment resource)"
        )
    if task == "serving":
        p.add_argument(
            "--endpoint", required=True, metavar="NAME", help="serving endpoint to create or update"
        )
    if task == "bronze":
        p.add_argument(
            "--land",
            choices=("none", "sample"),
            default="none",
            help="sample: deliver the embedded sample first when nothing is landed (dev); none: only what "
            "the source systems landed (default)",
        )
    if task == "maintain":
        p.add_argument("--retention-hours", type=int, default=168, help="VACUUM retention (default 168)")
    p.add_argument("-v", "--verbose", action="store_true", help="full traces on failure")
    return p


def environment_for(args: argparse.Namespace) -> dict[str, str]:
    """The variables the config loader reads, from the task's arguments (only those given)."""
    from pipelines.config import deployment_environment

    names = {
        key: getattr(args, key, None)
        for key in ("catalog", "home", "model_name", "experiment", "secret_scope")
    }
    names.update({f"{layer}_schema": getattr(args, f"{layer}_schema") for layer in LAYERS})
    return deployment_environment(args.env, **names)


def runtime_problem(task: str) -> str | None:
    """Why this process's runtime cannot run ``task`` (None: it can): an ML task needs mlflow and
    scikit-learn, which only a Databricks Runtime ML (the bundle's ML job cluster) ships."""
    if not TASKS[task].ml:
        return None
    missing = [m for m in ML_MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (
        f"task {task} needs an ML runtime, but {', '.join(missing)} is not installed on this cluster: run it on "
        "a Databricks Runtime ML job cluster (spark_version *-ml-*), as resources/jobs.yml does"
    )


def cli_argv(task: str, args: argparse.Namespace) -> list[str]:
    """The ``medallion`` command line the task runs."""
    argv = ["--env", args.env]
    if args.verbose:
        argv.append("--verbose")
    if task in LAYERS:
        # --no-ml: the job trains and scores in its own tasks, on the ML cluster.
        argv += ["run", "--select", task, "--no-ml"]
        if args.run_id:
            argv += ["--run-id", args.run_id]
        if getattr(args, "land", "none") != "sample":
            argv.append("--no-land")
        return argv
    if task == "maintain":
        return [*argv, "maintain", "--retention-hours", str(args.retention_hours)]
    if task == "serving":
        return [*argv, "deploy-endpoint", args.endpoint]
    if task == "score" and args.run_id:
        return [*argv, "score", "--run-id", args.run_id]
    return [*argv, task]  # train, score: the ML commands (pipelines/cli.py EXTENSIONS)


def finish(code: int) -> None:
    """End the task with ``code``. On Databricks raise SystemExit (the wheel-task runner turns a non-zero
    code into a failed task and must keep its own process); locally exit the way ``medallion`` does."""
    from pipelines.session import on_databricks

    if on_databricks():
        if code:
            raise SystemExit(code)
        return
    from pipelines.cli import exit_process

    exit_process(code)


def run_task(task: str, argv: Sequence[str] | None = None) -> int:
    """Parse, check the cluster's runtime, set the environment, run the CLI command; return its exit code."""
    args = parser(task).parse_args(argv)
    problem = runtime_problem(task)
    if problem:
        from pipelines.errors import ClusterRuntimeError

        print(f"error: {ClusterRuntimeError.__name__}: {problem}", file=sys.stderr, flush=True)
        return ClusterRuntimeError.exit_code
    os.environ.update(environment_for(args))
    from pipelines.cli import run_cli

    return run_cli(cli_argv(task, args))


def _entry(task: str) -> Callable[[Sequence[str] | None], None]:
    def main(argv: Sequence[str] | None = None) -> None:
        finish(run_task(task, argv))

    main.__name__ = task
    main.__doc__ = f"Console script {TASKS[task].script}: {TASKS[task].summary}."
    return main


bronze = _entry("bronze")
silver = _entry("silver")
gold = _entry("gold")
train = _entry("train")
score = _entry("score")
serving = _entry("serving")
maintain = _entry("maintain")
