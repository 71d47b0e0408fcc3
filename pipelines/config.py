"""Configuration as data: ``conf/*.yml`` -> frozen dataclasses.

Files are read in this order and deep-merged (later wins): ``base.yml``, ``sources.yml``,
``tables/*.yml`` (sorted), then ``<env>.yml``. Every file is checked on its own first, so an unknown key
is reported with the file it sits in, its dotted path and the keys allowed there.

A few environment variables override paths (never secrets, which do not belong in these files):

- ``MEDALLION_ENV``        environment name when ``--env`` is not given (default ``local``)
- ``MEDALLION_CONF_DIR``   folder holding the YAML files (default: ``conf/`` of the checkout, else the packaged copy)
- ``MEDALLION_HOME``       base folder for relative local paths (default ``paths.home`` from conf)
- ``MEDALLION_LAKEHOUSE``  / ``MEDALLION_LANDING`` / ``MEDALLION_STATE``  override single paths
- ``MEDALLION_CATALOG``    Unity Catalog catalog (overrides ``storage.catalog``; the jobs' ``--catalog``)
- ``MEDALLION_ENGINE``     force the storage engine (``auto``, ``native``, ``offline``)
- ``MEDALLION_SCHEMA_BRONZE`` / ``_SILVER`` / ``_GOLD``  schema of a layer (overrides ``storage.schemas``;
  the jobs' ``--bronze-schema`` etc., so that bundle variables name the Unity Catalog schemas)
- ``MEDALLION_MODEL_NAME`` / ``MEDALLION_EXPERIMENT``  ``ml.model_name`` / ``ml.experiment`` (the jobs'
  ``--model-name`` / ``--experiment``: the bundle's registered model and experiment)
- ``MEDALLION_TRACKING_URI`` / ``MEDALLION_REGISTRY_URI``  ``ml.tracking_uri`` / ``ml.registry_uri`` (a platform
  setting: the local job run points them at its MLflow server)
- ``MEDALLION_SECRET_SCOPE``  the Databricks secret scope holding the pseudonymisation key (overrides
  ``pseudonym_key.secret_scope``; the jobs' ``--secret-scope``). The key itself never comes from these files:
  see :mod:`pipelines.sensitive`.
- ``MEDALLION_VOLUMES``    where ``/Volumes`` is on this machine: a path ``/Volumes/<c>/<s>/<v>/...`` in conf or
  arguments becomes ``$MEDALLION_VOLUMES/<c>/<s>/<v>/...`` (unset: ``/Volumes`` itself, as on Databricks)

Catalog, schema and table names (from the files or these variables) must be identifiers
(:data:`IDENTIFIER`): they become folder names and ``catalog.schema.table`` names, so a ``/``, ``..``, dot or
backtick would point outside the lakehouse or at another catalog object.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from pipelines.errors import ConfigError, InvalidPipelineError

LAYERS = ("bronze", "silver", "gold")
ENGINES = ("auto", "native", "offline")
WRITE_MODES = ("append", "overwrite", "merge")
SOURCE_FORMATS = ("csv", "jsonl")
REDELIVERY_POLICIES = ("reingest", "skip", "fail")
BAD_FILE_POLICIES = ("reject", "fail")
SCHEMA_EVOLUTION_POLICIES = ("rescue", "add_columns", "fail")
# How bronze takes landed files: manifest (pipelines/lakehouse/ingest.py, runs anywhere) or autoloader
# (pipelines/lakehouse/autoloader.py, Databricks Auto Loader ``cloudFiles``; needs a Databricks runtime).
INGEST_MODES = ("manifest", "autoloader")
BACKFILL_GRAINS = ("day", "month")
# What happens to a column declared sensitive before it leaves bronze (pipelines/sensitive.py).
SENSITIVE_TREATMENTS = ("pseudonymise", "mask", "drop", "keep")
#: A catalog, schema or table name: letters, digits and underscores, not starting with a digit (what Unity
#: Catalog and Spark take unquoted, and a plain folder name).
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


def identifier_problem(value: object, what: str) -> str | None:
    """Why ``value`` cannot be the name ``what`` (None: it can)."""
    if isinstance(value, str) and IDENTIFIER.fullmatch(value):
        return None
    return (
        f"{what} is {value!r}: a name must be letters, digits and underscores, not starting with a digit "
        "(no '/', '.', '..', backticks or spaces)"
    )


@dataclass(frozen=True)
class SparkConf:
    """How a local session is built (ignored on Databricks, where the cluster owns these)."""

    master: str = "local[*]"
    app_name: str = "medallion"
    shuffle_partitions: int = 4
    timezone: str = "UTC"
    driver_memory: str = "2g"
    ui: bool = False
    conf: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OfflineConf:
    """Limits of the offline (delta-rs) engine."""

    # deltalake's MERGE takes its source as Arrow on the driver: bigger sources are refused.
    merge_max_source_rows: int = 5_000_000
    # Rows per parquet file when Spark writes (0 = Spark's default: one file per task).
    max_rows_per_file: int = 0


@dataclass(frozen=True)
class StorageConf:
    """Where tables live and which Delta engine writes them."""

    engine: str = "auto"
    # path: <paths.lakehouse>/<layer>/<table>;  catalog: <catalog>.<schema>.<table> (Unity Catalog).
    naming: str = "path"
    catalog: str | None = None
    schemas: Mapping[str, str] = field(default_factory=lambda: {layer: layer for layer in LAYERS})
    # A folder of Delta jars for the native engine on a local machine (also MEDALLION_DELTA_JARS).
    delta_jars: str | None = None
    offline: OfflineConf = field(default_factory=OfflineConf)
    # Bronze ingestion of landed files: one of INGEST_MODES.
    ingest: str = "manifest"


@dataclass(frozen=True)
class PathsConf:
    """Local folders. Relative paths are resolved against ``home``, itself relative to the working directory."""

    home: str = ".medallion"
    lakehouse: str = "lakehouse"
    landing: str = "landing"
    state: str = "state"


@dataclass(frozen=True)
class SensitiveConf:
    """A sensitive column and its treatment, applied before its values leave bronze (pipelines/sensitive.py):
    ``pseudonymise`` (a keyed hash, the same for the same value in the same ``domain`` on every run, so joins
    still work), ``mask`` (keep ``keep_first`` and ``keep_last`` characters, ``*`` for the others), ``drop``, or
    ``keep`` (left as it is; ``reason`` says why, and is required)."""

    treatment: str
    reason: str = ""
    keep_first: int = 0
    keep_last: int = 0
    # pseudonymise: values of one domain share pseudonyms (default: the column's name, so flights.tailnum and
    # planes.tailnum join); two domains never do.
    domain: str | None = None


@dataclass(frozen=True)
class PseudonymKeyConf:
    """Where the pseudonymisation key is found: never in these files. Locally the environment variable ``env``
    (or ``<env>_FILE``, a file holding it; else the key ``medallion setup`` made in ~/.config/medallion); on
    Databricks the secret ``secret`` of the secret scope ``secret_scope`` (the bundle declares the scope)."""

    env: str = "MEDALLION_PSEUDONYM_KEY"
    secret_scope: str | None = None
    secret: str = "pseudonym-key"


@dataclass(frozen=True)
class SourceConf:
    """A source system's drop into the landing folder."""

    format: str
    pattern: str
    columns: tuple[str, ...]
    description: str = ""
    # What to do when a file arrives again under a name already ingested, with other size or mtime.
    redelivery: str = "reingest"
    # A file that cannot be ingested (unreadable, not UTF-8, a header naming none of the columns, ...):
    # reject it alone (recorded in bronze.rejected_files, left in landing, the run says so) or fail the run.
    on_bad_file: str = "reject"
    # Columns a file has that the source does not declare: rescue them into _rescued_data (JSON), add them
    # to the bronze table, or reject the file (on_bad_file decides what a rejection does).
    schema_evolution: str = "rescue"
    # Columns that must not leave bronze as landed, each with its treatment (SensitiveConf).
    sensitive: Mapping[str, SensitiveConf] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteConf:
    mode: str = "append"
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    # merge only: a matched row is updated only where this holds (aliases t = target, s = source),
    # e.g. "s._row_hash <> t._row_hash" so that an unchanged re-delivery rewrites nothing.
    update_condition: str | None = None


