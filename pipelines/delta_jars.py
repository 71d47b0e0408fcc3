"""Delta Lake's jars for local Spark: fetched once at install time (``medallion setup``), never at run time.

The native engine needs delta-spark's JVM code. Databricks has it built in; a laptop gets it from Maven
Central, in the artifact that delta's own ``configure_spark_with_delta_pip`` names from the installed
versions: ``io.delta:delta-spark_<pyspark major.minor>_2.13:<delta-spark version>`` and its dependencies.

``medallion setup`` resolves that artifact once into a cache folder (default
``$XDG_CACHE_HOME/medallion/delta/<spark>-<delta>/``, or ``~/.cache/...``; ``MEDALLION_DELTA_CACHE`` moves the
cache root) and writes ``medallion-delta-jars.json`` beside the jars: the coordinate, the file names and their
sizes. The session factory (:mod:`pipelines.session`) looks there, so ``medallion run`` downloads nothing.

Two ways to resolve, tried in this order (``--via`` picks one):

1. **Spark's own resolver** (``spark.jars.packages`` through Ivy; needs no ``mvn``): a short-lived local
   session in a subprocess, with an ``ivysettings.xml`` that names only the Maven repository. Only that
   repository: a user's ``~/.m2`` often holds a dependency's POM without its jar (left by another build),
   which makes Spark's default resolution fail with "download failed".
2. **Maven** (``mvn dependency:copy-dependencies`` on a generated POM, runtime scope), when ``mvn`` exists.

Where the repository cannot be reached, setup says so in one line and succeeds: the offline engine is used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import SessionError

MAVEN_CENTRAL = "https://repo1.maven.org/maven2/"
MANIFEST = "medallion-delta-jars.json"
SCALA = "2.13"


def maven_repository() -> str:
    """The Maven repository to resolve from (``MEDALLION_MAVEN_REPO`` for a corporate mirror)."""
    repo = os.environ.get("MEDALLION_MAVEN_REPO") or MAVEN_CENTRAL
    return repo if repo.endswith("/") else repo + "/"


def installed_versions() -> tuple[str, str]:
    """(pyspark version, delta-spark version) of this environment."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyspark"), version("delta-spark")
    except PackageNotFoundError as exc:
        raise SessionError(
            f"{exc.name} is not installed: install the local extra (pip install -e '.[local]')"
        ) from None


def coordinate(spark_version: str | None = None, delta_version: str | None = None) -> str:
    """The Maven coordinate of delta-spark for these versions (delta's own naming rule)."""
    if spark_version is None or delta_version is None:
        spark_version, delta_version = installed_versions()
    major_minor = ".".join(spark_version.split(".")[:2])
    return f"io.delta:delta-spark_{major_minor}_{SCALA}:{delta_version}"


def cache_root() -> Path:
    override = os.environ.get("MEDALLION_DELTA_CACHE")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "medallion" / "delta"


def default_folder(coord: str | None = None) -> Path:
    """Where ``medallion setup`` puts the jars of ``coord`` (default: the installed versions')."""
    coord = coord or coordinate()
    _group, artifact, version = coord.split(":")
    return cache_root() / f"{artifact}-{version}"


@dataclass(frozen=True)
class JarSet:
    """Jars of one resolution, as recorded in the folder's manifest."""

    coordinate: str
    folder: Path
    jars: tuple[str, ...]  # absolute paths
    via: str


