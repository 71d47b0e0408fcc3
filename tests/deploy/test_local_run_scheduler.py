"""The local job run's scheduler and launchers (pipelines/bundle/localrun.py), without building anything:
task order from depends_on, max_retries and the retry interval, upstream failures, dynamic values, and the
wheel-task launcher calling a real entry point from installed package metadata in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from deploy_support import resolved

from pipelines.bundle.localrun import WHEEL_LAUNCHER, Attempt, fill_dynamic, run_tasks, task_order
from pipelines.errors import BundleError

pytestmark = pytest.mark.fast


def _task(deps: tuple[str, ...] = (), retries: int = 0, interval: int = 0) -> dict[str, Any]:
    return {
        "depends_on": [{"task_key": d} for d in deps],
        "max_retries": retries,
        "min_retry_interval_millis": interval,
    }


def test_the_daily_job_runs_in_dependency_order() -> None:
    tasks = resolved("dev").tasks("medallion_daily")
    assert task_order(tasks) == ["bronze", "silver", "gold", "train", "score", "serving"]
    shuffled = {k: tasks[k] for k in ("serving", "score", "train", "gold", "silver", "bronze")}
    order = task_order(shuffled)
    assert order.index("bronze") < order.index("silver") < order.index("gold") < order.index("train")
    assert order.index("train") < min(order.index("score"), order.index("serving"))


def test_cycles_and_unknown_dependencies_are_bundle_errors() -> None:
    with pytest.raises(BundleError, match="cycle"):
        task_order({"a": _task(("b",)), "b": _task(("a",))})
    with pytest.raises(BundleError, match="not a task of its job"):
        task_order({"a": _task(("nope",))})


def test_a_failed_task_is_retried_max_retries_times_at_its_interval() -> None:
    calls: list[tuple[str, int]] = []
    waits: list[float] = []
    outcome = {("a", 1): 1, ("a", 2): 0}

    def launch(key: str, task: Any, attempt: int) -> Attempt:
        calls.append((key, attempt))
        return Attempt(outcome.get((key, attempt), 0), f"{key} #{attempt}")

    tasks = {"a": _task(retries=2, interval=60000), "b": _task(("a",))}
    results = run_tasks("j", tasks, launch, sleep=waits.append, say=lambda line: None)
    assert calls == [("a", 1), ("a", 2), ("b", 1)]
    assert waits == [60.0]  # min_retry_interval_millis
    assert [(r.task, r.status, r.attempts) for r in results] == [("a", "ok", 2), ("b", "ok", 1)]


def test_a_task_failing_every_attempt_fails_the_run_and_skips_what_depends_on_it() -> None:
    calls: list[tuple[str, int]] = []
    waits: list[float] = []

    def launch(key: str, task: Any, attempt: int) -> Attempt:
        calls.append((key, attempt))
        return Attempt(0 if key == "side" else 2, "exit 2")

    tasks = {"a": _task(retries=1, interval=60000), "b": _task(("a",)), "c": _task(("b",)), "side": _task()}
    results = {
        r.task: r
        for r in run_tasks("j", tasks, launch, retry_wait=0.5, sleep=waits.append, say=lambda line: None)
    }
    assert calls == [("a", 1), ("a", 2), ("side", 1)]
    assert waits == [0.5]  # --retry-wait overrides the interval
    assert (results["a"].status, results["a"].attempts) == ("failed", 2)
    assert results["b"].status == results["c"].status == "upstream_failed"
    assert results["side"].status == "ok"


def test_dynamic_values_are_filled_and_unknown_ones_refused() -> None:
    params = resolved("dev").tasks("medallion_daily")["gold"]["python_wheel_task"]["parameters"]
    filled = fill_dynamic(params, {"job.run_id": "7"}, "gold")
    assert filled[filled.index("--run-id") + 1] == "7" and "{{" not in " ".join(filled)
    with pytest.raises(BundleError, match="task.run_id"):
        fill_dynamic(["{{task.run_id}}"], {"job.run_id": "7"}, "gold")


def test_the_wheel_launcher_calls_the_entry_point_the_package_metadata_names() -> None:
    """As a python_wheel_task does: package_name + entry_point -> the console script's function, with
    sys.argv = [entry_point, *parameters]; its exit code is the task's result."""
    help_run = subprocess.run(
        [sys.executable, "-c", WHEEL_LAUNCHER, "medallion", "medallion-silver", "--help"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert help_run.returncode == 0 and help_run.stdout.startswith("usage: medallion-silver")
    bad = subprocess.run(
        [sys.executable, "-c", WHEEL_LAUNCHER, "medallion", "medallion-silver", "--env", "dev", "--selct", "x"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "unrecognized arguments: --selct" in bad.stderr


def test_a_cancelled_job_run_stops_the_running_tasks_process_group(tmp_path: Any) -> None:
    """A task runs in its own session (a terminal's Ctrl-C never reaches it): SIGTERM to the job run (a
    cancel) must stop the task's whole group, not leave it running with its Spark JVM."""
    import os
    import signal
    import time

    driver = (
        "import subprocess, sys\n"
        "from pipelines.cli import _terminate_as_interrupt\n"
        "from pipelines.bundle.localrun import wait_task\n"
        "_terminate_as_interrupt()\n"
        "task = subprocess.Popen(['sh', '-c', 'sleep 300 & sleep 300; wait'], start_new_session=True, stdout=subprocess.DEVNULL)\n"
        "print(task.pid, flush=True)\n"
        "try:\n"
        "    wait_task(task, None)\n"
        "except KeyboardInterrupt as exc:\n"
        "    print(type(exc).__name__, flush=True)\n"
        "    sys.exit(143)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    assert proc.stdout is not None
    group = int(proc.stdout.readline())
    time.sleep(0.5)
    os.killpg(group, 0)  # the task's group is running
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert proc.stdout.read().strip() == "Terminated"
    with pytest.raises(
        ProcessLookupError
    ):  # no process of the task's group is left (the background sleep too)
        os.killpg(group, 0)
