"""Sensitive columns: declared once, treated before their values leave bronze.

A source (``conf/sources.yml``) or a table (``conf/tables/*.yml``) declares a column ``sensitive`` with a
treatment (:class:`pipelines.config.SensitiveConf`):

- ``pseudonymise``: ``PS`` + 24 hex digits (upper case) of HMAC-SHA256(key, domain + value), the value trimmed as
  silver trims landed text; missing-value markers (``NA``, empty, ...) stay as they are, so silver still reads
  them as null, and upper-casing or trimming a pseudonym leaves it unchanged. The same value gets the same
  pseudonym on every run and in every table of its domain (default: the column's name), so joins on it still
  work; without the key nobody can tell which value a pseudonym stands for, nor compute one (a dictionary of
  the few thousand tail numbers is useless without the key). Null stays null.
- ``mask``: of the trimmed value, ``keep_first`` and ``keep_last`` characters are kept, every other one becomes
  ``*`` (the length is kept; a value no longer than both is all ``*``; missing-value markers stay).
- ``drop``: the column is removed.
- ``keep``: left as it is, with the declared ``reason``.

**Where**: bronze keeps the landed value (it is the record of what arrived) and is the only table that does.
Every read of a bronze table by something else goes through :func:`protect`: the runner's inputs of silver
transforms (so silver, gold, quarantine rows, DQ details, features and the model's input example only ever see
the treated value), ``medallion sql`` and the docs' and DQ report's profiles of bronze, ``medallion audit``.
A line bronze could not parse (``_corrupt_record``) may hold any value of its source: of a source with
sensitive columns it leaves bronze as its length only (quarantine says the line was withheld; bronze has it).
A later table's own declarations are applied to its transform's output, before its checks and its write.

**The key** never comes from the repository or the configuration files (:func:`load_key`): locally the
environment variable ``MEDALLION_PSEUDONYM_KEY`` (``pseudonym_key.env``), or ``MEDALLION_PSEUDONYM_KEY_FILE`` (a
file holding it), else the key file ``medallion setup`` creates once (``~/.config/medallion/pseudonym.key``, mode
0600); on Databricks the secret ``pseudonym_key.secret`` of the secret scope ``pseudonym_key.secret_scope`` (the
bundle's ``secret_scopes`` resource; the jobs pass ``--secret-scope``). The local job run stands a folder in for
the secret scopes (``MEDALLION_SECRETS/<scope>/<secret>``). A missing or short key is a
:class:`~pipelines.errors.PseudonymKeyError` naming where it was looked for.

**Key changes**: every table downstream of a pseudonymised column records the key's id (an HMAC of a fixed
text, never the key) in its fingerprint; with another key the next run rebuilds those tables, so every
pseudonym changes at once and joins stay consistent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import SensitiveConf, Settings
from pipelines.errors import PseudonymKeyError
from pipelines.silver.common import MISSING_TEXT  # "no value" as silver reads it: never treated

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

PREFIX = "PS"
DIGITS = 24
MIN_KEY_LENGTH = 32
KEY_FILE_NAME = "pseudonym.key"


# ---- the key --------------------------------------------------------------------------------------------


def default_key_file() -> Path:
    """Where ``medallion setup`` keeps this machine's key (``$XDG_CONFIG_HOME`` or ~/.config, /medallion)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "medallion" / KEY_FILE_NAME


def create_key_file(path: Path | None = None) -> tuple[Path, bool]:
    """Create a random key at ``path`` (default :func:`default_key_file`), readable by its owner only.
    (path, created): an existing key is never replaced (that would change every pseudonym)."""
    import secrets

    path = path or default_key_file()
    if path.exists():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path, True


def _checked(key: str, where: str) -> bytes:
    key = key.strip()
    if len(key) < MIN_KEY_LENGTH:
        raise PseudonymKeyError(
            f"the pseudonymisation key from {where} has {len(key)} characters; it needs at least "
            f"{MIN_KEY_LENGTH} (e.g. python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return key.encode("utf-8")


def _read_key_file(path: Path, where: str) -> bytes:
    try:
        return _checked(path.read_text(encoding="utf-8"), f"{where} ({path})")
    except OSError as exc:
        raise PseudonymKeyError(
            f"cannot read the pseudonymisation key file {path} ({where}): {exc}"
        ) from None


def _databricks_secret(scope: str, secret: str) -> str:
    from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]  # Databricks runtimes only
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    return str(DBUtils(spark).secrets.get(scope=scope, key=secret))


