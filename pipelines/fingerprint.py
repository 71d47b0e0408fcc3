"""What a table's build depends on besides its inputs: its transform's code, its declaration and its checks.

Each build records the three hashes in its commit (``medallion.fingerprint``); when one differs from the
current code and configuration, the next ``medallion run`` rebuilds the table (and so everything downstream
of it), and ``medallion plan`` says which part changed.

- **code**: the transform function and, transitively, every function, class and constant of the ``pipelines``
  package it refers to (a module of the package it refers to as a whole counts entirely). Editing
  ``route_daily_stats`` changes that table's code hash only; editing a helper it shares with other tables
  changes theirs too. Comments, blank lines, indentation width and docstrings do not count (the source is
  compared token by token), so reformatting rebuilds nothing.
- **declaration**: what decides the rows: inputs, transform, write mode, keys, partitioning, merge condition
  (for bronze: the source). Descriptions and column comments do not count: they are applied without a rebuild.
- **checks**: the table's data-quality checks (they decide which rows are kept, dropped or quarantined).
- **sensitive**: the sensitive-column treatments of the table and of everything upstream of it, and the id of
  the pseudonymisation key when one pseudonymises (:func:`pipelines.sensitive.fingerprint_part`): a new key
  rebuilds every table that holds pseudonyms, so all of them change together. Empty for bronze (it keeps what
  landed) and for tables with no sensitive column upstream.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import io
import json
import linecache
import tokenize
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pipelines.config import TableConf

PACKAGE = "pipelines"
KEY = "medallion.fingerprint"
# A bronze table's rows are made by the shared bronze transformation.
BRONZE_CODE = "pipelines.bronze.records:bronze_records"
_CONSTANTS = (int, float, str, bytes, bool, type(None), tuple, frozenset)


@dataclass(frozen=True)
class Fingerprint:
    code: str
    declaration: str
    checks: str
    sensitive: str = ""

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @staticmethod
    def from_json(raw: Any) -> Fingerprint | None:
        try:
            data = json.loads(raw) if isinstance(raw, str) else dict(raw)
            return Fingerprint(
                str(data["code"]), str(data["declaration"]), str(data["checks"]), str(data.get("sensitive", ""))
            )
        except (TypeError, ValueError, KeyError):
            return None

    def changes(self, before: Fingerprint | None) -> list[str]:
        """What differs from ``before`` (a recorded fingerprint), in words; [] when nothing does."""
        if before is None:
            return ["no fingerprint recorded by its last build"]
        labels = (
            ("code", "transform changed"),
            ("declaration", "declaration changed"),
            ("checks", "checks changed"),
            ("sensitive", "sensitive columns' treatment or pseudonymisation key changed"),
        )
        return [label for part, label in labels if getattr(self, part) != getattr(before, part)]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def normalised_source(source: str) -> str:
    """The tokens of ``source`` without comments, blank lines and docstrings, one space apart."""
    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER)
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source
    out: list[str] = []
    skip = 0
    for i, tok in enumerate(tokens):
        if skip:
            skip -= 1
            continue
        block_start = i == 0 or tokens[i - 1].type == tokenize.INDENT
        alone = i + 1 < len(tokens) and tokens[i + 1].type == tokenize.NEWLINE
        if tok.type == tokenize.STRING and block_start and alone:
            skip = (
                1  # a docstring (a string alone as the first statement of a module or block) and its NEWLINE
            )
            continue
        if tok.type == tokenize.INDENT:
            out.append("<indent>")
        elif tok.type == tokenize.DEDENT:
            out.append("<dedent>")
        elif tok.type == tokenize.NEWLINE:
            out.append("\n")
        else:
            out.append(tok.string)
    return " ".join(out)


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _in_package(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    return module == PACKAGE or str(module).startswith(PACKAGE + ".")


def _source(obj: Any) -> str:
    filename = inspect.getsourcefile(obj)
    if filename:
        linecache.checkcache(filename)  # an edited file is read again
    try:
        return normalised_source(inspect.getsource(obj))
    except (OSError, TypeError):
        return repr(obj)


def code_fingerprint(func: Callable[..., Any]) -> str:
    """Hash of ``func`` and everything of the package it reaches (see the module docstring)."""
    parts: dict[str, str] = {}
    stack: list[Any] = [func]
    while stack:
        obj = stack.pop()
        key = f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', getattr(obj, '__name__', ''))}"
        if key in parts:
            continue
        parts[key] = _source(obj)
        if inspect.isclass(obj) or inspect.ismodule(obj):
            continue
        code = getattr(obj, "__code__", None)
        if code is None:
            continue
        namespace = getattr(obj, "__globals__", {})
        for name in sorted(set(_code_names(code))):
            if name not in namespace:
                continue
            value = namespace[name]
            if inspect.isfunction(value) or inspect.isclass(value) or inspect.ismodule(value):
                if _in_package(value):
                    stack.append(value)
            elif isinstance(value, _CONSTANTS) or (isinstance(value, dict) and len(value) < 1000):
                parts[f"{obj.__module__}:{name}="] = repr(value)
    return _digest(json.dumps(parts, sort_keys=True))


def load_transform(path: str) -> Callable[..., Any]:
    """``module:function`` -> the function (ImportError/AttributeError propagate)."""
    module_name, _, func = path.partition(":")
    return getattr(importlib.import_module(module_name), func)  # type: ignore[no-any-return]


def declaration_fingerprint(conf: TableConf, source: Any = None) -> str:
    source_decl: Any = conf.source
    if source is not None:
        # What bronze stores does not depend on the sensitive treatments (they apply when rows leave it).
        source_decl = {
            f.name: getattr(source, f.name)
            for f in dataclasses.fields(source)
            if f.name not in ("description", "sensitive")
        }
    decl = {
        "inputs": list(conf.inputs),
        "transform": conf.transform,
        "write": dataclasses.asdict(conf.write),
        "source": source_decl,
    }
    return _digest(json.dumps(decl, sort_keys=True, default=list))


def checks_fingerprint(conf: TableConf) -> str:
    checks = [
        {k: v for k, v in dataclasses.asdict(c).items() if k != "description"} for c in conf.expectations
    ]
    return _digest(json.dumps(checks, sort_keys=True, default=list))


def fingerprint(conf: TableConf, source: Any = None, sensitive: str = "") -> Fingerprint:
    """The current fingerprint of a table (``source``: the SourceConf of a bronze table; ``sensitive``: what
    :func:`pipelines.sensitive.fingerprint_part` gives for it)."""
    path = conf.transform or BRONZE_CODE
    return Fingerprint(
        code_fingerprint(load_transform(path)),
        declaration_fingerprint(conf, source),
        checks_fingerprint(conf),
        _digest(sensitive) if sensitive else "",
    )
