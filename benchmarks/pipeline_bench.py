"""What the framework costs: a bare PySpark script doing the pipeline's work, against `medallion run`.

    python benchmarks/pipeline_bench.py [--factor 1 10] [--repeat 3] [--engines offline native]
                                        [--months N] [--work DIR] [--only rounds|incremental]
    python benchmarks/pipeline_bench.py bare --landing DIR --out DIR     # the reference script on its own

The reference ("bare") script is the `bare` subcommand of this file. It reads the five landed sources (flights
CSV, weather JSON lines, airlines / airports / planes CSV snapshots) with plain Spark readers, writes the bronze
copies with ingestion metadata, the typed and deduplicated silver tables and the four gold tables (carrier
months, route days, airport weather delays, and the flight features with weather, plane age and the trailing
7/30-day route and carrier delay rates) as plain parquet (`df.write.parquet`): no Delta, no checks, no manifest,
no quarantine, no event log, no runner, no incremental state. It calls the project's own pure transforms
(pipelines/bronze/records.py, pipelines/silver/*.py, pipelines/gold/*.py: the same functions the declarations in
conf/tables/*.yml name, which it checks at start), so "same transforms" holds by construction; only reading
the landed files is written here in plain PySpark (the project's reader first inspects every file in Python:
encoding, delimiter, header order, rejections; the bare script reads each source's files in one pass with the
declared columns). In-flight `__` columns are dropped and `_run_id` is added, as the runner does. Its Spark
session is the pipeline's local one (pipelines.session.build_local_session: same master, driver memory,
shuffle partitions, time zone, timestamp type), without Delta's jars.

What is measured, each in its own process (its own JVM), with MEDALLION_HOME pointing into --work:

- rounds: per round, the bare script once, then `python -m pipelines.cli run --no-ml --no-land` on a fresh
  home for each engine of --engines, all reading the same landing folder (MEDALLION_LANDING); --repeat rounds,
  alternated so that drifting machine load hits every variant. The bare figures of a round serve every engine
  (the bare script does not depend on the Delta engine).
- incremental, once per engine, in a home of its own: a first build on a landing holding everything but the
  newest month of flights and weather (the sample: December 2013); then that month is added and `medallion
  run` timed (one new month); then `medallion run` again with nothing landed since (the no-op rerun). The bare
  script keeps no state, so its equivalent of both is a full run: its median is printed beside them.

Figures: per layer (bronze, silver, gold) and for all tables, seconds as median, min and max over the rounds,
for the bare script and for medallion per engine, and the ratio medallion median / bare median. Medallion's
per-layer seconds are the sum of its per-table seconds as its summary table prints them (`seconds` column, one
decimal; the same figure as gold.pipeline_events.seconds, which the runner records per step); they include each
table's checks, quarantine and DQ-result writes. The bare script's are its own per-layer wall clock. Also:
"in-process run" (medallion's `done: ... in X s`, which includes starting Spark, the run lock and the event log;
the bare script's imports, session start and layers) and "whole process" (wall clock of the subprocess, Python imports and
JVM start and stop included). Peak RSS is the largest resident memory of the process tree (the Python driver,
its JVM child and any Python workers), sampled every 0.2 s (psutil when installed, else /proc), in MB.

--factor 1 is the embedded sample (`medallion land`, 336,776 flights); --factor 10 is ten jittered years made
once by `benchmarks/scale.py --factor 10 --landing DIR` (3.37M flights) and reused by later invocations (its
landing folder stays in --work). Several factors may be given (default: 1 10); each gets its own report.
Expect a minute or more per run on the sample (several on a busy machine) and about ten at 10x on 2 cores:
the default (two factors, three rounds, two engines, incremental runs) takes hours. For a quick smoke check:
--factor 1 --months 2 --repeat 1 --engines offline, optionally with --only rounds or --only incremental (a new
month needs at least two months of flights; with --months 1 on the sample it is skipped and the no-op rerun
follows a full build).
Peak memory and seconds of every run are printed as it finishes; the report follows at the end.

Work folders: <work>/landing-x<factor>-m<months>/ (the landed data, kept), <work>/x<factor>-m<months>/ (bare
output, medallion homes, logs/ with every run's output; rebuilt per run, left for inspection).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAYERS = ("bronze", "silver", "gold")
ENGINES = ("offline", "native")
SCENARIOS = ("rounds", "incremental")
DEFAULT_WORK = "/tmp/pbench-work"
RESULT_PREFIX = "BARE-RESULT "
MB = 2**20


# ======================================================================================================
# The reference bare-Spark script (`bare` subcommand): the pipeline's work, parquet, no checks, no framework.
# ======================================================================================================


def _bare_transforms() -> tuple[list[tuple[str, Callable[..., Any], tuple[str, ...]]], ...]:
    """(table, transform, inputs) of silver and gold, in an order where every input comes first.

    The same functions conf/tables/silver.yml and gold.yml declare (checked in :func:`_check_declarations`).
    """
    from pipelines.gold import features, performance
    from pipelines.silver import dimensions, planes, weather
    from pipelines.silver import flights as silver_flights

    silver = [
        ("silver.airlines", dimensions.airlines, ("bronze.airlines",)),
        ("silver.airports", dimensions.airports, ("bronze.airports",)),
        ("silver.planes", planes.transform, ("bronze.planes",)),
        ("silver.weather", weather.transform, ("bronze.weather",)),
        ("silver.flights", silver_flights.transform, ("bronze.flights", "silver.airports")),
    ]
    gold = [
        (
            "gold.carrier_monthly_performance",
            performance.carrier_monthly_performance,
            ("silver.flights", "silver.airlines"),
        ),
        ("gold.route_daily_stats", performance.route_daily_stats, ("silver.flights",)),
        (
            "gold.airport_weather_delays",
            performance.airport_weather_delays,
            ("silver.flights", "silver.weather"),
        ),
        (
            "gold.flight_features",
            features.flight_features,
            ("silver.flights", "silver.weather", "silver.planes"),
        ),
    ]
    return silver, gold


def _check_declarations(
    settings: Any, steps: Sequence[tuple[str, Callable[..., Any], tuple[str, ...]]]
) -> None:
    """Stop when this script's tables, transforms or inputs differ from conf/tables/*.yml."""
    declared = {
        name: t for name, t in settings.tables.items() if t.built_by_runner and t.layer in ("silver", "gold")
    }
    mine = {name for name, _, _ in steps}
    problems = [f"{n}: declared but not in the bare script" for n in sorted(set(declared) - mine)]
    problems += [f"{n}: in the bare script but not declared" for n in sorted(mine - set(declared))]
    for name, fn, inputs in steps:
        conf = declared.get(name)
        if conf is None:
            continue
        path = f"{fn.__module__}:{fn.__name__}"
        if conf.transform != path:
            problems.append(f"{name}: declared transform {conf.transform}, bare script calls {path}")
        if tuple(conf.inputs) != inputs:
            problems.append(f"{name}: declared inputs {list(conf.inputs)}, bare script passes {list(inputs)}")
    if problems:
        raise SystemExit("the bare script no longer matches conf/tables:\n  " + "\n  ".join(problems))


