"""``medallion train | score | ui | serve``: the ML command group (registered in pipelines.cli.EXTENSIONS).

Heavy libraries (Spark, MLflow, scikit-learn) are imported inside the commands, never at import time.
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from typing import Any

from pipelines.config import Settings
from pipelines.errors import UsageError

TRAIN_EPILOG = """\
examples:
  medallion train                               # latest gold.flight_features version, params from conf
  medallion train --version 3                   # pin the Delta version of the feature table
  medallion train --param learning_rate=0.05 --param max_iter=300
  medallion train --search                      # ml.search grid: nested runs, the best one is registered
  mlflow run . -e train -P learning_rate=0.05 --env-manager local   # the same as an MLflow Project

Training refuses (exit 3, DataQualityGateError) when gold.dq_results holds no result for the table version it
reads, or a failed check whose action is 'fail'. Each training registers a version with alias 'challenger';
it becomes 'champion' when it beats the champion on ml.promotion_metric by ml.promotion_margin.
"""


def register(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        help="train the flight-delay model on gold features (MLflow-tracked, DQ-gated), register, promote",
        description="Train the delay classifier on ml.features_table at a pinned Delta version, log it to "
        "MLflow (params, metrics vs a naive baseline, plots, model, lineage), register it and promote it to "
        "champion when it beats the current one.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--version", type=int, help="Delta version of the feature table (default: latest)")
    train.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        default=[],
        help="estimator parameter overriding ml.model.params (e.g. learning_rate=0.05); repeatable",
    )
    train.add_argument(
        "--model-kind",
        choices=("hist_gradient_boosting", "logistic_regression"),
        help="estimator (default: ml.model.kind)",
    )
    train.add_argument(
        "--search", action="store_true", help="run the ml.search grid/random search as nested runs"
    )
    train.set_defaults(func=cmd_train)

    score = sub.add_parser(
        "score",
        help="score the feature table with the champion into gold.flight_delay_predictions (MERGE on flight_id)",
        description="Batch scoring with mlflow.pyfunc.spark_udf. One row per flight: scoring again replaces "
        "the rows it scores (MERGE on flight_id); model_name/model_version say which model wrote each row.",
    )
    score.add_argument("--version", type=int, help="Delta version of the feature table (default: latest)")
    score.add_argument("--model-version", help="registered model version (default: the 'champion' alias)")
    score.add_argument("--since", metavar="YYYY-MM-DD", help="only flights on or after this date")
    score.add_argument(
        "--run-id", help="score as a step of this run (recorded in the commit and the run's event log)"
    )
    score.set_defaults(func=cmd_score)

    endpoint = sub.add_parser(
        "deploy-endpoint",
        help="create or update a model serving endpoint so that it serves the champion",
        description="Point the serving endpoint NAME at the registered model's champion version: Databricks "
        "Model Serving when the registry is Databricks' (Unity Catalog), else a local endpoint record under "
        "<state>/serving/ that `medallion serve --endpoint NAME` serves. The model is loaded and scores its "
        "own input example first, so an endpoint is never pointed at a model that cannot serve. Exit 0 also "
        "when the endpoint already serves the champion (nothing changes).",
    )
    endpoint.add_argument("name", help="endpoint name")
    endpoint.add_argument(
        "--workload-size", default="Small", help="Databricks serving workload size (default Small)"
    )
    endpoint.add_argument(
        "--no-scale-to-zero",
        action="store_true",
        help="keep the endpoint's compute up when idle (Databricks)",
    )
    endpoint.set_defaults(func=cmd_deploy_endpoint)

    ui = sub.add_parser(
        "ui",
        help="start the MLflow UI on 127.0.0.1 over the local tracking store (Ctrl-C stops it)",
        description="Start the real MLflow tracking server (one worker) on 127.0.0.1 over the local SQLite "
        "store and artifact folder; print its URL; Ctrl-C stops the server and its workers. Requests with "
        "another Host header or browser origin than this machine's (see --allowed-host, --cors-origin) get 403.",
    )
    ui.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    _access_options(ui)
    ui.set_defaults(func=cmd_ui)

    serve = sub.add_parser(
        "serve",
        help="serve the champion over REST on 127.0.0.1 (MLflow's scoring server; Ctrl-C stops it)",
        description="Serve a registered model version (default: the champion) with MLflow's scoring server "
        "in this environment (as mlflow models serve --env-manager local), and print an example curl request. "
        "Requests with a missing column or a non-numeric value get HTTP 400 with a message; requests with "
        "another Host header or browser origin than this machine's (see --allowed-host, --cors-origin) get 403.",
    )
    serve.add_argument("--port", type=int, default=5001, help="port (default 5001)")
    serve.add_argument("--model-version", help="registered model version (default: the 'champion' alias)")
    _access_options(serve)
    serve.add_argument(
        "--endpoint",
        metavar="NAME",
        help="serve the version the local endpoint NAME serves (deploy-endpoint)",
    )
    serve.set_defaults(func=cmd_serve)


def _access_options(parser: Any) -> None:
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="also accept requests with this Host header (e.g. behind an SSH tunnel or a proxy); repeatable. "
        "Default: only 127.0.0.1:<port> and localhost:<port>; other Host headers get 403 (DNS rebinding)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="URL",
        help="also accept browser requests from this origin (e.g. https://notebooks.example.com); repeatable. "
        "Default: only http://127.0.0.1:<port> and http://localhost:<port>",
    )


def _quiet(verbose: bool) -> None:
    """MLflow's progress bars, advice and deprecation notes drown the command's own lines."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if verbose:
        return
    os.environ.setdefault(
        "MLFLOW_LOGGING_LEVEL", "WARNING"
    )  # before mlflow is imported (also in Spark workers)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def _parse_params(items: list[str]) -> dict[str, float]:
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            params[name.strip()] = float(value)
        except ValueError:
            raise UsageError(f"--param {item!r}: expected NAME=NUMBER, e.g. learning_rate=0.05") from None
    return params


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.lakehouse import open_lakehouse
    from pipelines.ml.estimators import coerce_params
    from pipelines.ml.train import train

    _quiet(args.verbose)
    params = _parse_params(args.param)
    coerce_params(args.model_kind or settings.ml.model.kind, {**settings.ml.model.params, **params})
    lh = open_lakehouse(settings)
    result = train(
        settings, lh, version=args.version, params=params, kind=args.model_kind, search=args.search
    )
    print_train_result(result)
    return 0


