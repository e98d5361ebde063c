"""The program type-checks (mypy strict): the typed *Args classes turn field-name mistakes into errors."""

import subprocess
import sys

from tests.harness import ROOT


def test_mypy_passes_on_the_program() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