@dataclass(frozen=True)
class ExpectationConf:
    """One data-quality check of a table (see pipelines/dq/spec.py for the types and their keys)."""

    name: str
    type: str
    action: str = "warn"
    description: str = ""
    column: str | None = None
    columns: tuple[str, ...] = ()
    min: Any = None
    max: Any = None
    values: tuple[Any, ...] = ()
    pattern: str | None = None
    expr: str | None = None
    ref_table: str | None = None
    ref_column: str | None = None
    max_change_pct: Any = None
    max_age_hours: Any = None


@dataclass(frozen=True)
class BackfillConf:
    """How ``medallion backfill --from --to`` replays a date range of a table (one replaceWhere commit).

    ``column``: the table's date column the range applies to; ``grain``: ``day`` (a row per date) or ``month``
    (a row per month, dated by its first day: a range replaces every month it overlaps)."""

    column: str
    grain: str = "day"


@dataclass(frozen=True)
class TableConf:
    """One table, declared once: the runner, the jobs and the docs all read this."""

    layer: str
    description: str
    # Bronze tables ingest a landing source; later layers name their input tables and a transformation.
    source: str | None = None
    inputs: tuple[str, ...] = ()
    transform: str | None = None
    write: WriteConf = field(default_factory=WriteConf)
    columns: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    # Data-quality checks, run on every batch before it is written (pipelines/dq).
    # The landed columns that identify a record of this (silver) table, as silver types them: how
    # `medallion audit` follows a bronze row downstream. Default: write.keys.
    landed_key: tuple[str, ...] = ()
    expectations: tuple[ExpectationConf, ...] = ()
    # A date range of the table can be rebuilt alone (``medallion backfill``); unset: it cannot.
    backfill: BackfillConf | None = None
    # Sensitive columns of this table (SensitiveConf). A bronze table adds them to its source's; a later
    # table's are treated in its transform's output, before its checks and its write.
    sensitive: Mapping[str, SensitiveConf] = field(default_factory=dict)
    # Set for the tables the pipeline writes about itself rather than builds with a transform: which part
    # writes it (one of pipelines.system.ROLES: dq_results, ingest_manifest, predictions, pipeline_events,
    # quarantine). ``medallion run`` never builds them; tables, history, sql, maintain and docs serve them.
    system: str | None = None
    # The YAML file that declares the table (filled in by the loader, for error messages).
    declared_in: str = ""

    @property
    def built_by_runner(self) -> bool:
        return self.system is None


