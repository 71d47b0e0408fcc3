"""What is in the landing folder, file by file, before Spark reads anything (plain Python, no Spark).

- Which source a file belongs to: its name matches the source's pattern, also with a compression suffix
  (``.gz``, ``.bz2``) and in any letter case of the extension (``flights_2013_06.CSV.gz``). A file that
  matches no source (another folder, a sub-folder, a hidden or temporary name) is reported, never ignored.
- What each file holds: compression, a UTF-8 byte-order mark, bytes that are not UTF-8, for CSV the
  delimiter and the header (columns matched to the declared ones by name, in any order), for JSON lines
  nothing more (keys are matched per line by Spark).
- Whether it can be ingested at all, and if not, why (a rejection reason).

Spark then reads each group of files that share a layout in one pass (:mod:`pipelines.lakehouse.ingest`).
"""

from __future__ import annotations

import bz2
import codecs
import csv
import fnmatch
import gzip
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

COMPRESSIONS: dict[str, Any] = {".gz": gzip.open, ".bz2": bz2.open}
DELIMITERS = (",", ";", "\t", "|")
BOM = codecs.BOM_UTF8
# Byte-order marks of encodings that are not UTF-8: such a file is refused, not read as garbage.
FOREIGN_BOMS = {
    codecs.BOM_UTF16_LE: "UTF-16 LE",
    codecs.BOM_UTF16_BE: "UTF-16 BE",
    codecs.BOM_UTF32_LE: "UTF-32 LE",
}


@dataclass(frozen=True)
class LandedFileInfo:
    name: str  # relative to the landing folder, with forward slashes
    path: str
    size: int
    modified_ms: int

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "modified_ms": self.modified_ms}


def _info(landing_dir: Path, path: Path) -> LandedFileInfo:
    st = path.stat()
    return LandedFileInfo(
        path.relative_to(landing_dir).as_posix(), str(path), st.st_size, int(st.st_mtime * 1000)
    )


def compression(name: str) -> str | None:
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if suffix in COMPRESSIONS else None


def matches(name: str, pattern: str) -> bool:
    """``name`` (relative, forward slashes) matches the source ``pattern``, also compressed and in any case of
    the extension; never a file in a sub-folder the pattern does not name, nor a hidden/temporary name."""
    path = PurePosixPath(name)
    if path.name.startswith((".", "_")):
        return False
    base = name[: -len(path.suffix)] if compression(name) else name
    pattern_path = PurePosixPath(pattern)
    if len(PurePosixPath(base).parts) != len(pattern_path.parts):
        return False
    folder_ok = fnmatch.fnmatchcase(str(PurePosixPath(base).parent), str(pattern_path.parent))
    return folder_ok and fnmatch.fnmatch(PurePosixPath(base).name.lower(), pattern_path.name.lower())


def walk(landing_dir: Path) -> Iterator[Path]:
    """Every file under the landing folder (sorted), hidden ones included: nothing is silently skipped."""
    if not landing_dir.is_dir():
        return
    for folder, dirs, files in os.walk(landing_dir):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name


def list_landed(landing_dir: Path, pattern: str) -> list[LandedFileInfo]:
    """The landed files of a source (its pattern), oldest name first."""
    return [
        _info(landing_dir, p)
        for p in walk(landing_dir)
        if matches(p.relative_to(landing_dir).as_posix(), pattern)
    ]


def unmatched(landing_dir: Path, patterns: Mapping[str, str]) -> list[tuple[LandedFileInfo, str]]:
    """Files no source takes, each with why (so that the run summary and the audit can say so)."""
    out = []
    for path in walk(landing_dir):
        rel = path.relative_to(landing_dir).as_posix()
        if any(matches(rel, p) for p in patterns.values()):
            continue
        name = PurePosixPath(rel).name
        if name.startswith((".", "_")):
            why = "a hidden or temporary file name (starts with '.' or '_'): no source takes it"
        else:
            near = [s for s, p in patterns.items() if rel.split("/")[0] == p.split("/")[0]]
            why = (
                f"in the folder of source {near[0]} but not matching its pattern {patterns[near[0]]!r}"
                if near
                else f"matches no source pattern ({', '.join(sorted(patterns.values()))})"
            )
        out.append((_info(landing_dir, path), why))
    return out


def open_bytes(path: str) -> IO[bytes]:
    opener = COMPRESSIONS.get(compression(path) or "")
    return opener(path, "rb") if opener else open(path, "rb")  # noqa: SIM115 - returned to the caller


@dataclass(frozen=True)
class Inspection:
    """One landed file as Python sees it before Spark reads it."""

    file: LandedFileInfo
    bom: bool = False
    invalid_utf8: bool = False
    delimiter: str | None = None  # CSV
    header: tuple[str, ...] = ()  # CSV: the file's column names, in the file's order
    missing: tuple[str, ...] = ()  # declared columns the file lacks (null in bronze)
    extra: tuple[str, ...] = ()  # the file's columns the source does not declare
    multiline: bool = False  # CSV: a quoted field holds a line break (Spark must read the file whole)
    reject: str | None = None  # why it cannot be ingested (None: it can)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def layout(self) -> tuple[Any, ...]:
        """Files with one layout are read by Spark in one pass."""
        return (self.delimiter, self.header, self.multiline)


