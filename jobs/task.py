"""``medallion-task``: a generic entry point for ad-hoc runs of any selection (the scheduled jobs use the
per-task entry points of :mod:`jobs.tasks`).

    medallion-task --env dev --select bronze [--catalog medallion_dev] [--secret-scope NAME] [--run-id {{job.run_id}}]

It runs the same code as ``medallion run``: the session factory picks the cluster's session and native Delta
on Databricks (``DATABRICKS_RUNTIME_VERSION``), the offline engine on a laptop. ``--catalog`` overrides
``storage.catalog`` of the environment (one bundle target per catalog); ``--secret-scope`` names the secret scope
of the pseudonymisation key (``MEDALLION_SECRET_SCOPE``, as the per-task entry points). Exit code 0 on success, non-zero with a
one-line cause otherwise, so the job run fails visibly and its retry policy applies.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="medallion-task", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--env", required=True, help="configuration environment: local, dev or prod")
    p.add_argument(
        "--select", action="append", required=True, metavar="SEL", help="table, layer, or TABLE+; repeatable"
    )
    p.add_argument("--catalog", help="Unity Catalog catalog (overrides storage.catalog)")
    p.add_argument(
        "--secret-scope", metavar="NAME", help="Databricks secret scope holding the pseudonymisation key"
    )
    p.add_argument("--run-id", help="run identifier recorded with every write (e.g. the job run id)")
    p.add_argument(
        "--land-sample", action="store_true", help="deliver the embedded sample first if nothing is landed"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="full traces on failure")
    return p


def build_argv(args: argparse.Namespace) -> list[str]:
    argv = ["--env", args.env]
    if args.verbose:
        argv.append("--verbose")
    argv.append("run")
    for sel in args.select:
        argv += ["--select", sel]
    if args.run_id:
        argv += ["--run-id", args.run_id]
    if not args.land_sample:
        argv.append("--no-land")
    return argv


def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.catalog:
        os.environ["MEDALLION_CATALOG"] = args.catalog
    if args.secret_scope:
        os.environ["MEDALLION_SECRET_SCOPE"] = args.secret_scope
    from pipelines.cli import run_cli

    return run_cli(build_argv(args))


def main(argv: Sequence[str] | None = None) -> None:
    """Console script: exits with the CLI's code (a SystemExit on Databricks, see jobs.tasks.finish)."""
    from jobs.tasks import finish

    finish(run(argv))


if __name__ == "__main__":
    main()
