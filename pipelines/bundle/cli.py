"""``medallion bundle validate | run``: the Databricks bundle of the checkout, resolved, checked, run locally
(registered in pipelines.cli.EXTENSIONS)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.errors import BundleError, UsageError

EPILOG = """\
examples:
  medallion bundle validate -t dev                # resolve dev as the Databricks CLI does, run the checks
  medallion bundle validate -t prod --var writer_principal=<application id>
  medallion bundle run -t dev                     # every job of dev, task by task, in clean runtimes
  medallion bundle run -t dev medallion_daily --retry-wait 5
"""


def _variables(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--target", help="bundle target (default: the one with default: true)")
    p.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="a bundle variable; repeatable"
    )
    p.add_argument(
        "--user", metavar="EMAIL", help="the deploying user (workspace.current_user; default: you@localhost)"
    )
    p.add_argument(
        "--root", help="the bundle's folder (default: the one holding databricks.yml above the cwd)"
    )


def register(sub: Any) -> None:
    bundle = sub.add_parser(
        "bundle",
        help="the Databricks bundle: resolve and check a target, or run its jobs locally",
        description="The bundle in databricks.yml + resources/*.yml, resolved for a target the way the "
        "Databricks CLI does (variables, includes, development-mode prefixes and paused schedules).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = bundle.add_subparsers(dest="bundle_command", metavar="VERB", required=True)
    validate = verbs.add_parser(
        "validate",
        help="resolve a target and run the semantic checks (exit 2 with every problem listed)",
        description="Resolve the target and check what the bundle schema cannot: entry points and their "
        "parameters, ML only on ML clusters, the model training registers is the one the bundle declares and "
        "serves, every schema/volume/experiment a task uses is declared, libraries, notebooks, grants, hosts, "
        "root paths, sync excludes, timeouts; analysts read gold only and the pseudonymisation key's secret "
        "scope is declared, passed to every task, readable by the jobs and not by analysts (these two for every "
        "target). Needs no workspace.",
    )
    _common(validate)
    validate.set_defaults(func=cmd_validate)
    run = verbs.add_parser(
        "run",
        help="run the target's jobs locally: built wheel, clean runtime environments, one process per task",
        description="Build the wheel as the bundle's artifact says, install it with each task's libraries in "
        "clean environments of the job clusters' Databricks Runtimes (Spark 4.1, and MLflow 3.8.1 and "
        "scikit-learn on ML clusters), then run every task in depends_on order, each in its own process, with "
        "its declared parameters, honouring max_retries. Tables get three-part names in spark_catalog, the "
        "volumes are folders, MLflow is a local tracking server with a registry. Exit 0 only when every task "
        "succeeded. State stays in the work folder between runs (--fresh starts over).",
    )
    _common(run)
    run.add_argument("jobs", nargs="*", metavar="JOB", help="jobs to run, in this order (default: every job)")
    run.add_argument(
        "--workdir", help="the local stand-in for the workspace (default .medallion/bundle/<target>)"
    )
    run.add_argument(
        "--fresh", action="store_true", help="empty the work folder first (tables, volume, MLflow)"
    )
    run.add_argument(
        "--python", help="interpreter for the runtime environments (default: python3.12 if found)"
    )
    run.add_argument(
        "--retry-wait",
        type=float,
        metavar="SECONDS",
        help="wait between attempts (default: the task's min_retry_interval_millis)",
    )
    run.set_defaults(func=cmd_run)


def _root(args: argparse.Namespace) -> Path:
    from pipelines.bundle.resolve import find_root

    return find_root(Path(args.root)) if args.root else find_root()


def cmd_validate(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.bundle.checks import access_problems_of_other_targets, check_bundle
    from pipelines.bundle.resolve import Identity, load, resolve

    root = _root(args)
    loaded = load(root)
    identity = Identity(args.user or "you@localhost")
    bundle = resolve(root, args.target, identity, _variables(args.var), loaded=loaded)
    print(
        f"bundle {bundle.config['bundle']['name']} target {bundle.target} (mode {bundle.mode or 'none'})",
        flush=True,
    )
    print(f"  root_path {bundle.config['workspace']['root_path']}", flush=True)
    for job, spec in bundle.jobs().items():
        tasks = ", ".join(f"{key} [{task.get('job_cluster_key')}]" for key, task in bundle.tasks(job).items())
        print(f"  job {job} ({spec.get('name')}): {tasks}", flush=True)
    for kind in (
        "schemas",
        "volumes",
        "registered_models",
        "experiments",
        "secret_scopes",
        "model_serving_endpoints",
    ):
        names = [str(r.get("name")) for r in (bundle.resources.get(kind) or {}).values()]
        if names:
            print(f"  {kind}: {', '.join(names)}", flush=True)
    for warning in bundle.warnings:
        print(f"  warning: {warning}", flush=True)
    # This target's checks, then the access checks (analysts, the key's secret scope) of every other target.
    problems = check_bundle(bundle) + access_problems_of_other_targets(root, loaded, identity, bundle.target)
    if problems:
        print(f"{len(problems)} problem(s):", flush=True)
        for problem in problems:
            print(f"  - {problem}", flush=True)
        raise BundleError(
            f"target {bundle.target}: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    print("checks passed", flush=True)
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.bundle.localrun import RunOptions, run_bundle

    options = RunOptions(
        target=args.target,
        jobs=tuple(args.jobs),
        variables=_variables(args.var),
        user=args.user,
        workdir=Path(args.workdir) if args.workdir else None,
        fresh=args.fresh,
        python=args.python,
        retry_wait=args.retry_wait,
    )
    return run_bundle(_root(args), options, say=lambda line: print(line, flush=True))