def bare_pipeline(landing: Path, out: Path) -> dict[str, Any]:
    """Run the whole pipeline into ``out/<layer>/<table>`` (parquet); returns the timings."""
    started = time.perf_counter()
    os.environ["MEDALLION_HOME"] = str(out)  # Spark's scratch (warehouse, derby) under out/state
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    from pipelines.bronze.records import CORRUPT_COLUMN, bronze_records
    from pipelines.config import load_settings
    from pipelines.outputs import TableOutput
    from pipelines.session import SessionInfo, build_local_session

    settings = load_settings("local")
    silver_steps, gold_steps = _bare_transforms()
    _check_declarations(settings, [*silver_steps, *gold_steps])
    spark = build_local_session(
        settings, SessionInfo("offline", "local-offline", "bare benchmark: plain Spark, parquet, no Delta")
    )
    session_s = time.perf_counter() - started
    run_id = "bare-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    tables: dict[str, float] = {}
    layers: dict[str, float] = {}

    def location(name: str) -> str:
        layer, _, table = name.partition(".")
        return str(out / layer / table)

    def write(name: str, df: DataFrame, t0: float) -> None:
        """Write ``df``; the table's seconds run from ``t0`` (before its inputs were read) to the write's end."""
        df.write.mode("overwrite").parquet(location(name))
        tables[name] = time.perf_counter() - t0
        print(f"  {name:<34} {tables[name]:7.1f} s", flush=True)

    # ---- bronze: every landed record as text + ingestion metadata (pipelines.bronze.records) -----------
    t_layer = time.perf_counter()
    bronze = {n: t for n, t in settings.tables.items() if t.layer == "bronze" and t.source}
    for name, conf in bronze.items():
        t0 = time.perf_counter()
        source = settings.sources[conf.source]
        paths = sorted(str(p) for p in landing.glob(source.pattern) if not p.name.startswith((".", "_")))
        if not paths:
            raise SystemExit(f"bare: no landed file of source {conf.source} ({landing / source.pattern})")
        if source.format == "csv":
            # Plain PySpark in place of the project's reader (pipelines/lakehouse/ingest.py read_group), which
            # needs its per-file inspection: one read of all files, header names as in the first file.
            with open(paths[0], encoding="utf-8") as fh:
                header = [h.strip() for h in next(csv.reader([fh.readline().lstrip("\ufeff")]), [])]
            schema = ", ".join(f"`{c}` string" for c in header) + f", {CORRUPT_COLUMN} string"
            raw = (
                spark.read.schema(schema)
                .option("header", "true")
                .option("enforceSchema", "true")
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
                .csv(paths)
            )
            present = tuple(c for c in source.columns if c in header)
            df = bronze_records(raw, source.columns, "csv", run_id, present=present)
        else:
            fields = StructType([StructField(c, StringType()) for c in (*source.columns, CORRUPT_COLUMN)])
            raw = (
                spark.read.schema(fields)
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
                .json(paths)
            )
            df = bronze_records(raw, source.columns, "jsonl", run_id)
        write(name, df, t0)
    layers["bronze"] = time.perf_counter() - t_layer

    # ---- silver and gold: the project's transforms on the tables written before -----------------------
    for layer, steps in (("silver", silver_steps), ("gold", gold_steps)):
        t_layer = time.perf_counter()
        for name, transform, inputs in steps:
            t0 = time.perf_counter()
            frames = {dep.partition(".")[2]: spark.read.parquet(location(dep)) for dep in inputs}
            result = transform(**frames)  # changes=None: a full build, as a first `medallion run`
            df = result.df if isinstance(result, TableOutput) else result
            df = df.drop(*[c for c in df.columns if c.startswith("__")]).withColumn("_run_id", F.lit(run_id))
            write(name, df, t0)
        layers[layer] = time.perf_counter() - t_layer
    spark.stop()
    return {
        "session_s": session_s,
        "layers": layers,
        "tables": tables,
        "run_s": session_s + sum(layers.values()),
    }


