"""The Python language host scripts/engine.sh builds (scripts/engine/cli/language), under the real
CLI, on small programs that need no Docker: settings and secrets reach the program, a stack without
settings runs, a failing program fails the update, a missing virtualenv says how to make it, and
`pulumi install` makes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROGRAM = """import pulumi
import pulumi_random

config = pulumi.Config()
if config.get("fail"):
    raise RuntimeError("the program failed on purpose")
password = pulumi_random.RandomPassword("password", length=int(config.get("length") or 12))
pulumi.export("length", password.length)
pulumi.export("token", config.get_secret("token"))
"""


class Project:
    def __init__(self, engine_bin: Path, path: Path, virtualenv: str | None = None) -> None:
        self.path = path
        path.mkdir()
        options = f"  options:\n    toolchain: pip\n    virtualenv: {virtualenv}\n" if virtualenv else ""
        (path / "Pulumi.yaml").write_text(f"name: toy\nruntime:\n  name: python\n{options}")
        (path / "__main__.py").write_text(PROGRAM)
        (path / "requirements.txt").write_text("")
        (path / "state").mkdir()
        self.env = {
            **os.environ,
            # The host's python3 is this interpreter, which has the pinned SDKs.
            "PATH": os.pathsep.join([str(engine_bin), str(Path(sys.executable).parent), os.environ["PATH"]]),
            "PULUMI_BACKEND_URL": f"file://{path / 'state'}",
            "PULUMI_HOME": str(path / "home"),
            "PULUMI_CONFIG_PASSPHRASE": "language-host",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
        }

    def pulumi(self, *args: str, ok: bool = True) -> str:
        result = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=self.path, env=self.env,
                                capture_output=True, text=True, timeout=300)
        assert (result.returncode == 0) == ok, f"pulumi {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr


def test_a_stack_without_settings_runs_and_settings_and_secrets_reach_the_program(engine_bin: Path, tmp_path: Path) -> None:
    project = Project(engine_bin, tmp_path / "toy")
    project.pulumi("stack", "init", "toy")
    project.pulumi("up", "--yes")  # no settings at all: the SDK gets an empty object
    project.pulumi("config", "set", "length", "20")
    project.pulumi("config", "set", "--secret", "token", "s3cr3t-value")
    project.pulumi("up", "--yes")
    assert project.pulumi("stack", "output", "length").strip() == "20"
    assert project.pulumi("stack", "output", "token", "--show-secrets").strip() == "s3cr3t-value"
    assert "s3cr3t-value" not in project.pulumi("stack", "output"), "a secret setting stays secret"
    project.pulumi("preview", "--expect-no-changes")


def test_a_failing_program_fails_the_update_with_its_error(engine_bin: Path, tmp_path: Path) -> None:
    project = Project(engine_bin, tmp_path / "toy")
    project.pulumi("stack", "init", "toy")
    project.pulumi("config", "set", "fail", "yes")
    output = project.pulumi("up", "--yes", ok=False)
    assert "the program failed on purpose" in output


def test_a_missing_virtualenv_names_its_fix_and_pulumi_install_makes_it(engine_bin: Path, tmp_path: Path) -> None:
    project = Project(engine_bin, tmp_path / "toy", virtualenv="venv")
    project.pulumi("stack", "init", "toy")
    refused = project.pulumi("preview", ok=False)
    assert "the virtualenv" in refused and "pulumi install" in refused, refused
    project.pulumi("install")
    assert (project.path / "venv" / "bin" / "python").exists()
    # A fresh virtualenv without the SDK: the program cannot import pulumi, and says so.
    assert "It looks like the Pulumi SDK has not been installed" in project.pulumi("preview", ok=False)


def test_pulumi_about_reports_the_program_s_python(engine_bin: Path, tmp_path: Path) -> None:
    project = Project(engine_bin, tmp_path / "toy")
    project.pulumi("stack", "init", "toy")
    assert f"This project is written in python: executable='python3' version='{sys.version.split()[0]}'" in project.pulumi("about")
