from __future__ import annotations

import os
import shutil
import sysconfig
from collections.abc import Callable

import pytest

from tests.dockerd import swarm  # noqa: F401  (one session-wide engine for every test module)
from tests.engine import engine_bin, operator  # noqa: F401  (the real Pulumi engine)
from tests.harness import STACKS, ProgramRun, run_program

# Console scripts of the test dependencies (ruff, moto_server, aws, ...) sit beside the interpreter.
os.environ["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])

# Extra configuration that switches every optional part on, for property tests over "everything".
FULL = {
    "ownCore": "true",
    "ownShared": "true",
    "ownRunner": "true",
    "tunnelMode": "managed",
    "cloudflareAccountId": "0" * 31 + "a",
    "cloudflareZoneId": "0" * 31 + "b",
    "extraPublicHostnames": "www.nextcandle.io,stg.nextcandle.io",
    "runnerOwner": "nextcandle",
}
FULL_SECRETS = {"cloudflareApiToken": "cf-api-token-0123456789", "runnerAccessToken": "ghp_accesstoken0123456789"}

_cache: dict[str, ProgramRun] = {}


def cached_run(key: str, stack: str, config: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> ProgramRun:
    if key not in _cache:
        _cache[key] = run_program(stack, config, secrets)
    return _cache[key]


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest) -> ProgramRun:
    """The program as each stack file configures it."""
    return cached_run(request.param, request.param)


@pytest.fixture(params=[*STACKS, "full"])
def any_run(request: pytest.FixtureRequest) -> ProgramRun:
    """Each stack file, plus a dev stack with every optional component and the managed tunnel."""
    if request.param == "full":
        return cached_run("full", "dev", FULL, FULL_SECRETS)
    return cached_run(request.param, request.param)


@pytest.fixture
def full_run() -> ProgramRun:
    return cached_run("full", "dev", FULL, FULL_SECRETS)


def require_tool(name: str) -> Callable[[], str]:
    def find() -> str:
        path = shutil.which(name)
        if path is None:
            pytest.fail(f"{name} is not installed; .ci/run installs it (see README)")
        return path

    return find