def bare_main(args: argparse.Namespace) -> None:
    landing, out = Path(args.landing).absolute(), Path(args.out).absolute()
    if not landing.is_dir():
        raise SystemExit(f"bare: no landing folder {landing}")
    print(f"bare: {landing} -> {out} (parquet)", flush=True)
    result = bare_pipeline(landing, out)
    layers = ", ".join(f"{k} {v:.1f} s" for k, v in result["layers"].items())
    print(f"bare: done in {result['run_s']:.1f} s (Spark start {result['session_s']:.1f} s; {layers})")
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ======================================================================================================
# The benchmark: processes, memory sampling, parsing, figures.
# ======================================================================================================


def _tree_rss_proc(pid: int) -> dict[str, int]:
    """RSS (bytes) of ``pid`` (driver), its java descendants (jvm) and other descendants (workers), /proc."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{entry.name}/statm") as fh:
                resident = int(fh.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
        p = int(entry.name)
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(p)
        names[p] = stat[stat.index("(") + 1 : stat.rindex(")")]
        rss[p] = resident
    out = {"driver": rss.get(pid, 0), "jvm": 0, "workers": 0}
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        out["jvm" if names.get(p) == "java" else "workers"] += rss.get(p, 0)
    return out


def _tree_rss_psutil(pid: int) -> dict[str, int]:
    import psutil

    out = {"driver": 0, "jvm": 0, "workers": 0}
    try:
        root = psutil.Process(pid)
        out["driver"] = root.memory_info().rss
        kids = root.children(recursive=True)
    except psutil.Error:
        return out
    for kid in kids:
        try:
            out["jvm" if kid.name() == "java" else "workers"] += kid.memory_info().rss
        except psutil.Error:
            continue
    return out


def _rss_function() -> tuple[Callable[[int], dict[str, int]], str]:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return _tree_rss_proc, "/proc"
    return _tree_rss_psutil, "psutil"


TREE_RSS, RSS_SOURCE = _rss_function()


class RssSampler(threading.Thread):
    """Samples the process tree of ``pid`` every ``interval`` seconds; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_total = 0
        self.peak = {"driver": 0, "jvm": 0, "workers": 0}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            now = TREE_RSS(self.pid)
            self.peak_total = max(self.peak_total, sum(now.values()))
            self.peak = {k: max(self.peak[k], now[k]) for k in self.peak}
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class Proc:
    """One timed subprocess."""

    label: str
    wall: float
    returncode: int
    output: str
    log: Path
    peak_rss: int
    peak_parts: dict[str, int]


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the process group this benchmark started for ``proc`` (then kill it if it lingers)."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def timed(label: str, args: Sequence[str], env: dict[str, str], log: Path, ok: Sequence[int] = (0,)) -> Proc:
    """Run ``args`` with its output in ``log``, sampling memory; stop the benchmark if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        started = time.perf_counter()
        # Its own process group: interrupting the benchmark stops the run and its JVM, nothing else.
        proc = subprocess.Popen(
            list(args), stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )
        sampler = RssSampler(proc.pid)
        sampler.start()
        try:
            returncode = proc.wait()
        except BaseException:
            _stop_group(proc)
            raise
        finally:
            wall = time.perf_counter() - started
            sampler.stop()
    output = log.read_text(errors="replace")
    if returncode not in ok:
        tail = "\n".join(output.splitlines()[-25:])
        raise SystemExit(f"{label} failed (exit {returncode}); its output is in {log}; last lines:\n{tail}")
    return Proc(label, wall, returncode, output, log, sampler.peak_total, sampler.peak)


def base_env(**overrides: str) -> dict[str, str]:
    """The environment of a child: this one without MEDALLION_* path and fault overrides, plus ``overrides``."""
    drop = ("MEDALLION_LAKEHOUSE", "MEDALLION_STATE", "MEDALLION_LANDING", "MEDALLION_HOME", "MEDALLION_ENGINE",
            "MEDALLION_CRASH_AT", "MEDALLION_CONF_DIR", "MEDALLION_ENV")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["MEDALLION_ENV"] = "local"
    env.update(overrides)
    return env


STEP = re.compile(
    r"^(?P<table>(?:bronze|silver|gold)\.\w+)\s+(?P<read>[\d,]+|-)\s+(?P<written>[\d,]+)\s+"
    r"(?P<seconds>\d+(?:\.\d+)?)\s+(?P<version>\S+)\s*(?P<detail>.*)$"
)
DONE = re.compile(r"^done: (\d+) table\(s\), (\d+) changed, ([\d,]+) rows written in ([\d.]+) s")
ENGINE_LINE = re.compile(r"\bengine=(\w+) \(")


@dataclass
class Run:
    """One run's figures: per table and per layer seconds, totals, memory."""

    kind: str  # "bare" or an engine
    tables: dict[str, float]
    rows: dict[str, int | None]
    run_s: float
    wall: float
    peak_rss: int
    changed: int | None = None
    rows_written: int | None = None
    details: dict[str, str] = field(default_factory=dict)
    # Seconds per layer as measured by the run itself (the bare script); else the sum of its tables' seconds.
    layer_s: dict[str, float] | None = None

    @property
    def layers(self) -> dict[str, float]:
        if self.layer_s is not None:
            return {layer: self.layer_s.get(layer, 0.0) for layer in LAYERS}
        return {
            layer: sum(s for t, s in self.tables.items() if t.startswith(layer + ".")) for layer in LAYERS
        }


