"""Training data: the gold feature table at a pinned Delta version, a bounded sample, a split by time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.config import MLConf
from pipelines.errors import ModelError, TableNotFoundError, TrainingDataError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.lakehouse import Lakehouse


@dataclass(frozen=True)
class TrainingData:
    table: str
    version: int
    location: str  # the physical table (folder or catalog name) for lineage
    rows_in_table: int
    rows_sampled: int
    train: pd.DataFrame
    validation: pd.DataFrame
    train_months: tuple[str, ...]
    validation_months: tuple[str, ...]


def feature_columns(conf: MLConf) -> list[str]:
    return [*conf.categorical_features, *conf.numeric_features]


def pinned_version(lh: Lakehouse, table: str, version: int | None) -> int:
    """``version`` if given (checked to exist), else the table's latest version."""
    latest = lh.version(table)
    if latest is None:
        raise TableNotFoundError(
            f"{table} does not exist yet: build the gold layer first (medallion run --select gold)"
        )
    if version is None:
        return latest
    if version < 0 or version > latest:
        raise ModelError(f"{table} has no version {version}: its versions are 0..{latest}")
    return version


def load_training_data(lh: Lakehouse, conf: MLConf, version: int) -> TrainingData:
    """Read ``conf.features_table`` as of ``version``, sample at most ``conf.sample_max_rows`` rows (a hash of
    the key, so the same table version always gives the same sample) and split: the latest
    ``conf.validation_months`` months validate, the earlier ones train."""
    from pyspark.sql import functions as F

    table = conf.features_table
    df = lh.read(table, version)
    missing = [
        c for c in (conf.key, conf.time_column, conf.label, *feature_columns(conf)) if c not in df.columns
    ]
    if missing:
        raise ModelError(
            f"{table} v{version} lacks column(s) {', '.join(missing)}: edit ml.*_features in conf/base.yml "
            "to match the gold table"
        )
    total = check_split(df, conf, table, version)
    columns = [conf.key, conf.time_column, conf.label, *feature_columns(conf)]
    df = df.select(*columns)
    if total > conf.sample_max_rows:
        buckets = 1_000_000
        keep = int(buckets * conf.sample_max_rows / total)
        df = df.where(F.pmod(F.xxhash64(F.col(conf.key), F.lit(conf.seed)), F.lit(buckets)) < keep)
    numeric = set(conf.numeric_features)
    df = df.select(
        *[F.col(c).cast("double").alias(c) if c in numeric else F.col(c) for c in df.columns],
        F.date_format(F.col(conf.time_column), "yyyy-MM").alias("_month"),
    )
    pdf = df.toPandas()
    train, validation, train_months, val_months = split_by_month(
        pdf, conf.validation_months, conf.key, conf.label
    )
    ref = lh.ref(table)
    return TrainingData(
        table=table,
        version=version,
        location=ref.location,
        rows_in_table=total,
        rows_sampled=len(pdf),
        train=train,
        validation=validation,
        train_months=train_months,
        validation_months=val_months,
    )


def check_split(df: Any, conf: MLConf, table: str, version: int) -> int:
    """One aggregate over the table version, before any training work: rows per month and positive labels.
    Raises :class:`TrainingDataError` naming the table version when the time split cannot train and judge a
    classifier; returns the row count."""
    from pyspark.sql import functions as F

    per_month = (
        df.groupBy(F.date_format(F.col(conf.time_column), "yyyy-MM").alias("m"))
        .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col(conf.label).cast("long")).alias("pos"))
        .collect()
    )
    total = sum(int(r["n"]) for r in per_month)
    where = f"{table} v{version}"
    if total == 0:
        raise TrainingDataError(f"{where} is empty: nothing to train on")
    months = sorted((r["m"], int(r["n"]), int(r["pos"] or 0)) for r in per_month if r["m"] is not None)
    names = [m for m, _, _ in months]
    if len(months) <= conf.validation_months:
        raise TrainingDataError(
            f"{where} spans {len(months)} month(s) ({', '.join(names) or 'none'}); the time split needs more "
            f"than ml.validation_months={conf.validation_months}: land more months, then train"
        )
    split = len(months) - conf.validation_months
    for part, chosen in (("training", months[:split]), ("validation", months[split:])):
        rows, positives = sum(n for _, n, _ in chosen), sum(p for _, _, p in chosen)
        if positives in (0, rows):
            raise TrainingDataError(
                f"{where}: the {part} months ({chosen[0][0]}..{chosen[-1][0]}) hold only one label value "
                f"({rows:,} rows, {positives:,} positive): cannot train or judge a classifier"
            )
    return total


def split_by_month(
    pdf: pd.DataFrame, validation_months: int, key: str, label: str
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...], tuple[str, ...]]:
    """Rows of the latest ``validation_months`` months (column ``_month``, 'yyyy-MM') validate, earlier ones train.
    Sorted by month and key, so the result does not depend on the order rows arrived in."""
    months = sorted(pdf["_month"].dropna().unique())
    if len(months) <= validation_months:
        raise ModelError(
            f"the features span {len(months)} month(s) ({', '.join(months) or 'none'}); a time split needs more "
            f"than ml.validation_months={validation_months}"
        )
    val_months = tuple(months[-validation_months:])
    pdf = pdf.sort_values(["_month", key], kind="stable")
    is_val = pdf["_month"].isin(val_months)
    train = pdf[~is_val].drop(columns="_month").reset_index(drop=True)
    validation = pdf[is_val].drop(columns="_month").reset_index(drop=True)
    for name, part in (("training", train), ("validation", validation)):
        if part[label].nunique() < 2:
            raise ModelError(
                f"the {name} months hold only one label value: cannot train or evaluate a classifier"
            )
    return train, validation, tuple(months[:-validation_months]), val_months


def x_y(part: pd.DataFrame, conf: MLConf) -> tuple[pd.DataFrame, Any]:
    return part[feature_columns(conf)], part[conf.label].astype(int)