def print_train_result(result: Any) -> None:
    if result.parent_run_id:
        print(
            f"search run {result.parent_run_id}: {len(result.child_run_ids)} candidates, best {result.run_id}",
            flush=True,
        )
    print(f"{'metric (validation)':<20} {'model':>8} {'baseline':>9}", flush=True)
    for name in ("roc_auc", "pr_auc", "log_loss", "precision", "recall"):
        print(f"{name:<20} {result.metrics[name]:>8.4f} {result.baseline[name]:>9.4f}", flush=True)
    alias = "champion" if result.promoted else "challenger"
    print(
        f"registered {result.model_name} version {result.version} ({alias}): {result.reason}\n"
        f"run {result.run_id}, trained on {result.features_table} v{result.features_version}",
        flush=True,
    )


def cmd_score(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.lakehouse import open_lakehouse
    from pipelines.ml.score import score

    _quiet(args.verbose)
    lh = open_lakehouse(settings)
    options = {"features_version": args.version, "model_version": args.model_version, "since": args.since}
    res = (
        score_as_step(settings, lh, args.run_id, **options) if args.run_id else score(settings, lh, **options)
    )
    print_score_result(settings, res)
    return 0


def cmd_deploy_endpoint(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.ml.serving import deploy_endpoint

    _quiet(args.verbose)
    result = deploy_endpoint(
        settings, args.name, workload_size=args.workload_size, scale_to_zero=not args.no_scale_to_zero
    )
    print(result.summary(), flush=True)
    return 0


def print_score_result(settings: Settings, res: Any) -> None:
    print(
        f"scored {res.rows_scored:,} flight(s) of {res.features_table} v{res.features_version} with "
        f"{res.model_name} v{res.model_version} into {settings.ml.predictions_table} "
        f"(version {res.table_version}) in {res.seconds:.1f} s",
        flush=True,
    )


def cmd_ui(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.ml.servers import ui

    _quiet(args.verbose)
    return ui(
        settings,
        args.port,
        say=lambda line: print(line, flush=True),
        hosts=args.allowed_host,
        origins=args.cors_origin,
    )


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.ml.servers import serve

    _quiet(args.verbose)
    version = args.model_version
    if args.endpoint:
        if version:
            raise UsageError("give --model-version or --endpoint, not both")
        from pipelines.ml import tracking
        from pipelines.ml.serving import served_version

        version = served_version(settings, args.endpoint, tracking.registered_name(settings))
    return serve(
        settings,
        args.port,
        version,
        say=lambda line: print(line, flush=True),
        hosts=args.allowed_host,
        origins=args.cors_origin,
    )


def trains_after_run(settings: Settings, args: argparse.Namespace, tables: list[str]) -> bool:
    """Whether ``medallion run`` trains and scores after building ``tables``: when the run covers gold (or has
    no selection), unless ``--no-ml`` (the Databricks layer tasks pass it: the job trains in its own task)."""
    if getattr(args, "no_ml", False):
        return False
    return not args.select or any(settings.tables[t].layer == "gold" for t in tables)


def after_run(settings: Settings, args: argparse.Namespace, tables: list[str], lh: Any) -> None:
    """``medallion run`` post-step: train -> score when :func:`trains_after_run` says so."""
    if not trains_after_run(settings, args, tables):
        return
    table = settings.ml.features_table
    if not lh.exists(table):
        print(f"ml: train and score skipped: {table} does not exist yet", flush=True)
        return
    from pipelines.ml.score import resolve_model
    from pipelines.ml.train import train

    _quiet(args.verbose)
    current = lh.version(table)
    trained = _trained_on(settings, table, current)
    if trained:
        print(
            f"ml: train skipped: {table} v{current} has not changed since model version {trained} was "
            "trained on it (medallion train trains anyway)",
            flush=True,
        )
    else:
        from pipelines.errors import ModelError, TrainingDataError

        print(f"ml: training on {table} ...", flush=True)
        try:
            print_train_result(train(settings, lh, say=lambda line: print(f"ml: {line}", flush=True)))
        except TrainingDataError as exc:
            # The data run succeeded; too little data to train on is a state to report, not a crash.
            print(f"ml: train skipped: {exc}", flush=True)
            try:
                resolve_model(settings, None)
            except ModelError:
                print("ml: score skipped: no champion model yet", flush=True)
                return
    name, champion = resolve_model(settings, None)
    target = settings.ml.predictions_table
    if lh.exists(target):
        last = lh.history(target, limit=1)[0]["custom"]
        if last.get("medallion.model") == f"{name}/{champion}" and last.get(
            "medallion.features_version"
        ) == str(current):
            print(
                f"ml: score skipped: {target} already holds champion v{champion}'s scores of {table} v{current}"
            )
            return
    print(f"ml: scoring {table} with the champion ...", flush=True)
    print_score_result(settings, score_as_step(settings, lh, getattr(args, "run_id", None)))


def score_as_step(settings: Settings, lh: Any, run_id: str | None, **options: Any) -> Any:
    """Score (``options`` as for :func:`pipelines.ml.score.score`) as a step of run ``run_id``: its commit
    carries the run id and the run's event log gets the step's row, as for every table the run builds."""
    from pipelines.events import EventLog
    from pipelines.ml.score import score
    from pipelines.runner import StepResult

    target = settings.ml.predictions_table
    scored: list[Any] = []

    def scoring() -> StepResult:
        res = score(settings, lh, run_id=run_id, **options)
        scored.append(res)
        why = f"champion v{res.model_version} scored {res.features_table} v{res.features_version}"
        return StepResult(
            target, "ok", res.rows_scored, res.rows_scored, res.seconds, res.table_version, "", why
        )

    EventLog(lh, run_id or "", "run").step(target, scoring)
    return scored[0]


def _trained_on(settings: Settings, table: str, version: int | None) -> str | None:
    """The registered model version already trained on ``table`` at ``version``, if any."""
    from mlflow import MlflowClient

    from pipelines.ml import tracking

    info = tracking.configure(settings)
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{info.model_name}'")
    except Exception:  # no such model yet
        return None
    for mv in versions:
        tags = mv.tags or {}
        if tags.get("medallion.features_table") == table and tags.get("medallion.features_version") == str(
            version
        ):
            return str(mv.version)
    return None