@dataclass(frozen=True)
class QuarantineConf:
    """The declaration every quarantine table shares: ``<table>_quarantine`` exists for each table with a
    ``quarantine`` check, in that table's layer. ``{table}`` in the description names the guarded table."""

    description: str = "Rows of {table} that failed a quarantine check, with the checks they failed"
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MLModelConf:
    """The estimator: ``hist_gradient_boosting`` or ``logistic_regression`` (scikit-learn), and its parameters."""

    kind: str = "hist_gradient_boosting"
    params: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MLSearchConf:
    """``medallion train --search``: a grid (every combination, at most max_runs) or a random draw of max_runs."""

    strategy: str = "grid"
    max_runs: int = 4
    grid: Mapping[str, tuple[float, ...]] = field(
        default_factory=lambda: {"learning_rate": (0.05, 0.15), "max_leaf_nodes": (15.0, 31.0)}
    )


@dataclass(frozen=True)
class MLConf:
    """Training, registry and scoring of the flight-delay model (see pipelines/ml)."""

    features_table: str = "gold.flight_features"
    predictions_table: str = "gold.flight_delay_predictions"
    dq_table: str = "gold.dq_results"
    key: str = "flight_id"
    time_column: str = "flight_date"
    label: str = "label"
    categorical_features: tuple[str, ...] = ("carrier", "origin", "dest")
    numeric_features: tuple[str, ...] = (
        "distance", "sched_hour", "day_of_week", "month", "plane_age", "temp", "wind_speed", "precip",
        "visib", "route_delay_rate_7d", "route_delay_rate_30d", "carrier_delay_rate_7d",
        "carrier_delay_rate_30d",
    )  # fmt: skip
    # Train on at most this many rows (a deterministic hash sample of the table), validate on the latest months.
    sample_max_rows: int = 500_000
    validation_months: int = 1
    seed: int = 42
    # OpenMP threads of scikit-learn on the driver (0: all cores). One thread is the robust choice on a shared
    # 2-core machine: contended OpenMP threads spin (200 boosting rounds: 0.6 s on 1 thread, 5-15 s on 2).
    threads: int = 1
    # Probability above which a flight is predicted late; unset: the F1-optimal threshold on validation.
    threshold: float | None = None
    model: MLModelConf = field(default_factory=MLModelConf)
    search: MLSearchConf = field(default_factory=MLSearchConf)
    # Promotion: the challenger becomes champion when its metric beats the champion's by at least the margin,
    # both measured on the challenger's validation data.
    promotion_metric: str = "roc_auc"
    promotion_margin: float = 0.002
    # MLflow. Unset tracking/registry: a SQLite file under paths.state (mlflow/mlflow.db), artifacts beside it.
    tracking_uri: str | None = None
    registry_uri: str | None = None
    artifact_location: str | None = None
    experiment: str = "medallion-flight-delay"
    model_name: str = "flight_delay"


