"""DEPLOY.md, the CI workflow and the bundle agree: the commands DEPLOY.md gives exist (the medallion ones
parse, the databricks ones name real targets and jobs), the workflow runs only commands DEPLOY.md documents,
and its CLI version is one the bundle accepts."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml
from deploy_support import ROOT, resolved
from packaging.specifiers import SpecifierSet

pytestmark = pytest.mark.fast

DEPLOY = (ROOT / "DEPLOY.md").read_text()
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "bundle.yml").read_text())


def _code_commands(prefix: str) -> list[list[str]]:
    """Commands starting with ``prefix`` in DEPLOY.md's code blocks (comments dropped)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", DEPLOY, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(prefix):
                out.append(shlex.split(line.replace("<", "'<").replace(">", ">'")))
    return out


def _workflow_commands() -> list[list[str]]:
    out = []
    for job in WORKFLOW["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                line = re.sub(r"\$\{\{[^}]+\}\}", "X", line.strip())
                if line.startswith("databricks "):
                    out.append(shlex.split(line))
    return out


def _shape(cmd: list[str]) -> tuple[str, ...]:
    """verb, target and job of a `databricks bundle ...` command (values of --var left out)."""
    target = cmd[cmd.index("-t") + 1] if "-t" in cmd else ""
    jobs = [a for a in cmd[3:] if not a.startswith("-") and a != target and "=" not in a]
    return (cmd[2], target, *jobs)


def test_every_medallion_bundle_command_in_deploy_md_parses() -> None:
    from pipelines.cli import _parser

    commands = _code_commands("medallion bundle")
    assert len(commands) >= 3
    for cmd in commands:
        args = _parser().parse_args(cmd[1:])
        assert args.command == "bundle" and args.target in ("dev", "prod")


def test_databricks_commands_name_real_targets_and_jobs() -> None:
    commands = _code_commands("databricks bundle") + _workflow_commands()
    assert commands
    for cmd in commands:
        verb, target, *jobs = _shape(cmd)
        assert verb in ("validate", "deploy", "run", "summary"), cmd
        bundle = resolved(target)  # an unknown target raises
        assert set(jobs) <= set(bundle.jobs()), cmd


def test_the_workflow_runs_only_what_deploy_md_documents() -> None:
    documented = {_shape(c) for c in _code_commands("databricks bundle")}
    for cmd in _workflow_commands():
        assert _shape(cmd) in documented, f"{' '.join(cmd)} is not in DEPLOY.md"
    assert "./.ci/run" in DEPLOY or ".ci/run" in DEPLOY
    runs = [s.get("run", "") for j in WORKFLOW["jobs"].values() for s in j["steps"]]
    assert ".ci/run" in runs  # the tests job runs CI, which runs the local job run (slow tier)


def test_the_workflows_cli_is_one_the_bundle_accepts() -> None:
    wanted = SpecifierSet(resolved("dev").config["bundle"]["databricks_cli_version"].replace(" ", ""))
    uses: list[Any] = [
        s["uses"] for j in WORKFLOW["jobs"].values() for s in j["steps"] if "setup-cli" in s.get("uses", "")
    ]
    assert uses
    for use in uses:
        version = use.split("@v", 1)[1]
        assert version in wanted, f"{use} vs databricks_cli_version {wanted}"


def test_deploy_md_puts_the_key_into_each_targets_secret_scope() -> None:
    """The key is never in the bundle: DEPLOY.md has the admin put it into the scope the bundle declares, under
    the secret name the tasks read, and says that a new key rebuilds what holds pseudonyms."""
    from pipelines.config import PseudonymKeyConf

    scopes = {cmd[3]: cmd[4] for cmd in _code_commands("databricks secrets put-secret")}
    for target in ("dev", "prod"):
        name = resolved(target).resources["secret_scopes"]["pseudonym_key"]["name"]
        assert name.replace("someone", "<you>") in scopes, (name, scopes)
    assert set(scopes.values()) == {PseudonymKeyConf().secret}
    assert "Changing the key" in DEPLOY and "rebuilds them all" in DEPLOY
