"""Test tiers by what a test needs: `mocks` (the program under Pulumi mocks, nothing else), `tools`
(a real program checks a generated file or runs a script: promtool, PostgreSQL, moto and the aws CLI,
mypy...), `swarm` and `engine`. conftest.py derives the markers from fixtures; a test that starts a
real program without a marker saying so fails, so the quick tier cannot quietly grow slow."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

import pytest

NEEDS = ("tools", "swarm", "engine")
RUNNING: list[Any] = []
"""The test being run (set by conftest.py)."""


def needs_tool(name: str) -> None:
    """Called where a real program starts: fails a test that is not marked as needing one."""
    item = RUNNING[-1] if RUNNING else None
    if item is not None and not any(item.get_closest_marker(tier) for tier in NEEDS):
        pytest.fail(f"{item.nodeid} runs {name}: mark it @pytest.mark.tools (`-m mocks` runs no real program)")


def require_tool(name: str) -> Callable[[], str]:
    """A finder for an installed program: skipped where it is missing, except under CI, which installs it."""

    def find() -> str:
        needs_tool(name)
        path = shutil.which(name)
        if path is None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{name} is not installed; scripts/run-tests.sh installs it (see README)")
            pytest.skip(f"{name} is not installed; scripts/run-tests.sh installs it")
        return path

    return find
