"""What a ``medallion sql`` statement may contain: read-only queries over the declared tables, nothing else.

The analyst SQL is parsed with sqlglot and regenerated for Spark (see :mod:`pipelines.analyst.sql`); this
module decides, on that parse tree and before Spark sees anything, whether the statement is allowed.
Everything is allow-listed:

- **Statement shapes**: ``SELECT`` (with ``WITH``, joins, subqueries, set operations), ``VALUES``, and
  ``DESCRIBE [EXTENDED|FORMATTED] <table>`` / ``DESCRIBE <query>``. Commands, DDL, DML, ``SET``,
  ``CACHE``, ``SELECT ... INTO`` are refused, wherever they sit.
- **Expression nodes**: operators, literals, casts, functions and the clauses of a query. Anything else sqlglot
  parses (Hive ``TRANSFORM ... USING`` script, which runs a shell command; ``${...}`` parameters, which Spark
  substitutes with configuration and environment values; placeholders; table properties) is refused.
- **Relations**: a declared ``<layer>.<table>``, a CTE, a subquery, ``VALUES``, or one of the generator
  table functions in :data:`TABLE_FUNCTIONS` (``range``, ``explode``, ...). File-path tables
  (``csv.`/path```, ``delta.`/path```), other catalogs and databases, and table functions that read files
  (``read_files``) are not declared tables, so they are refused.
- **Functions**: any Spark function except those in :data:`REFUSED_FUNCTIONS` (reflection: ``java_method``,
  ``reflect``, ``try_reflect``; ``IDENTIFIER()``, which turns a string into a table name at run time;
  functions that read files, secrets or the network).

The analyst session also switches off ``spark.sql.runSQLOnFiles`` and ``spark.sql.variable.substitute``
(:data:`pipelines.session.ANALYST_CONF`), so a file-path table or a ``${env:...}`` that got past this module
would still fail in Spark.
"""

from __future__ import annotations

import re
from typing import Any

from pipelines.errors import QueryNotAllowedError

#: Generator table functions a query may select FROM: they make rows from their arguments, read nothing.
TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "explode",
        "explode_outer",
        "posexplode",
        "posexplode_outer",
        "inline",
        "inline_outer",
        "stack",
        "json_tuple",
        "variant_explode",
        "variant_explode_outer",
    }
)

_REFLECTION = "calls Java methods by reflection"
_READS = "reads files, streams, secrets or the network outside the declared tables"
#: Functions refused anywhere in a statement, with the reason the message gives.
REFUSED_FUNCTIONS: dict[str, str] = {
    "java_method": _REFLECTION,
    "reflect": _REFLECTION,
    "try_reflect": _REFLECTION,
    "identifier": "turns a string into a table or column name at run time, past this check",
    "read_files": _READS,
    "read_kafka": _READS,
    "read_kinesis": _READS,
    "read_pubsub": _READS,
    "read_pulsar": _READS,
    "read_statestore": _READS,
    "read_state_metadata": _READS,
    "cloud_files_state": _READS,
    "event_log": _READS,
    "secret": _READS,
    "try_secret": _READS,
    "list_secrets": _READS,
    "http_request": _READS,
    "from_protobuf": _READS,
    "to_protobuf": _READS,
    "ai_query": _READS,
}

# sqlglot keeps its node classes in modules by kind. Expression-level kinds are allowed as a whole; of the
# query module only the parts of a SELECT; DDL, DML, properties (TRANSFORM ... USING lives there) and
# constraints not at all.
_EXPRESSION_MODULES = frozenset(
    {"core", "aggregate", "functions", "math", "temporal", "array", "string", "json", "datatypes"}
)
_QUERY_NODES = frozenset(
    {
        "Select", "Subquery", "Union", "Intersect", "Except", "With", "CTE", "From", "Join", "Where",
        "Group", "Having", "Order", "Limit", "Offset", "Window", "WindowSpec", "Lateral", "Values", "Table",
        "TableAlias", "TableSample", "Tuple", "Cube", "Rollup", "GroupingSets", "Pivot", "Qualify", "Lambda",
        "Distribute", "Sort", "Cluster", "Version", "HexString", "RawString", "ByteString", "BitString",
        "National", "UnicodeString",
    }
)  # fmt: skip
# Nodes of the expression modules that are statements or that Spark would expand at run time.
_REFUSED_NODES = {
    "Cache": "CACHE changes the session",
    "Uncache": "UNCACHE changes the session",
    "Refresh": "REFRESH changes the session",
    "LockingStatement": "LOCKING is not a query",
    "Parameter": "a ${...} parameter is substituted by Spark with configuration or environment values",
    "SessionParameter": "a @@ session parameter is not a query value",
    "Placeholder": "a placeholder (?, :name) has no value here",
    "DynamicIdentifier": "a dynamic identifier names a table at run time, past this check",
}


# What a table reference may carry besides its name: an alias, joins, LATERAL VIEWs, PIVOTs, TABLESAMPLE and
# time travel (mapped to a versioned read). Not: partitions, formats, file patterns, CHANGES, ...
_TABLE_ARGS = frozenset(
    {"this", "alias", "db", "catalog", "laterals", "joins", "pivots", "version", "sample"}
)


def _hint_nodes() -> tuple[type, ...]:
    from sqlglot import exp

    # The hint itself may parse as a function (COALESCE(2)); deny-listed names are refused like anywhere else.
    return (exp.Func, exp.Identifier, exp.Column, exp.Literal, exp.Table, exp.Var, exp.TableAlias)