def _check_encoding(path: str) -> tuple[bool, bool, bool, str | None]:
    """(UTF-8 BOM, any byte that is not UTF-8, any double quote, a rejection reason) from one streaming pass."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    bom = invalid = quotes = False
    try:
        with open_bytes(path) as handle:
            first = handle.read(1 << 20)
            for foreign, name in FOREIGN_BOMS.items():
                if first.startswith(foreign):
                    return (
                        False,
                        False,
                        False,
                        f"the file is {name} (byte-order mark), not UTF-8: re-encode it",
                    )
            bom = first.startswith(BOM)
            chunk = first
            while chunk:
                quotes = quotes or b'"' in chunk
                if not invalid:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        invalid = True
                chunk = handle.read(1 << 20)
            if not invalid:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    invalid = True
    except (OSError, EOFError, gzip.BadGzipFile, ValueError) as exc:  # truncated or corrupt compression
        return False, False, False, f"cannot be read ({type(exc).__name__}: {exc})"
    return bom, invalid, quotes, None


def _quoted_line_breaks(path: str, delimiter: str, width: int) -> bool:
    """True when a well-formed quoted field holds a line break: some record spans lines and every record has
    the header's width. (An unbalanced quote instead swallows the rest of the file into one over- or
    under-sized record: such a file is read line by line, and the broken line is rescued.)"""
    spans = False
    with open_bytes(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        try:
            next(reader, None)
            previous = reader.line_num
            for row in reader:
                if row and len(row) != width:
                    return False
                spans = spans or reader.line_num - previous > 1
                previous = reader.line_num
        except csv.Error:  # a quote never closed before the end of the file
            return False
    return spans


def _first_line(path: str) -> str:
    with open_bytes(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        line = text.readline()
    return line.removeprefix("\ufeff")


def _sniff_delimiter(line: str, declared: Sequence[str]) -> str:
    """The delimiter that splits the header into the most declared names (``,`` on a tie)."""

    def score(d: str) -> tuple[int, int]:
        names = [h.strip() for h in next(csv.reader([line], delimiter=d), [])]
        return (sum(1 for n in names if n in declared), len(names))

    return max(DELIMITERS, key=lambda d: (score(d), d == ","))


def inspect(file: LandedFileInfo, fmt: str, declared: Sequence[str], evolution: str) -> Inspection:
    """What ``file`` holds and whether it can be ingested under the source's ``evolution`` policy."""
    bom, invalid, quotes, reject = _check_encoding(file.path)
    if reject:
        return Inspection(file, reject=reject)
    notes = []
    if bom:
        notes.append("UTF-8 byte-order mark (ignored)")
    if invalid:
        notes.append("bytes that are not UTF-8: the records holding them are flagged")
    if fmt != "csv" or file.size == 0:
        return Inspection(file, bom=bom, invalid_utf8=invalid, notes=tuple(notes))
    line = _first_line(file.path)
    if not line.strip():
        return Inspection(file, bom=bom, invalid_utf8=invalid, reject="the first line (the header) is empty")
    delimiter = _sniff_delimiter(line, declared)
    header = tuple(h.strip() for h in next(csv.reader([line], delimiter=delimiter), []))
    if delimiter != ",":
        notes.append(f"delimiter {delimiter!r}")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        return Inspection(file, reject=f"the header names column(s) {', '.join(duplicates)} more than once")
    if not set(header) & set(declared):
        return Inspection(
            file,
            reject=f"the header ({', '.join(header[:8])}) names none of the declared columns "
            f"({', '.join(declared[:8])}): not a file of this source, or a header is missing",
        )
    missing = tuple(c for c in declared if c not in header)
    extra = tuple(h for h in header if h not in declared)
    if extra and evolution == "fail":
        return Inspection(
            file,
            header=header,
            extra=extra,
            reject=f"column(s) {', '.join(extra)} are not declared and the source's schema_evolution is 'fail'",
        )
    if missing:
        notes.append(f"missing column(s) {', '.join(missing)} (null, flagged in _rescued_data)")
    if extra:
        kept = "added to the table" if evolution == "add_columns" else "rescued into _rescued_data"
        notes.append(f"new column(s) {', '.join(extra)} ({kept})")
    if tuple(h for h in header if h in declared) != tuple(c for c in declared if c in header):
        notes.append("columns in another order (matched by name)")
    multiline = quotes and _quoted_line_breaks(file.path, delimiter, len(header))
    if multiline:
        notes.append("quoted fields holding line breaks")
    return Inspection(
        file, bom=bom, invalid_utf8=invalid, delimiter=delimiter, header=header, missing=missing, extra=extra,
        multiline=multiline, notes=tuple(notes),
    )  # fmt: skip


def count_records(looked: Inspection, fmt: str) -> int:
    """Data records in a landed file as a plain reader counts them, read the way ingestion reads it (CSV:
    records after the header, quoted line breaks included when the file has them, else non-blank lines;
    JSON lines: non-blank lines). The audit's count, independent of Spark."""
    with open_bytes(looked.file.path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        if fmt == "csv":
            if not looked.header:
                return 0
            text.readline()
            if looked.multiline:
                return sum(1 for row in csv.reader(text, delimiter=looked.delimiter or ",") if row)
        return sum(1 for line in text if line.strip())