@dataclass(frozen=True)
class Settings:
    env: str = ""
    conf_dir: str = ""
    project: str = "medallion"
    spark: SparkConf = field(default_factory=SparkConf)
    storage: StorageConf = field(default_factory=StorageConf)
    paths: PathsConf = field(default_factory=PathsConf)
    sources: Mapping[str, SourceConf] = field(default_factory=dict)
    tables: Mapping[str, TableConf] = field(default_factory=dict)
    quarantine: QuarantineConf = field(default_factory=QuarantineConf)
    ml: MLConf = field(default_factory=MLConf)
    pseudonym_key: PseudonymKeyConf = field(default_factory=PseudonymKeyConf)

    # ---- resolved paths -------------------------------------------------------------------------
    def _resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path(self.paths.home).expanduser() / path
        return path.absolute()

    @property
    def lakehouse_dir(self) -> Path:
        return self._resolve(self.paths.lakehouse)

    @property
    def landing_dir(self) -> Path:
        return self._resolve(self.paths.landing)

    @property
    def state_dir(self) -> Path:
        return self._resolve(self.paths.state)

    def table(self, name: str) -> TableConf:
        try:
            return self.tables[name]
        except KeyError:
            from difflib import get_close_matches

            close = get_close_matches(name, list(self.tables), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"unknown table {name!r}: it is declared in no file of {self.conf_dir}/tables.{hint}"
            ) from None

    def system_table(self, role: str) -> str:
        """The declared name of the system table written by ``role`` (``dq_results``, ``pipeline_events``, ...)."""
        for name, table in self.tables.items():
            if table.system == role:
                return name
        raise ConfigError(
            f"no table of {self.conf_dir}/tables declares `system: {role}`; declare it (see conf/tables/system.yml)"
        )


# ---- loading ----------------------------------------------------------------------------------------


