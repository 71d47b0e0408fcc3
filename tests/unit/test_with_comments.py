"""Declared column comments are put on a DataFrame in one projection (``with_comments``)."""

from __future__ import annotations

import pytest

from pipelines.lakehouse.base import with_comments

pytestmark = pytest.mark.fast


def test_comments_land_on_the_named_columns_and_nothing_else_changes(spark) -> None:
    df = spark.createDataFrame([(1, "x", 2.5)], "id long, `odd.name` string, `we``ird` double")
    df = df.withMetadata("id", {"comment": "old", "other": 1})
    out = with_comments(df, {"odd.name": "a dotted name", "we`ird": "a backtick", "absent": "ignored"})

    assert out.columns == df.columns  # same columns, same order
    assert [tuple(r) for r in out.collect()] == [(1, "x", 2.5)]
    meta = {f.name: f.metadata for f in out.schema.fields}
    assert meta["odd.name"] == {"comment": "a dotted name"}
    assert meta["we`ird"] == {"comment": "a backtick"}
    assert meta["id"] == {"comment": "old", "other": 1}  # not declared: left as it was
    # Declared again: the declared comment replaces the column's metadata, as withMetadata did.
    again = with_comments(out, {"id": "the key"})
    assert again.schema["id"].metadata == {"comment": "the key"}
    assert with_comments(df, {}) is df and with_comments(df, {"absent": "x"}) is df
