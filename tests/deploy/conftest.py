"""Fixtures of the offline deployment checks (helpers in deploy_support.py): the merged bundle, the official
bundle JSON schema, and the wheel the bundle deploys, built once per test session."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_support import ROOT, SCHEMA_DIR, SCHEMA_NAME, BuiltWheel, load_bundle


@pytest.fixture(scope="session")
def bundle_schema() -> Path:
    path = SCHEMA_DIR / SCHEMA_NAME
    if not path.is_file():
        pytest.fail(f"no bundle schema at {path} (tests/deploy/schemas/ is part of the repository)")
    return path


@pytest.fixture(scope="session")
def bundle() -> dict[str, Any]:
    return load_bundle()


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltWheel]:
    """``pip wheel --no-deps`` of a copy of the checkout (offline: the build backend from the dev extra)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("pipelines", "jobs", "conf"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=ignore)
    out = work / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"wheel build failed (pip install -e '.[dev]' brings the backend):\n{proc.stderr}"
    )
    wheels = sorted(out.glob("medallion-*.whl"))
    assert len(wheels) == 1, wheels
    unpacked = work / "unpacked"
    with zipfile.ZipFile(wheels[0]) as zf:
        names = frozenset(zf.namelist())
        zf.extractall(unpacked)
    dist_info = next(unpacked.glob("medallion-*.dist-info"))
    entry_points = configparser.ConfigParser(delimiters=("=",))
    entry_points.optionxform = str  # type: ignore[assignment,method-assign]
    entry_points.read(dist_info / "entry_points.txt")
    scripts = dict(entry_points["console_scripts"]) if entry_points.has_section("console_scripts") else {}
    yield BuiltWheel(
        wheels[0],
        unpacked,
        names,
        {k: v.strip() for k, v in scripts.items()},
        (dist_info / "METADATA").read_text(),
    )