def default_conf_dir() -> Path:
    override = os.environ.get("MEDALLION_CONF_DIR")
    if override:
        return Path(override)
    checkout = Path(__file__).resolve().parent.parent / "conf"
    if (checkout / "base.yml").is_file():
        return checkout
    return Path(__file__).resolve().parent / "conf"  # the copy packaged in the wheel


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, found {type(data).__name__}")
    return data


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _convert(tp: Any, value: Any, where: str, source: str) -> Any:
    """Turn YAML data into ``tp``, rejecting unknown keys and wrong types with a precise message."""
    if tp is Any:
        if isinstance(value, Mapping | list):
            raise ConfigError(f"{source}: {where} must be a single value, found {value!r}")
        return value
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: {where} must not be empty")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {where} must be a mapping, found {value!r}")
        hints = get_type_hints(tp)
        names = _allowed_keys(tp)
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ConfigError(
                f"{source}: unknown key {where + '.' if where else ''}{unknown[0]}; "
                f"allowed keys there: {', '.join(names)}"
            )
        kwargs = {}
        for name in names:
            if name in value:
                kwargs[name] = _convert(
                    hints[name], value[name], f"{where}.{name}" if where else name, source
                )
        try:
            return tp(**kwargs)  # type: ignore[operator]
        except TypeError as exc:
            missing = [
                f.name
                for f in dataclasses.fields(tp)
                if f.init
                and f.name not in kwargs
                and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING
            ]
            raise ConfigError(f"{source}: {where} is missing required key(s): {', '.join(missing)}") from exc
    origin = get_origin(tp)
    if origin in (Mapping, dict, typing.Mapping):
        key_tp, val_tp = get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {where} must be a mapping, found {value!r}")
        return types.MappingProxyType(
            {str(k): _convert(val_tp, v, f"{where}.{k}", source) for k, v in value.items()}
        )
    if origin is tuple:
        (item_tp, _ellipsis) = get_args(tp)
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: {where} must be a list, found {value!r}")
        return tuple(_convert(item_tp, v, f"{where}[{i}]", source) for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {where} must be true or false, found {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {where} must be a whole number, found {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: {where} must be a number, found {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, Mapping | list):
            raise ConfigError(f"{source}: {where} must be a text value, found {value!r}")
        return str(value)
    raise ConfigError(f"{source}: {where}: unsupported type {tp}")  # pragma: no cover


def _allowed_keys(tp: Any) -> list[str]:
    return [
        f.name for f in dataclasses.fields(tp) if f.init and f.name not in ("env", "conf_dir", "declared_in")
    ]


def _check_keys(tp: Any, value: Any, where: str, source: str) -> None:
    """Reject unknown keys in one file (values and required keys are checked after merging)."""
    tp, _ = _unwrap_optional(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        names = _allowed_keys(tp)
        hints = get_type_hints(tp)
        for key, sub in value.items():
            if key not in names:
                raise ConfigError(
                    f"{source}: unknown key {where + '.' if where else ''}{key}; "
                    f"allowed keys there: {', '.join(names)}"
                )
            _check_keys(hints[key], sub, f"{where}.{key}" if where else str(key), source)
    elif get_origin(tp) in (Mapping, dict, typing.Mapping) and isinstance(value, Mapping):
        _key_tp, val_tp = get_args(tp)
        for key, sub in value.items():
            _check_keys(val_tp, sub, f"{where}.{key}", source)
    elif get_origin(tp) is tuple and isinstance(value, list):
        item_tp = get_args(tp)[0]
        for i, sub in enumerate(value):
            label = sub.get("name", i) if isinstance(sub, Mapping) else i
            _check_keys(item_tp, sub, f"{where}[{label}]", source)


def _validate(settings: Settings) -> None:
    src = f"{settings.conf_dir} (env {settings.env})"
    if settings.storage.engine not in ENGINES:
        raise ConfigError(
            f"{src}: storage.engine is {settings.storage.engine!r}; allowed: {', '.join(ENGINES)}"
        )
    if settings.storage.ingest not in INGEST_MODES:
        raise ConfigError(
            f"{src}: storage.ingest is {settings.storage.ingest!r}; allowed: {', '.join(INGEST_MODES)}"
        )
    if settings.storage.naming not in ("path", "catalog"):
        raise ConfigError(f"{src}: storage.naming is {settings.storage.naming!r}; allowed: path, catalog")
    if settings.storage.naming == "catalog" and not settings.storage.catalog:
        raise ConfigError(f"{src}: storage.naming is 'catalog' but storage.catalog is not set")
    missing_layers = [layer for layer in LAYERS if layer not in settings.storage.schemas]
    if missing_layers:
        raise ConfigError(f"{src}: storage.schemas lacks the layer(s) {', '.join(missing_layers)}")
    names = [(v, f"storage.schemas.{k}") for k, v in settings.storage.schemas.items()]
    if settings.storage.catalog is not None:
        names.append((settings.storage.catalog, "storage.catalog"))
    for value, what in names:
        problem = identifier_problem(value, what)
        if problem:
            raise ConfigError(f"{src}: {problem}")
    for name, source in settings.sources.items():
        if source.format not in SOURCE_FORMATS:
            raise ConfigError(
                f"{src}: sources.{name}.format is {source.format!r}; allowed: {', '.join(SOURCE_FORMATS)}"
            )
        if source.redelivery not in REDELIVERY_POLICIES:
            raise ConfigError(
                f"{src}: sources.{name}.redelivery is {source.redelivery!r}; "
                f"allowed: {', '.join(REDELIVERY_POLICIES)}"
            )
        for key, value, allowed in (
            ("on_bad_file", source.on_bad_file, BAD_FILE_POLICIES),
            ("schema_evolution", source.schema_evolution, SCHEMA_EVOLUTION_POLICIES),
        ):
            if value not in allowed:
                raise ConfigError(f"{src}: sources.{name}.{key} is {value!r}; allowed: {', '.join(allowed)}")
        if not source.columns:
            raise ConfigError(f"{src}: sources.{name}.columns must list the columns the source delivers")
        for column, conf in source.sensitive.items():
            problem = sensitive_problem(conf, f"sources.{name}.sensitive.{column}")
            if not problem and column not in source.columns:
                problem = (
                    f"sources.{name}.sensitive names {column!r}, which is not one of the source's columns "
                    f"({', '.join(source.columns)})"
                )
            if problem:
                raise ConfigError(f"{src}: {problem}")
    problems = table_problems(settings)
    if problems:
        raise InvalidPipelineError(problems)


def sensitive_problem(conf: SensitiveConf, where: str) -> str | None:
    """What is wrong with one sensitive-column declaration (None: nothing)."""
    if conf.treatment not in SENSITIVE_TREATMENTS:
        return f"{where}.treatment is {conf.treatment!r}; allowed: {', '.join(SENSITIVE_TREATMENTS)}"
    if conf.treatment == "keep" and not conf.reason.strip():
        return f"{where}: treatment keep needs a reason (why the raw value may leave bronze)"
    if conf.keep_first < 0 or conf.keep_last < 0:
        return f"{where}: keep_first and keep_last must be 0 or more"
    if conf.treatment != "mask" and (conf.keep_first or conf.keep_last):
        return f"{where}: keep_first and keep_last belong to treatment mask, not {conf.treatment}"
    if conf.domain is not None and conf.treatment != "pseudonymise":
        return f"{where}: domain belongs to treatment pseudonymise, not {conf.treatment}"
    return None


def table_problems(settings: Settings) -> list[str]:
    """Every mistake in the table declarations at once (names, layers, write modes, inputs, checks, system
    tables); ``medallion plan`` lists them all, loading refuses the configuration with all of them."""
    from pipelines import system
    from pipelines.dq.spec import validate_table_expectations

    src = f"{settings.conf_dir} (env {settings.env})"
    found: list[str] = []
    for name, table in settings.tables.items():
        where = f"{table.declared_in or src}: table {name}"
        layer, _, short = name.partition(".")
        if layer not in LAYERS or not short:
            found.append(f"{where}: a table name is <layer>.<table> with layer one of {', '.join(LAYERS)}")
        elif problem := identifier_problem(short, "its table part"):
            found.append(f"{where}: {problem}")
        elif table.layer != layer:
            found.append(f"{where} declares layer {table.layer!r} but its name says {layer!r}")
        if table.write.mode not in WRITE_MODES:
            found.append(f"{where}: write.mode is {table.write.mode!r}; allowed: {', '.join(WRITE_MODES)}")
        if table.write.mode == "merge" and not table.write.keys:
            found.append(f"{where} is written with merge but declares no write.keys")
        if table.source is not None and table.source not in settings.sources:
            found.append(f"{where}: source {table.source!r} is not declared under sources")
        if table.system is None and table.source is None and table.transform is None:
            found.append(f"{where} needs either a source (bronze) or a transform")
        for dep in table.inputs:
            if dep not in settings.tables:
                found.append(f"{where}: inputs names {dep!r}, which is not declared")
        if table.backfill is not None:
            if table.backfill.grain not in BACKFILL_GRAINS:
                found.append(
                    f"{where}: backfill.grain is {table.backfill.grain!r}; allowed: {', '.join(BACKFILL_GRAINS)}"
                )
            if table.columns and table.backfill.column not in table.columns:
                found.append(f"{where}: backfill.column {table.backfill.column!r} is not a declared column")
        for column, conf in table.sensitive.items():
            problem = sensitive_problem(conf, f"sensitive.{column}")
            if not problem and table.columns and column not in table.columns:
                problem = f"sensitive names {column!r}, which is not a declared column"
            if problem:
                found.append(f"{where}: {problem}")
        try:
            validate_table_expectations(settings, name, table)
        except ConfigError as exc:
            found.append(str(exc))
    return found + system.problems(settings)


def with_quarantine_tables(settings: Settings, declared_in: str = "") -> Settings:
    """``settings`` with the quarantine table of every table that has a quarantine check, declared by the
    ``quarantine:`` template (an explicit declaration of the same name is an error)."""
    from pipelines.system import quarantine_tables

    derived = quarantine_tables(settings, declared_in)
    clash = sorted(set(derived) & set(settings.tables))
    if clash:
        raise ConfigError(
            f"{settings.tables[clash[0]].declared_in}: {clash[0]} is declared by the quarantine: template; "
            "remove its own declaration"
        )
    return dataclasses.replace(settings, tables=types.MappingProxyType({**settings.tables, **derived}))


# Task arguments -> the variables above (the job entry points and the notebooks' widgets share this).
DEPLOYMENT_VARIABLES = {
    "catalog": "MEDALLION_CATALOG",
    "bronze_schema": "MEDALLION_SCHEMA_BRONZE",
    "silver_schema": "MEDALLION_SCHEMA_SILVER",
    "gold_schema": "MEDALLION_SCHEMA_GOLD",
    "home": "MEDALLION_HOME",
    "model_name": "MEDALLION_MODEL_NAME",
    "experiment": "MEDALLION_EXPERIMENT",
    "secret_scope": "MEDALLION_SECRET_SCOPE",
}


def deployment_environment(env: str, **names: str | None) -> dict[str, str]:
    """``MEDALLION_ENV`` and the variables of the deployment's names that are given (keys of
    :data:`DEPLOYMENT_VARIABLES`: catalog, bronze_schema, ..., home, model_name, experiment)."""
    unknown = sorted(set(names) - set(DEPLOYMENT_VARIABLES))
    if unknown:
        raise ConfigError(
            f"unknown deployment name(s) {', '.join(unknown)}; known: {', '.join(DEPLOYMENT_VARIABLES)}"
        )
    out = {"MEDALLION_ENV": env}
    out.update({DEPLOYMENT_VARIABLES[k]: v for k, v in names.items() if v})
    return out


def local_volume_path(value: str) -> str:
    """``value`` with a leading ``/Volumes/`` moved under ``$MEDALLION_VOLUMES`` when that is set."""
    root = os.environ.get("MEDALLION_VOLUMES")
    if root and (value == "/Volumes" or value.startswith("/Volumes/")):
        return str(Path(root) / value.removeprefix("/Volumes").lstrip("/"))
    return value


# Fields of a section -> the environment variable that overrides it (see the module docstring).
PATH_VARIABLES = {
    "home": "MEDALLION_HOME",
    "lakehouse": "MEDALLION_LAKEHOUSE",
    "landing": "MEDALLION_LANDING",
    "state": "MEDALLION_STATE",
}
STORAGE_VARIABLES = {"catalog": "MEDALLION_CATALOG", "engine": "MEDALLION_ENGINE"}
ML_VARIABLES = {
    "model_name": "MEDALLION_MODEL_NAME",
    "experiment": "MEDALLION_EXPERIMENT",
    "tracking_uri": "MEDALLION_TRACKING_URI",
    "registry_uri": "MEDALLION_REGISTRY_URI",
}


def _from_environment(section: Any, variables: Mapping[str, str]) -> Any:
    """``section`` (a frozen dataclass) with each field of ``variables`` whose variable is set replaced by it."""
    values: dict[str, Any] = {key: os.environ[var] for key, var in variables.items() if os.environ.get(var)}
    return dataclasses.replace(section, **values) if values else section


def load_settings(env: str | None = None, conf_dir: str | Path | None = None) -> Settings:
    """Load and validate the configuration for ``env`` (default: ``$MEDALLION_ENV`` or ``local``)."""
    env = env or os.environ.get("MEDALLION_ENV") or "local"
    directory = Path(conf_dir) if conf_dir else default_conf_dir()
    base = directory / "base.yml"
    if not base.is_file():
        raise ConfigError(f"no configuration at {directory}: base.yml is missing (set MEDALLION_CONF_DIR?)")
    env_file = directory / f"{env}.yml"
    if not env_file.is_file():
        known = sorted(p.stem for p in directory.glob("*.yml") if p.stem not in ("base", "sources"))
        raise ConfigError(
            f"unknown environment {env!r}: no {env_file}; known environments: {', '.join(known)}"
        )
    files = [base]
    if (directory / "sources.yml").is_file():
        files.append(directory / "sources.yml")
    files += sorted((directory / "tables").glob("*.yml"))
    files.append(env_file)

    merged: dict[str, Any] = {}
    declared_in: dict[str, str] = {}
    for path in files:
        data = _read_yaml(path)
        # Check this file's keys on its own so that the message names the right file.
        _check_keys(Settings, data, "", str(path))
        for table_name in data.get("tables") or {}:
            declared_in.setdefault(str(table_name), str(path))
        if "quarantine" in data:
            declared_in.setdefault("quarantine:", str(path))
        merged = _deep_merge(merged, data)

    settings = _convert(Settings, merged, "", f"{directory} (env {env})")
    settings = dataclasses.replace(
        settings,
        env=env,
        conf_dir=str(directory),
        tables=types.MappingProxyType(
            {
                name: dataclasses.replace(table, declared_in=declared_in.get(name, ""))
                for name, table in settings.tables.items()
            }
        ),
    )
    settings = with_quarantine_tables(settings, declared_in.get("quarantine:", ""))
    for var in ("MEDALLION_CATALOG", *(f"MEDALLION_SCHEMA_{layer.upper()}" for layer in LAYERS)):
        problem = os.environ.get(var) and identifier_problem(os.environ[var], f"environment variable {var}")
        if problem:
            raise ConfigError(problem)
    paths = _from_environment(settings.paths, PATH_VARIABLES)
    if os.environ.get("MEDALLION_VOLUMES"):
        paths = dataclasses.replace(
            paths, **{f.name: local_volume_path(getattr(paths, f.name)) for f in dataclasses.fields(paths)}
        )
    storage = _from_environment(settings.storage, STORAGE_VARIABLES)
    schemas = {
        layer: os.environ[f"MEDALLION_SCHEMA_{layer.upper()}"]
        for layer in LAYERS
        if os.environ.get(f"MEDALLION_SCHEMA_{layer.upper()}")
    }
    if schemas:
        storage = dataclasses.replace(storage, schemas=types.MappingProxyType({**storage.schemas, **schemas}))
    settings = dataclasses.replace(
        settings,
        paths=paths,
        storage=storage,
        ml=_from_environment(settings.ml, ML_VARIABLES),
        pseudonym_key=_from_environment(settings.pseudonym_key, {"secret_scope": "MEDALLION_SECRET_SCOPE"}),
    )
    _validate(settings)
    return settings
