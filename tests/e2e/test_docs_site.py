"""``medallion docs`` on the session's full run, rendered in headless Chromium from disk (file://): the graph
and every table are there, a table page shows its columns, checks, trends, history and quarantine, the model
page its versions and plots, and no page makes a network request (Chromium's net log)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipelines.docs.site import build_site

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
REMOTE = re.compile(
    r"""(?:src|href|srcset|xlink:href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""",
    re.I,
)


def _chromium(tmp: Path, url: str, *args: str) -> tuple[str, list[str]]:
    """(stdout, URLs the page requested over the network) of one headless Chromium load of ``url``."""
    if CHROMIUM is None:
        reason = "chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("MEDALLION_REQUIRE_CHROMIUM"):
            pytest.fail(reason)
        pytest.skip(reason)
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    profile.mkdir(parents=True)
    net_log = profile.with_suffix(".netlog.json")
    out = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--log-net-log={net_log}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, page_requests(net_log)


def page_requests(net_log: Path) -> list[str]:
    """URLs of the requests a page made: Chromium's own background requests (update checks, network time)
    have no page origin; a page loaded from disk makes its requests from the file:// origin."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        from_page = "file://" in str(params.get("network_isolation_key", ""))
        local = str(params.get("url", "")).startswith(("file:", "data:", "about:"))
        if event["type"] == start and from_page and not local:
            urls.append(params["url"])
    return urls


@pytest.fixture(scope="module")
def site(full_lakehouse: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_site(full_lakehouse, tmp_path_factory.mktemp("docs") / "site")


def test_docs_site_renders_offline_in_chromium_with_the_graph_and_every_table(
    site: Any, full_lakehouse: Any, tmp_path: Path
) -> None:
    settings = full_lakehouse.settings
    root = site.index.parent
    # The check can fail: a page with a remote image and stylesheet is caught.
    control = tmp_path / "control.html"
    control.write_text(
        '<img src="http://127.0.0.1:9/x.png"><link rel="stylesheet" href="https://cdn.invalid/a.css">'
    )
    assert len(_chromium(tmp_path, control.as_uri(), "--dump-dom")[1]) == 2
    assert REMOTE.search(control.read_text())

    for page in site.pages:
        assert not REMOTE.search(page.read_text()), page  # no remote URL in any page, not only those opened

    dom, requests = _chromium(tmp_path, site.index.as_uri(), "--dump-dom")
    assert requests == []
    assert '<svg id="table-graph"' in dom
    for name in settings.tables:
        assert (root / "tables" / f"{name}.html").is_file(), name
        assert f'href="tables/{name}.html"' in dom, name
    runner_tables = [n for n, t in settings.tables.items() if t.built_by_runner]
    nodes = re.findall(r'<a class="node" href="[^"]+" data-table="([^"]+)"', dom)
    assert set(runner_tables) <= set(nodes) and "gold.flight_delay_predictions" in nodes

    page = root / "tables" / "silver.weather.html"
    dom, requests = _chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert requests == []
    for section in ("Columns", "Checks", "Quarantine", "Delta history", "Upstream", "Downstream"):
        assert f">{section}</h" in dom, section
    assert 'href="bronze.weather.html"' in dom and 'href="gold.flight_features.html"' in dom
    assert "wind_speed_plausible" in dom and 'class="trend"' in dom
    assert re.search(r"silver\.weather_quarantine</a>: 1 row\(s\) \(wind_speed_plausible: 1\)", dom), dom

    dom, requests = _chromium(tmp_path, (root / "ml.html").as_uri(), "--dump-dom")
    assert requests == [] and "Champion history" in dom and "gold.flight_features v" in dom
    images = re.findall(r'<img src="([^"]+)"', dom)
    assert images and all((root / src).is_file() for src in images)

    for target, name in ((site.index, "index.png"), (page, "silver.weather.png")):
        shot = root / name
        _chromium(
            tmp_path, target.as_uri(), f"--screenshot={shot}", "--window-size=1400,1100", "--hide-scrollbars"
        )
        assert shot.stat().st_size > 20_000, shot  # a rendered page, not a blank one
