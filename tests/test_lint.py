"""Static checks that run with the tests: mypy (strict) on the program, ruff on everything."""

import shutil
import subprocess
import sys

import pytest

from tests.harness import ROOT

pytestmark = pytest.mark.tools  # mypy and ruff: about a minute on two cores


def test_mypy_passes_on_the_program() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_passes() -> None:
    if shutil.which("ruff") is None:
        pytest.fail("ruff is installed from requirements-dev.txt")
    result = subprocess.run(["ruff", "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