def read_manifest(folder: Path) -> JarSet | None:
    """The folder's jar set, or None when it has no manifest or a file it lists is missing or truncated."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["jars"]
        jars = []
        for item in files:
            jar = folder / item["name"]
            if jar.stat().st_size != int(item["size"]):
                return None
            jars.append(str(jar))
        return JarSet(str(data["coordinate"]), folder, tuple(jars), str(data.get("via", "?")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_manifest(folder: Path, coord: str, via: str) -> JarSet:
    jars = sorted(p for p in folder.glob("*.jar"))
    if not any("delta-spark" in p.name for p in jars):
        raise SessionError(f"resolution of {coord} produced no delta-spark jar in {folder}")
    data = {
        "coordinate": coord,
        "via": via,
        "resolved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "repository": maven_repository(),
        "jars": [{"name": p.name, "size": p.stat().st_size} for p in jars],
    }
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)  # the manifest appears last: a half-resolved folder has none
    result = read_manifest(folder)
    assert result is not None
    return result


def reachable(repo: str | None = None, timeout: float = 10.0) -> bool:
    """Can this machine fetch from the Maven repository? (One small request for delta-storage's metadata.)"""
    url = (repo or maven_repository()) + "io/delta/delta-storage/maven-metadata.xml"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a fixed https URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


IVY_SETTINGS = """\
<ivysettings>
  <settings defaultResolver="maven"/>
  <caches defaultCacheDir="{cache}"/>
  <resolvers>
    <ibiblio name="maven" m2compatible="true" root="{repo}"/>
  </resolvers>
</ivysettings>
"""

# Run in a subprocess so that the resolution's JVM (and its ~100 lines of Ivy chatter) never touches the
# caller's process, and a hung download can be timed out.
_RESOLVE_SCRIPT = """\
import os, sys
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
from pyspark.sql import SparkSession
spark = (
    SparkSession.builder.master("local[1]").appName("medallion-setup")
    .config("spark.jars.packages", sys.argv[1])
    .config("spark.jars.ivySettings", sys.argv[2])
    .config("spark.jars.ivy", sys.argv[3])
    .config("spark.ui.enabled", "false")
    .config("spark.driver.bindAddress", "127.0.0.1")
    .getOrCreate()
)
spark.stop()
"""


def _resolve_with_spark(coord: str, work: Path, timeout: float) -> list[Path]:
    ivy = work / "ivy"
    ivy.mkdir(parents=True, exist_ok=True)
    settings_file = work / "ivysettings.xml"
    settings_file.write_text(
        IVY_SETTINGS.format(cache=ivy / "cache", repo=maven_repository()), encoding="utf-8"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _RESOLVE_SCRIPT, coord, str(settings_file), str(ivy)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise SessionError(f"resolving {coord} through Spark took more than {timeout:.0f} s") from None
    jars = sorted((ivy / "jars").glob("*.jar"))
    if proc.returncode != 0 or not jars:
        lines = [
            ln for ln in (proc.stderr + proc.stdout).splitlines() if "download failed" in ln or "ERROR" in ln
        ]
        raise SessionError(
            f"Spark could not resolve {coord}: {(lines or ['exit code ' + str(proc.returncode)])[0].strip()}"
        )
    return jars


POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>medallion</groupId>
  <artifactId>delta-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <repositories>
    <repository><id>medallion-maven</id><url>{repo}</url></repository>
  </repositories>
  <dependencies>
    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version></dependency>
  </dependencies>
</project>
"""


def _resolve_with_maven(coord: str, work: Path, timeout: float) -> list[Path]:
    mvn = shutil.which("mvn")
    if not mvn:
        raise SessionError("mvn is not installed")
    group, artifact, version = coord.split(":")
    (work / "pom.xml").write_text(
        POM.format(repo=maven_repository(), group=group, artifact=artifact, version=version), encoding="utf-8"
    )
    out = work / "mvn-jars"
    try:
        proc = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(work / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                # Spark brings its own Scala and Spark jars; two copies on one classpath break it.
                "-DexcludeGroupIds=org.scala-lang,org.apache.spark",
                f"-DoutputDirectory={out}",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise SessionError(f"resolving {coord} through mvn took more than {timeout:.0f} s") from None
    jars = sorted(out.glob("*.jar"))
    if proc.returncode != 0 or not jars:
        first = next((ln for ln in proc.stdout.splitlines() if "ERROR" in ln), f"exit code {proc.returncode}")
        raise SessionError(f"mvn could not resolve {coord}: {first.strip()}")
    return jars


RESOLVERS: dict[str, Callable[[str, Path, float], list[Path]]] = {
    "spark": _resolve_with_spark,
    "mvn": _resolve_with_maven,
}


@dataclass(frozen=True)
class SetupResult:
    status: str  # "present", "fetched", "unreachable"
    coordinate: str
    jar_set: JarSet | None
    message: str


def fetch(
    folder: Path | None = None,
    via: str = "auto",
    force: bool = False,
    timeout: float = 900.0,
    progress: Callable[[str], None] | None = None,
) -> SetupResult:
    """Make sure the Delta jars of the installed versions are in ``folder`` (default :func:`default_folder`)."""
    say = progress or (lambda _line: None)
    coord = coordinate()
    folder = folder or default_folder(coord)
    present = read_manifest(folder)
    if present is not None and present.coordinate == coord and not force:
        return SetupResult("present", coord, present, f"Delta jars for {coord} already in {folder}")
    if not reachable():
        return SetupResult(
            "unreachable",
            coord,
            None,
            f"Maven repository {maven_repository()} is unreachable: the offline Delta engine (delta-rs) will "
            "be used; run `medallion setup` again when online for native Delta",
        )
    order = ["spark", "mvn"] if via == "auto" else [via]
    if via not in ("auto", *RESOLVERS):
        raise SessionError(f"unknown resolver {via!r}; use auto, spark or mvn")
    errors = []
    folder.parent.mkdir(parents=True, exist_ok=True)
    for name in order:
        if name == "mvn" and via == "auto" and not shutil.which("mvn"):
            errors.append("mvn: not installed")
            continue
        say(f"resolving {coord} and its dependencies from {maven_repository()} with {name} ...")
        with tempfile.TemporaryDirectory(prefix="medallion-jars-", dir=folder.parent) as tmp:
            work = Path(tmp)
            try:
                jars = RESOLVERS[name](coord, work, timeout)
            except SessionError as exc:
                errors.append(f"{name}: {exc}")
                continue
            staged = work / "staged"
            staged.mkdir()
            for jar in jars:
                shutil.copy2(jar, staged / jar.name)
            _write_manifest(staged, coord, name)
            # Swap the complete folder in: a concurrent session never sees half of it.
            old = None
            if folder.exists():
                old = work / "old"
                os.replace(folder, old)
            os.replace(staged, folder)
            result = read_manifest(folder)
            assert result is not None
            size = sum(Path(j).stat().st_size for j in result.jars) / 1e6
            return SetupResult(
                "fetched",
                coord,
                result,
                f"{len(result.jars)} jar(s), {size:.0f} MB, in {folder} (via {name})",
            )
    raise SessionError(f"could not fetch the Delta jars for {coord}: " + "; ".join(errors))


def located(folder: str | Path) -> JarSet:
    """The jars of a folder named by the user (``MEDALLION_DELTA_JARS`` / ``storage.delta_jars``).

    With a manifest (written by ``medallion setup --dest``) its list is used and must match the installed
    versions; without one, every ``*.jar`` of the folder is used, and it must hold delta-spark for the
    installed delta-spark version.
    """
    path = Path(folder).expanduser()
    coord = coordinate()
    manifest = read_manifest(path)
    if manifest is not None:
        if manifest.coordinate != coord:
            raise SessionError(
                f"{path} holds the Delta jars of {manifest.coordinate}, but this environment needs {coord}: "
                f"run `medallion setup --dest {path}`"
            )
        return manifest
    jars = sorted(str(p) for p in path.glob("*.jar"))
    _group, artifact, version = coord.split(":")
    if not any(artifact in Path(j).name and version in Path(j).name for j in jars):
        raise SessionError(
            f"MEDALLION_DELTA_JARS / storage.delta_jars points at {path}, which holds no {artifact} {version} "
            f"jar: run `medallion setup --dest {path}` or point it at the right folder"
        )
    return JarSet(coord, path, tuple(jars), "folder")