def parse_medallion(proc: Proc, engine: str) -> Run:
    tables: dict[str, float] = {}
    rows: dict[str, int | None] = {}
    details: dict[str, str] = {}
    done = None
    seen_engine = None
    for line in proc.output.splitlines():
        if m := STEP.match(line):
            tables[m["table"]] = float(m["seconds"])
            rows[m["table"]] = int(m["written"].replace(",", ""))
            details[m["table"]] = m["detail"]
        elif m := DONE.match(line):
            done = m
        elif seen_engine is None and (m := ENGINE_LINE.search(line)):
            seen_engine = m[1]
    if done is None or not tables:
        raise SystemExit(f"{proc.label}: no summary table / `done:` line in its output ({proc.log})")
    if seen_engine != engine:
        raise SystemExit(f"{proc.label}: ran on the {seen_engine} engine, not {engine} ({proc.log})")
    return Run(
        engine, tables, rows, float(done[4]), proc.wall, proc.peak_rss, changed=int(done[2]),
        rows_written=int(done[3].replace(",", "")), details=details,
    )  # fmt: skip


def parquet_rows(folder: Path) -> int | None:
    """Rows of a parquet folder from its footers (no Spark; nothing is timed here)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return None
    files = [p for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_"))]
    return sum(pq.ParquetFile(p).metadata.num_rows for p in files)


def parse_bare(proc: Proc, out: Path) -> Run:
    lines = [x for x in proc.output.splitlines() if x.startswith(RESULT_PREFIX)]
    if not lines:
        raise SystemExit(f"{proc.label}: no {RESULT_PREFIX.strip()} line in its output ({proc.log})")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    rows = {t: parquet_rows(out / t.partition(".")[0] / t.partition(".")[2]) for t in result["tables"]}
    return Run(
        "bare", result["tables"], rows, result["run_s"], proc.wall, proc.peak_rss, layer_s=result["layers"]
    )


# ---- landing ---------------------------------------------------------------------------------------------


def prepare_landing(work: Path, factor: int, months: int) -> Path:
    """The landed data of ``factor`` (1: `medallion land`, else benchmarks/scale.py), built once and kept."""
    landing = work / f"landing-x{factor}-m{months}"
    marker = work / f"landing-x{factor}-m{months}.complete"  # outside the landing: medallion would report it
    if marker.exists() and landing.is_dir():
        print(f"x{factor}: reusing the landing folder {landing}", flush=True)
        return landing
    shutil.rmtree(landing, ignore_errors=True)
    month_args = [a for m in range(1, months + 1) for a in ("--month", str(m))] if months < 12 else []
    started = time.perf_counter()
    if factor == 1:
        print(f"x1: landing the sample (months 1-{months}) into {landing}", flush=True)
        env = base_env(MEDALLION_HOME=str(work / "land-home"), MEDALLION_LANDING=str(landing))
        cmd = [sys.executable, "-m", "pipelines.cli", "land", *month_args]
    else:
        print(
            f"x{factor}: generating {factor} years (months 1-{months}) into {landing} (scale.py)", flush=True
        )
        env = base_env()
        cmd = [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--factor", str(factor),
               "--landing", str(landing), *month_args]  # fmt: skip
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"landing x{factor} failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    marker.touch()
    print(f"x{factor}: landed in {time.perf_counter() - started:.1f} s", flush=True)
    return landing


def count_records(landing: Path) -> dict[str, int]:
    """Data records per source folder (lines, CSV headers excluded)."""
    counts: dict[str, int] = {}
    for folder in sorted(p for p in landing.iterdir() if p.is_dir()):
        total = 0
        for f in folder.iterdir():
            with f.open("rb") as fh:
                lines = sum(1 for line in fh if line.strip())
            total += lines - (1 if f.suffix.lower() == ".csv" and lines else 0)
        counts[folder.name] = total
    return counts


MONTH_FILE = re.compile(r"_(\d{4})_(\d{2})\.[^/]+$")


def split_newest_month(landing: Path) -> tuple[tuple[int, int] | None, list[Path], list[Path]]:
    """(newest (year, month) of the flights, files without it, its flights and weather files)."""
    months = {
        (int(m[1]), int(m[2])) for f in (landing / "flights").glob("*") if (m := MONTH_FILE.search(f.name))
    }
    if not months:
        return None, [], []
    newest = max(months)
    before, late = [], []
    for f in sorted(p for p in landing.rglob("*") if p.is_file()):
        m = MONTH_FILE.search(f.name)
        in_newest = bool(m) and (int(m[1]), int(m[2])) == newest and f.parent.name in ("flights", "weather")
        (late if in_newest else before).append(f)
    return newest, before, late


def link_into(files: Sequence[Path], source: Path, target: Path) -> None:
    """Hard links (same size and modification time) of ``files`` under ``target``; copies when not possible."""
    for f in files:
        dest = target / f.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(f, dest)
        except OSError:
            shutil.copy2(f, dest)


# ---- the benchmark of one factor -----------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / MB:,.0f}"


def run_bare(landing: Path, out: Path, log: Path, label: str) -> Run:
    shutil.rmtree(out, ignore_errors=True)
    proc = timed(
        label,
        [sys.executable, str(Path(__file__).resolve()), "bare", "--landing", str(landing), "--out", str(out)],
        base_env(),
        log,
    )
    return parse_bare(proc, out)


def run_medallion(home: Path, landing: Path, engine: str, log: Path, label: str, fresh: bool = True) -> Run:
    if fresh:
        shutil.rmtree(home, ignore_errors=True)
    env = base_env(MEDALLION_HOME=str(home), MEDALLION_LANDING=str(landing), MEDALLION_ENGINE=engine)
    proc = timed(label, [sys.executable, "-m", "pipelines.cli", "run", "--no-ml", "--no-land"], env, log,
                 ok=(0, 4))  # fmt: skip
    if proc.returncode == 4:
        print(f"  note: {label} exited 4 (some landed files not ingested), see {log}", flush=True)
    return parse_medallion(proc, engine)


def _say(label: str, run: Run) -> None:
    layers = ", ".join(f"{k} {v:.1f}" for k, v in run.layers.items())
    extra = "" if run.changed is None else f", {run.changed} changed"
    print(
        f"  {label}: {run.wall:.1f} s wall, in-process {run.run_s:.1f} s (tables: {layers}){extra}, "
        f"peak RSS {_mb(run.peak_rss)} MB",
        flush=True,
    )


@dataclass
class FactorResult:
    factor: int
    months: int
    landing: Path
    records: dict[str, int]
    bare: list[Run]
    medallion: dict[str, list[Run]]
    noop: dict[str, Run]
    new_month: dict[str, tuple[Run, Run]]
    newest: tuple[int, int] | None
    notes: list[str]
    scratch: Path


def bench_factor(factor: int, args: argparse.Namespace, engines: Sequence[str]) -> FactorResult:
    work = Path(args.work).absolute()
    landing = prepare_landing(work, factor, args.months)
    records = count_records(landing)
    scratch = work / f"x{factor}-m{args.months}"
    logs = scratch / "logs"
    rounds = "rounds" in args.only
    incremental = "incremental" in args.only
    print(
        f"x{factor}: {records.get('flights', 0):,} flights, {records.get('weather', 0):,} weather records; "
        f"{args.repeat if rounds else 0} round(s) of bare + medallion on {', '.join(engines)}"
        + ("; incremental runs" if incremental else ""),
        flush=True,
    )
    total_runs = (args.repeat * (1 + len(engines)) if rounds else 0) + (
        3 * len(engines) if incremental else 0
    )
    step = 0

    def label(what: str) -> str:
        nonlocal step
        step += 1
        print(f"[x{factor} {step}/{total_runs}] {what} ...", flush=True)
        return f"x{factor} {what}"

    bare: list[Run] = []
    medallion: dict[str, list[Run]] = {e: [] for e in engines}
    for i in range(1, (args.repeat if rounds else 0) + 1):
        what = f"round {i}/{args.repeat}: bare script"
        run = run_bare(landing, scratch / "bare", logs / f"bare-{i}.log", label(what))
        _say(what, run)
        bare.append(run)
        for engine in engines:
            what = f"round {i}/{args.repeat}: medallion run ({engine})"
            run = run_medallion(
                scratch / f"med-{engine}", landing, engine, logs / f"med-{engine}-{i}.log", label(what)
            )
            _say(what, run)
            medallion[engine].append(run)

    # Incremental runs, per engine in a home of their own: build without the newest month, land it and run
    # (the new month), then run again with nothing landed since (the no-op rerun).
    noop: dict[str, Run] = {}
    new_month: dict[str, tuple[Run, Run]] = {}
    notes: list[str] = []
    newest, before, late = split_newest_month(landing)
    if not any(f.parent.name == "flights" for f in before):  # one month of flights: nothing to build first
        newest, before, late = None, sorted(p for p in landing.rglob("*") if p.is_file()), []
        if incremental:
            notes.append(
                "new month skipped: the landing has a single month of flights (use --months 2 or more)"
            )
    for engine in engines if incremental else ():
        home = scratch / f"incremental-{engine}"
        shutil.rmtree(home, ignore_errors=True)
        link_into(before, landing, home / "landing")
        month = f"{newest[0]}-{newest[1]:02d}" if newest else ""
        what = f"incremental ({engine}): first build" + (f" without {month}" if newest else " (all landed)")
        first = run_medallion(
            home, home / "landing", engine, logs / f"first-{engine}.log", label(what), fresh=False
        )
        _say(what, first)
        if newest:
            link_into(late, landing, home / "landing")
            what = f"incremental ({engine}): {month} landed, medallion run (new month)"
            run = run_medallion(home, home / "landing", engine, logs / f"newmonth-{engine}.log", label(what),
                                fresh=False)  # fmt: skip
            _say(what, run)
            new_month[engine] = (first, run)
        else:
            step += 1
        what = f"incremental ({engine}): medallion run again, nothing landed since (no-op)"
        run = run_medallion(
            home, home / "landing", engine, logs / f"noop-{engine}.log", label(what), fresh=False
        )
        _say(what, run)
        noop[engine] = run
    return FactorResult(
        factor, args.months, landing, records, bare, medallion, noop, new_month, newest, notes, scratch
    )


# ---- the report ----------------------------------------------------------------------------------------


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else "-"


def report(r: FactorResult) -> None:
    engines = list(r.medallion)
    n = len(r.bare)
    print()
    print(
        f"== x{r.factor}: {r.records.get('flights', 0):,} flights, {r.records.get('weather', 0):,} weather "
        f"records (months 1-{r.months} of each year), {n} round(s), {os.cpu_count()} cores, "
        f"load average now {os.getloadavg()[0]:.1f} =="
    )
    if n:
        report_rounds(r, engines)
    if r.noop or r.new_month or r.notes:
        report_incremental(r, engines)
    print(f"peak RSS: the process tree (Python driver + JVM + workers), sampled every 0.2 s ({RSS_SOURCE})")
    print(f"landing: {r.landing}; outputs, homes and the log of every run: {r.scratch}")


def report_rounds(r: FactorResult, engines: Sequence[str]) -> None:
    n = len(r.bare)
    rows: list[tuple[str, Callable[[Run], float], Callable[[float], str]]] = [
        *[(layer, (lambda run, layer=layer: run.layers[layer]), lambda v: f"{v:.1f}") for layer in LAYERS],
        ("all tables (sum of layers)", lambda run: sum(run.layers.values()), lambda v: f"{v:.1f}"),
        ("in-process run", lambda run: run.run_s, lambda v: f"{v:.1f}"),
        ("whole process (wall)", lambda run: run.wall, lambda v: f"{v:.1f}"),
        ("peak RSS MB", lambda run: float(run.peak_rss), _mb),
    ]
    for engine in engines:
        print()
        print(
            f"medallion run --no-ml, {engine} engine, against the bare script: seconds, median, min, max of {n}"
        )
        print(
            f"{'':<28} {'bare median':>11} {'min':>7} {'max':>7}   {'medallion median':>16} {'min':>7} "
            f"{'max':>7}   {'ratio':>6}"
        )
        for name, get, fmt in rows:
            b = _stats([get(x) for x in r.bare])
            m = _stats([get(x) for x in r.medallion[engine]])
            print(
                f"{name:<28} {fmt(b[0]):>11} {fmt(b[1]):>7} {fmt(b[2]):>7}   {fmt(m[0]):>16} {fmt(m[1]):>7} "
                f"{fmt(m[2]):>7}   {_ratio(m[0], b[0]):>6}"
            )
    print(
        "ratio = medallion median / bare median. Layer seconds: medallion = the sum of its per-table seconds"
    )
    print(
        "(its summary table, 0.1 s each; checks, quarantine and DQ results included), bare = its layer wall"
    )
    print(
        "clock. In-process run: from before Spark starts to the last write (medallion: `done: ... in X s`)."
    )

    # Per table: median seconds and the rows written (last round; bare: rows in its parquet files).
    print()
    head = f"{'table (median s, rows)':<34} {'bare s':>7} {'rows':>11}"
    for engine in engines:
        head += f" {engine + ' s':>10} {'rows':>11}"
    print(head)
    for table in r.bare[-1].tables:
        line = f"{table:<34} {statistics.median(x.tables[table] for x in r.bare):>7.1f} "
        bare_rows = r.bare[-1].rows.get(table)
        line += f"{'-' if bare_rows is None else f'{bare_rows:,}':>11}"
        for engine in engines:
            runs = r.medallion[engine]
            secs = [x.tables[table] for x in runs if table in x.tables]
            rows_w = runs[-1].rows.get(table)
            line += f" {statistics.median(secs) if secs else float('nan'):>10.1f} "
            line += f"{'-' if rows_w is None else f'{rows_w:,}':>11}"
        print(line)
    print("rows differ where medallion's checks quarantine rows (the bare script has no checks)")


def report_incremental(r: FactorResult, engines: Sequence[str]) -> None:
    print()
    print(f"{'incremental medallion runs (one each), seconds':<48}" + "".join(f" {e:>12}" for e in engines))

    def line(name: str, pick: Callable[[str], str]) -> None:
        print(f"{name:<48}" + "".join(f" {pick(e):>12}" for e in engines))

    if r.new_month and r.newest:
        month = f"{r.newest[0]}-{r.newest[1]:02d}"
        line(f"first build without {month}: whole process", lambda e: f"{r.new_month[e][0].wall:.1f}")
        line(f"new month {month}: whole process", lambda e: f"{r.new_month[e][1].wall:.1f}")
        line(f"new month {month}: in-process run", lambda e: f"{r.new_month[e][1].run_s:.1f}")
        for layer in LAYERS:
            line(
                f"new month {month}: {layer}",
                lambda e, layer=layer: f"{r.new_month[e][1].layers[layer]:.1f}",
            )
        line(
            f"new month {month}: tables changed",
            lambda e: f"{r.new_month[e][1].changed} of {len(r.new_month[e][1].tables)}",
        )
        line(f"new month {month}: rows written", lambda e: f"{r.new_month[e][1].rows_written:,}")
        line(f"new month {month}: peak RSS MB", lambda e: _mb(r.new_month[e][1].peak_rss))
    if r.noop:
        line("no-op rerun: whole process", lambda e: f"{r.noop[e].wall:.1f}")
        line("no-op rerun: in-process run", lambda e: f"{r.noop[e].run_s:.1f}")
        line("no-op rerun: all tables", lambda e: f"{sum(r.noop[e].layers.values()):.1f}")
        line("no-op rerun: tables changed", lambda e: f"{r.noop[e].changed} of {len(r.noop[e].tables)}")
        line("no-op rerun: peak RSS MB", lambda e: _mb(r.noop[e].peak_rss))
    if r.bare:
        wall = statistics.median(x.wall for x in r.bare)
        tables = statistics.median(sum(x.layers.values()) for x in r.bare)
        print(
            f"bare script (no state: a rerun or a new month is a full run): whole process {wall:.1f} s, "
            f"all tables {tables:.1f} s (median of the rounds)"
        )
    else:
        print(
            "bare script: not run (--only incremental); its equivalent of a rerun or a new month is a full run"
        )
    for note in r.notes:
        print(f"note: {note}")


# ---- command line ------------------------------------------------------------------------------------


def native_available() -> tuple[bool, str]:
    try:
        from pipelines.session import find_delta_jars

        jars = find_delta_jars()
    except Exception as exc:  # a named jar folder that is wrong, a broken install
        return False, f"{type(exc).__name__}: {exc}"
    return bool(jars), "no Delta jars on this machine (`medallion setup` fetches them)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--factor", type=int, nargs="+", default=[1, 10], metavar="N",
        help="data sizes: 1 = the embedded sample, 10 = ten jittered years from benchmarks/scale.py "
        "(any N up to scale.py's limit works); default: 1 10",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="rounds of bare + medallion runs (default 3)")
    parser.add_argument(
        "--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
        help="Delta engines of medallion run (default: offline native; native needs `medallion setup`)",
    )  # fmt: skip
    parser.add_argument(
        "--months", type=int, default=12, choices=range(1, 13), metavar="N",
        help="land only months 1..N of flights and weather (of every year at 10x): smaller runs for a "
        "smoke check (default 12: everything)",
    )  # fmt: skip
    parser.add_argument(
        "--work", default=DEFAULT_WORK,
        help=f"work folder: landing folders (kept and reused), bare output, medallion homes, logs "
        f"(default {DEFAULT_WORK})",
    )  # fmt: skip
    parser.add_argument(
        "--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS),
        help="what to run: rounds (bare vs medallion, --repeat times), incremental (new month and no-op "
        "rerun, once per engine); default both",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="{bare}")
    bare = sub.add_parser(
        "bare",
        help="run only the reference bare-Spark script (parquet, no checks) once",
        description="The reference bare-Spark script: landed files -> bronze, silver, gold parquet tables under "
        "OUT/<layer>/<table>, with the project's transforms, no Delta, no checks, no runner. Prints per table "
        f"seconds and a final `{RESULT_PREFIX.strip()} {{json}}` line.",
    )
    bare.add_argument("--landing", required=True, help="a landing folder as `medallion land` writes it")
    bare.add_argument("--out", required=True, help="folder for the parquet tables and Spark's scratch")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated benchmark stops its runs too
    if args.command == "bare":
        bare_main(args)
        return
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    engines = list(dict.fromkeys(args.engines))
    if "native" in engines:
        ok, why = native_available()
        if not ok:
            print(f"native engine left out: {why}", flush=True)
            engines.remove("native")
    if not engines:
        raise SystemExit("no engine to measure")
    print(
        f"pipeline_bench: factors {args.factor}, {args.repeat if 'rounds' in args.only else 0} round(s), "
        f"{'incremental runs, ' if 'incremental' in args.only else ''}engines {', '.join(engines)}, "
        f"months 1-{args.months}, work {args.work}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}, memory sampled with {RSS_SOURCE}",
        flush=True,
    )
    results = [bench_factor(factor, args, engines) for factor in args.factor]
    for result in results:
        report(result)


if __name__ == "__main__":
    main()
