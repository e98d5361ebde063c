"""GitHub workflows: valid against the GitHub workflow schema, and doing what the README promises."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from names import STACKS
from tests.harness import ROOT
from tests.tiers import require_tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("check-jsonschema")()
    return subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", *map(str, files)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.tools
def test_workflows_pass_the_github_workflow_schema() -> None:
    assert {w.name for w in WORKFLOWS} == {"backup-image.yml", "drift.yml", "preview.yml", "tests.yml"}
    result = check_jsonschema(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.tools
def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = yaml.safe_load((ROOT / ".github/workflows/tests.yml").read_text())
    broken["jobs"]["tests"]["step"] = broken["jobs"]["tests"].pop("steps")
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert check_jsonschema(tmp_path / "broken.yml").returncode != 0


def test_preview_runs_each_stack_with_the_policy_pack_and_comments() -> None:
    preview = yaml.safe_load((ROOT / ".github/workflows/preview.yml").read_text())
    assert "pull_request" in preview[True]  # YAML reads the key `on` as True
    job = preview["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == list(STACKS)
    assert preview["permissions"]["pull-requests"] == "write"
    (action,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert "command" not in action["with"], "the action installs the CLI; the preview is the plain command"
    assert action["with"]["pulumi-version"] == _pin("pulumi"), "the CLI the program's SDK matches"
    (preview_step,) = [s for s in job["steps"] if s.get("name") == "pulumi preview"]
    # The command the README gives and the engine tests type (test_engine.py), with bash's pipefail.
    assert preview_step["run"].startswith('pulumi preview -s "$STACK" --policy-pack policy ') and preview_step["shell"] == "bash"
    assert "pulumi preview -s <stack> --policy-pack policy" in (ROOT / "README.md").read_text()
    comment = "\n".join(s.get("run", "") for s in job["steps"] if "COMMENTS_URL" in s.get("env", {}))
    assert "preview.txt" in comment and "GITHUB_STEP_SUMMARY" in comment
    assert "PULUMI_CONFIG_PASSPHRASE" in job["env"]
    # Secrets per stack, from the stack's own GitHub environment (prod's waits for a reviewer).
    assert job["environment"] == "preview-${{ matrix.stack }}"
    assert "pull_request_target" not in preview[True], "never a branch's code with the base repository's secrets"


def _pin(package: str) -> str:
    (version,) = re.findall(rf"^{package}==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    return version


def test_the_policy_pack_runs_on_the_program_s_pulumi() -> None:
    assert f"pulumi=={_pin('pulumi')}" in (ROOT / "policy/requirements.txt").read_text().splitlines()


def test_tests_workflow_runs_the_readme_test_command() -> None:
    tests = yaml.safe_load((ROOT / ".github/workflows/tests.yml").read_text())
    commands = [s["run"] for s in tests["jobs"]["tests"]["steps"] if "run" in s]
    assert "bash scripts/run-tests.sh" in commands
    assert "bash scripts/run-tests.sh" in (ROOT / "README.md").read_text()
    assert "scripts/run-tests.sh" in (ROOT / ".ci" / "run").read_text()


def test_preview_runs_on_our_own_runners() -> None:
    """Preview needs the swarm's Docker API: the job must land on the runners RunnerStack registers."""
    from components.settings import declared_config

    preview = yaml.safe_load((ROOT / ".github/workflows/preview.yml").read_text())
    runner_labels = set(declared_config()["runnerLabels"]["default"].split(","))
    assert set(preview["jobs"]["preview"]["runs-on"]) <= runner_labels


def test_the_backup_image_is_built_from_main_on_github_machines_under_its_pin() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/backup-image.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-24.04" and workflow[True]["push"]["branches"] == ["main"]  # `on:` parses as True
    steps = "\n".join(step.get("run", "") for step in job["steps"])
    assert "scripts/backup_image.py check" in steps and "docker push" in steps


def test_every_action_is_pinned_by_commit_with_its_version_beside_it() -> None:
    """A tag can be moved to other code; a commit cannot. The comment says which release it is."""
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            if line.strip().startswith(("- uses:", "uses:")):
                reference = line.split("uses:", 1)[1].strip()
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", reference), f"{workflow.name}: {reference}"


def test_drift_runs_daily_and_fails_on_drift() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/drift.yml").read_text())
    assert workflow[True]["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"]  # `on:` parses as True
    (job,) = workflow["jobs"].values()
    assert job["steps"][-1]["run"] == "venv/bin/python -m ops drift"


RENOVATE = ROOT / "renovate.json"


def test_renovate_proposes_every_pinned_image_but_our_own() -> None:
    from components import images

    config = json.loads(RENOVATE.read_text())
    (manager,) = config["customManagers"]
    pattern = re.compile(manager["matchStrings"][0].replace("(?<", "(?P<"))  # JavaScript's named groups
    found = {f"{m['depName']}:{m['currentValue']}" for m in pattern.finditer((ROOT / "components/images.py").read_text())}
    assert found == set(images.CONTRACTS)
    disabled = {name for rule in config["packageRules"] if rule.get("enabled") is False for name in rule["matchPackageNames"]}
    assert disabled == {images.POSTGRES_BACKUP.rsplit(":", 1)[0]}


@pytest.mark.tools
def test_renovate_config_passes_renovates_schema() -> None:
    tool = require_tool("check-jsonschema")()
    result = subprocess.run([tool, "--builtin-schema", "vendor.renovate", str(RENOVATE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