def load_key(settings: Settings) -> bytes:
    """The pseudonymisation key (see the module docstring for where it is looked for, in order)."""
    from pipelines.session import on_databricks

    conf = settings.pseudonym_key
    env_value = os.environ.get(conf.env)
    file_value = os.environ.get(f"{conf.env}_FILE")
    if conf.secret_scope:
        where = f"secret {conf.secret!r} of the Databricks secret scope {conf.secret_scope!r}"
        local_scopes = os.environ.get("MEDALLION_SECRETS")
        if local_scopes:  # the local job run's stand-in for the workspace's secret scopes
            path = Path(local_scopes) / conf.secret_scope / conf.secret
            if not path.is_file():
                raise PseudonymKeyError(f"no {where}: {path} does not exist (deploy puts it there)")
            return _read_key_file(path, where)
        if on_databricks():
            try:
                value = _databricks_secret(conf.secret_scope, conf.secret)
            except Exception as exc:  # noqa: BLE001 - dbutils raises its own (Py4J) errors
                raise PseudonymKeyError(
                    f"cannot read the pseudonymisation key, the {where}: {str(exc).splitlines()[0][:300]} "
                    f"(an admin puts it there once: databricks secrets put-secret {conf.secret_scope} {conf.secret})"
                ) from None
            return _checked(value, where)
        if not (env_value or file_value):
            raise PseudonymKeyError(
                f"the pseudonymisation key is the {where}, which only a Databricks cluster reads; "
                f"on this machine set {conf.env} (or {conf.env}_FILE) instead"
            )
    if env_value:
        return _checked(env_value, f"the environment variable {conf.env}")
    if file_value:
        return _read_key_file(Path(file_value).expanduser(), f"the environment variable {conf.env}_FILE")
    default = default_key_file()
    if default.is_file():
        return _read_key_file(default, "the key file of `medallion setup`")
    declared = ", ".join(
        f"{table}.{column}" for table, cols in pseudonymised_columns(settings).items() for column in cols
    )
    raise PseudonymKeyError(
        f"the sensitive column(s) {declared} are pseudonymised with a key that was not found: set {conf.env} "
        f"(at least {MIN_KEY_LENGTH} characters) or {conf.env}_FILE, or run `medallion setup` once to create "
        f"this machine's key in {default}"
    )


def key_id(key: bytes) -> str:
    """A short public name of ``key`` (an HMAC of a fixed text): recorded in fingerprints, shown by plan."""
    return hmac.new(key, b"medallion pseudonym key id", hashlib.sha256).hexdigest()[:12]


# ---- declarations ---------------------------------------------------------------------------------------


def declared(settings: Settings, table_name: str) -> dict[str, SensitiveConf]:
    """The sensitive columns of ``table_name``: for a bronze table its source's and its own, else its own."""
    table = settings.tables.get(table_name)
    if table is None:
        return {}
    out: dict[str, SensitiveConf] = {}
    if table.source is not None and table.source in settings.sources:
        out.update(settings.sources[table.source].sensitive)
    out.update(table.sensitive)
    return out


def pseudonymised_columns(settings: Settings) -> dict[str, list[str]]:
    """Table -> its columns declared ``pseudonymise`` (every table that declares one)."""
    out: dict[str, list[str]] = {}
    for name in settings.tables:
        cols = [c for c, conf in declared(settings, name).items() if conf.treatment == "pseudonymise"]
        if cols:
            out[name] = cols
    return out


def upstream_treatments(settings: Settings, name: str) -> dict[str, dict[str, SensitiveConf]]:
    """The sensitive declarations that decide the rows of ``name``: its own, and those of every table it
    reads, transitively (bronze tables' included)."""
    seen: dict[str, dict[str, SensitiveConf]] = {}
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen or current not in settings.tables:
            continue
        seen[current] = declared(settings, current)
        stack.extend(settings.tables[current].inputs)
    return {table: cols for table, cols in seen.items() if cols}


def fingerprint_part(settings: Settings, name: str) -> str:
    """What the sensitive treatments upstream of ``name`` contribute to its fingerprint: the declarations and,
    when one pseudonymises, the key's id (so a new key rebuilds every table that holds pseudonyms)."""
    treatments = upstream_treatments(settings, name)
    if not treatments:
        return ""
    data: dict[str, object] = {
        table: {
            c: [conf.treatment, conf.keep_first, conf.keep_last, conf.domain or c] for c, conf in cols.items()
        }
        for table, cols in sorted(treatments.items())
    }
    if any(conf.treatment == "pseudonymise" for cols in treatments.values() for conf in cols.values()):
        data["key"] = key_id(load_key(settings))
    return json.dumps(data, sort_keys=True)


# ---- treatments -----------------------------------------------------------------------------------------