def refuse(what: str) -> QueryNotAllowedError:
    return QueryNotAllowedError(
        f"medallion sql runs read-only queries over the declared tables; refused: {what}"
    )


def function_name(node: Any) -> str | None:
    """The lower-case name Spark calls ``node`` by (None when ``node`` is no function call)."""
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        text = node.sql(dialect="spark", comments=False)
        match = re.match(r"\s*`?([A-Za-z_][A-Za-z0-9_]*)`?\s*\(", text)
        names = {n.lower() for n in type(node).sql_names()}
        if match:
            names.add(match.group(1).lower())
        refused = sorted(n for n in names if n in REFUSED_FUNCTIONS)
        return refused[0] if refused else (match.group(1).lower() if match else None)
    return None


def check_statement(tree: Any) -> None:
    """Refuse (QueryNotAllowedError) every statement that is not a read-only query or DESCRIBE."""
    from sqlglot import exp

    if isinstance(tree, exp.Describe):
        kind = str(tree.args.get("kind") or "").upper()
        style = str(tree.args.get("style") or "").upper()
        target = tree.this
        if kind not in ("", "TABLE") or style not in ("", "EXTENDED", "FORMATTED"):
            what = " ".join(w for w in ("DESCRIBE", kind, style) if w)
            hint = "; `medallion history TABLE` lists a table's commits" if style == "HISTORY" else ""
            raise refuse(f"{what} (DESCRIBE [EXTENDED] <table> or DESCRIBE <query> only){hint}")
        if not isinstance(target, exp.Table | exp.Query):
            raise refuse("DESCRIBE of something that is not a table or a query")
        check_nodes(target)
        return
    if not isinstance(tree, exp.Query):
        words = tree.sql(dialect="spark", comments=False).split()
        kind = (
            str(tree.this).upper() if isinstance(tree, exp.Command) else (words[0].upper() if words else "?")
        )
        raise refuse(
            f"{kind} (queries only: SELECT, WITH, VALUES, DESCRIBE; tables are written by the pipeline)"
        )
    check_nodes(tree)


def check_nodes(tree: Any) -> None:
    """Every node of ``tree`` must be allowed (see the module's docstring)."""
    from sqlglot import exp

    for node in tree.walk():
        cls = type(node)
        kind = cls.__module__.rpartition(".")[2]
        name = cls.__name__
        if name in _REFUSED_NODES:
            raise refuse(_REFUSED_NODES[name])
        if isinstance(node, exp.Select) and node.args.get("into") is not None:
            raise refuse("SELECT ... INTO creates a table")
        if name == "QueryTransform":
            raise refuse("TRANSFORM ... USING runs a shell command")
        allowed = (kind in _EXPRESSION_MODULES) or (kind == "query" and name in _QUERY_NODES)
        allowed = allowed or (kind == "query" and name.startswith("JSONPath"))
        if not allowed:
            raise refuse(f"{_describe(node)} is not part of a read-only query")
        func = function_name(node)
        if func in REFUSED_FUNCTIONS:
            raise refuse(f"{func}() {REFUSED_FUNCTIONS[func]}")
        if isinstance(node, exp.Table):
            extra = sorted(k for k, v in node.args.items() if v and k not in _TABLE_ARGS)
            if extra:
                raise refuse(f"{extra[0].upper()} on a table ({_describe(node)})")
            if not isinstance(node.this, exp.Identifier):
                check_relation_function(node)
        if isinstance(node, exp.Lateral) and isinstance(node.this, exp.Func):
            check_relation_function(node)
        if isinstance(node, exp.Hint):
            check_hint(node)


def check_hint(hint: Any) -> None:
    """``/*+ BROADCAST(r) */``, ``/*+ REPARTITION(8, origin) */``: names and numbers only, nothing that could
    be read differently inside a comment."""
    from sqlglot import exp

    allowed = _hint_nodes()
    for sub in hint.walk():
        if isinstance(sub, exp.Identifier) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", sub.name):
            raise refuse(f"the hint name {sub.name!r} (hints take plain names and numbers)")
        if isinstance(sub, exp.Literal) and ("*/" in sub.name or "/*" in sub.name):
            raise refuse("a comment marker inside a hint")
        if not isinstance(sub, allowed) and type(sub).__name__ not in ("Hint", "JoinHint"):
            raise refuse(f"{_describe(sub)} inside a hint (hints take plain names and numbers)")


def check_relation_function(table: Any) -> None:
    """A relation (a FROM item or a LATERAL) that is not a name: only the generator functions of
    :data:`TABLE_FUNCTIONS`."""
    func = function_name(table.this)
    if func is None:
        raise refuse(f"the relation {table.this.sql(dialect='spark', comments=False)[:80]!r}")
    if func not in TABLE_FUNCTIONS:
        raise refuse(
            f"the table function {func}() (allowed in FROM: the declared tables, CTEs, subqueries, VALUES and "
            f"{', '.join(sorted(TABLE_FUNCTIONS))})"
        )


def check_constant(node: Any, what: str) -> None:
    """``node`` (a TIMESTAMP AS OF expression) refers to no column, table or query."""
    from sqlglot import exp

    check_nodes(node)
    for sub in node.walk():
        if isinstance(sub, exp.Column | exp.Query | exp.Table | exp.Star):
            raise QueryNotAllowedError(f"{what} must be a constant (a timestamp literal or expression)")


def _describe(node: Any) -> str:
    text = " ".join(node.sql(dialect="spark", comments=False).split())
    label = type(node).__name__.upper()
    return f"{label} ({text[:60]}{'...' if len(text) > 60 else ''})" if text else label
