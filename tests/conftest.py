from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import time
import urllib.request
from collections.abc import Iterator

import pytest

from names import ENVIRONMENTS, PLATFORM, STACKS
from tests.cluster import cluster  # noqa: F401  (three nodes for the placement tests)
from tests.dockerd import swarm  # noqa: F401  (one session-wide engine for every test module)
from tests.engine import engine_bin, operator  # noqa: F401  (the real Pulumi engine)
from tests.harness import ProgramRun, free_port, run_program
from tests.tiers import RUNNING, needs_tool, require_tool  # noqa: F401  (require_tool: for the test modules)

# Console scripts of the test dependencies (ruff, moto_server, aws, ...) sit beside the interpreter.
os.environ["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])

# Extra configuration that switches every optional part of the platform on, for property tests over "everything".
FULL = {
    "runnerEnabled": "true",
    "tunnelMode": "managed",
    "cloudflareAccountId": "0" * 31 + "a",
    "cloudflareZoneId": "0" * 31 + "b",
    "extraPublicHostnames": "www.nextcandle.io,stg.nextcandle.io",
    "runnerOwner": "nextcandle",
}
FULL_SECRETS = {"cloudflareApiToken": "cf-api-token-0123456789", "runnerAccessToken": "ghp_accesstoken0123456789"}


class ProgramRuns:
    """The program under mocks, run once per distinct stack and configuration in a test session."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str, str], ProgramRun] = {}

    def __call__(self, stack: str, config: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> ProgramRun:
        key = (stack, repr(sorted((config or {}).items())), repr(sorted((secrets or {}).items())))
        if key not in self._runs:
            self._runs[key] = run_program(stack, config, secrets)
        return self._runs[key]

    @property
    def full(self) -> ProgramRun:
        """The platform with every optional part: managed tunnel, runners, extra hostnames."""
        return self(PLATFORM, FULL, FULL_SECRETS)


@pytest.fixture(scope="session")
def runs() -> ProgramRuns:
    return ProgramRuns()


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest, runs: ProgramRuns) -> ProgramRun:
    """The program as each stack file configures it."""
    return runs(request.param)


@pytest.fixture(params=ENVIRONMENTS)
def env_run(request: pytest.FixtureRequest, runs: ProgramRuns) -> ProgramRun:
    """Each environment stack as its stack file configures it."""
    return runs(request.param)


@pytest.fixture(params=[*STACKS, "full"])
def any_run(request: pytest.FixtureRequest, runs: ProgramRuns) -> ProgramRun:
    """Each stack file, plus the platform with every optional component and the managed tunnel."""
    return runs.full if request.param == "full" else runs(request.param)


@pytest.fixture
def full_run(runs: ProgramRuns) -> ProgramRun:
    return runs.full


@pytest.fixture
def platform_run(runs: ProgramRuns) -> ProgramRun:
    """The platform as its stack file configures it."""
    return runs(PLATFORM)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by what they need, so `-m mocks` runs the quick ones alone: a real Docker engine
    (swarm), the real Pulumi engine (engine), or a real tool checking a generated file (tools)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & {"engine_bin", "operator", "deployed"}:
            item.add_marker(pytest.mark.engine)
        if fixtures & {"swarm", "cluster"}:
            item.add_marker(pytest.mark.swarm)
        if fixtures & {"s3", "off_site_s3"}:  # moto and the aws CLI
            item.add_marker(pytest.mark.tools)
        if not any(item.get_closest_marker(name) for name in ("engine", "swarm", "tools")):
            item.add_marker(pytest.mark.mocks)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    RUNNING.append(item)
    yield
    RUNNING.pop()


def _moto_server() -> Iterator[str]:
    """A real S3 API (moto), on its own port: the aws CLI our backup scripts call talks to it."""
    needs_tool("moto_server")
    server = shutil.which("moto_server")
    if server is None or shutil.which("aws") is None:
        pytest.fail("moto_server and aws are installed from requirements-dev.txt")
    port = free_port()
    process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def s3() -> Iterator[str]:
    """Stands in for the platform's object store."""
    yield from _moto_server()


@pytest.fixture(scope="session")
def off_site_s3() -> Iterator[str]:
    """Stands in for an off-site S3 service (backupS3Endpoint)."""
    yield from _moto_server()