def pseudonym(key: bytes, domain: str, value: str) -> str:
    """The pseudonym of ``value`` in ``domain`` (the reference the Spark column computes)."""
    text = value.strip()
    if text in MISSING_TEXT:
        return value
    digest = hmac.new(key, domain.encode("utf-8") + b"\x1f" + text.encode("utf-8"), hashlib.sha256)
    return PREFIX + digest.hexdigest()[:DIGITS].upper()


def pseudonymise(column: Column, key: bytes, domain: str) -> Column:
    """``column`` (text) replaced by its pseudonyms, null kept. A vectorised UDF: the key travels in the
    function's closure to the Python workers, never as a literal of the query plan (plans are logged and shown
    in Spark's UI)."""
    import pandas as pd
    from pyspark.sql import functions as F

    def apply(values):  # type: ignore[no-untyped-def]
        cache: dict[str, str] = {}

        def one(value: object) -> object:
            if value is None or (isinstance(value, float) and value != value):
                return None
            text = str(value)
            found = cache.get(text)  # a column holds few distinct values: each is hashed once per batch
            if found is None:
                found = cache[text] = pseudonym(key, domain, text)
            return found

        return values.map(one).astype(object)

    apply.__annotations__ = {"values": pd.Series, "return": pd.Series}  # real types: Spark reads them
    udf = F.pandas_udf(apply, "string")  # type: ignore[call-overload]
    return udf(column.cast("string"))


def mask(column: Column, keep_first: int, keep_last: int) -> Column:
    """``column`` with all but its first ``keep_first`` and last ``keep_last`` characters as ``*``."""
    from pyspark.sql import functions as F

    text = F.trim(column.cast("string"))  # as silver reads landed text
    missing = text.isNull() | text.isin(*MISSING_TEXT)
    length = F.char_length(text)
    hidden = length - F.lit(keep_first + keep_last)
    head = F.substring(text, 1, keep_first) if keep_first else F.lit("")
    tail = F.substring(text, -keep_last, keep_last) if keep_last else F.lit("")
    masked = F.concat(head, F.repeat(F.lit("*"), hidden), tail)
    return F.when(missing, text).when(hidden <= 0, F.repeat(F.lit("*"), length)).otherwise(masked)


def treat(df: DataFrame, columns: Mapping[str, SensitiveConf], settings: Settings) -> DataFrame:
    """``df`` with each of ``columns`` that it has treated as declared (keep: untouched)."""
    present = {c: conf for c, conf in columns.items() if c in df.columns and conf.treatment != "keep"}
    if not present:
        return df
    key = load_key(settings) if any(c.treatment == "pseudonymise" for c in present.values()) else b""
    replaced = {}
    for column, conf in present.items():
        if conf.treatment == "drop":
            continue
        if conf.treatment == "pseudonymise":
            replaced[column] = pseudonymise(df[column], key, conf.domain or column)
        else:
            replaced[column] = mask(df[column], conf.keep_first, conf.keep_last)
    dropped = [c for c, conf in present.items() if conf.treatment == "drop"]
    out = df.withColumns(replaced) if replaced else df
    return out.drop(*dropped) if dropped else out


# Bronze's copy of a line it could not split into columns: it may hold any column's value, sensitive ones too.
CORRUPT_RECORD = "_corrupt_record"


def withheld_line(column: Column) -> Column:
    """A landed line that did not parse, as it may leave bronze: its length only (bronze keeps the line)."""
    from pyspark.sql import functions as F

    return F.when(
        column.isNotNull(),
        F.concat(
            F.lit("[withheld: a line of a source with sensitive columns, "),
            F.char_length(column).cast("string"),
            F.lit(" characters; bronze keeps it]"),
        ),
    )


def protect(settings: Settings, table_name: str, df: DataFrame) -> DataFrame:
    """``df``, a read of ``table_name``, as it may leave that table: a bronze table's sensitive columns
    treated, and its ``_corrupt_record`` (a whole landed line that did not parse, sensitive values and all)
    withheld; any other table as it is (its values were treated before they were written)."""
    table = settings.tables.get(table_name)
    if table is None or not needs_protection(settings, table_name):
        return df
    out = treat(df, declared(settings, table_name), settings)
    if CORRUPT_RECORD in out.columns:
        out = out.withColumn(CORRUPT_RECORD, withheld_line(out[CORRUPT_RECORD]))
    return out


def needs_protection(settings: Settings, table_name: str) -> bool:
    """True when reads of ``table_name`` go through :func:`protect` with something to do."""
    table = settings.tables.get(table_name)
    return bool(
        table is not None
        and table.layer == "bronze"
        and any(conf.treatment != "keep" for conf in declared(settings, table_name).values())
    )
