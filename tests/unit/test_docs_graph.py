"""The docs graph from the declarations alone (no Spark): a box per built table in its layer's column, the
model between the features and the predictions, an arrow per input, dashed arrows for foreign-key checks."""

from __future__ import annotations

import re

import pytest

from pipelines.config import load_settings
from pipelines.docs.graph import COLUMNS, graph_nodes, graph_svg, layout, trend_svg

pytestmark = pytest.mark.fast


def test_graph_has_every_built_table_in_its_layer_column_and_every_input_as_an_arrow() -> None:
    settings = load_settings("local")
    nodes, edges = graph_nodes(settings, "flight_delay")
    placed = {n.name: n for n in layout(nodes, edges)}
    built = [n for n, t in settings.tables.items() if t.built_by_runner]
    assert set(built) | {"model:flight_delay", "gold.flight_delay_predictions"} == set(placed)
    x_of = {column: {node.x for node in placed.values() if node.column == column} for column in COLUMNS}
    assert all(len(xs) == 1 for xs in x_of.values())  # one column per layer ...
    xs = [min(x_of[c]) for c in COLUMNS]
    assert xs == sorted(xs) and len(set(xs)) == len(
        COLUMNS
    )  # ... bronze, silver, gold, ML from left to right
    assert placed["model:flight_delay"].y < placed["gold.flight_delay_predictions"].y
    solid = {(e.source, e.target) for e in edges if not e.dashed}
    assert {(d, n) for n in built for d in settings.tables[n].inputs} <= solid
    assert ("silver.planes", "silver.flights") in {(e.source, e.target) for e in edges if e.dashed}

    svg = graph_svg(settings, "flight_delay")
    assert len(re.findall(r'<a class="node"', svg)) == len(placed)
    assert len(re.findall(r'<path class="edge"', svg)) == len(edges)
    assert "http" not in svg and "<script" not in svg


def test_trend_bars_show_any_failure() -> None:
    svg = trend_svg([("r1", 0, 100), ("r2", 1, 1_000_000), ("r3", 50, 100)])
    heights = [float(h) for h in re.findall(r'height="([0-9.]+)" fill', svg)]
    assert heights[0] < heights[1] < heights[2]  # one failed row in a million is still visible
    assert re.findall(r'fill="(#[0-9a-f]+)"><title>', svg) == ["#1e7e34", "#b02a37", "#b02a37"]
    assert trend_svg([]) == ""
