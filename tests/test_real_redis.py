"""A real redis-server (Debian's) started with exactly the arguments the program generates."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from names import ENVIRONMENTS
from tests.conftest import ProgramRuns, require_tool
from tests.harness import ProgramRun, free_port

pytestmark = pytest.mark.tools  # a real server

redis_server = require_tool("redis-server")
redis_cli = require_tool("redis-cli")
SECRETS = "/run/secrets/"



class Redis:
    def __init__(self, stack: str, run: ProgramRun, base: Path) -> None:
        self.service = run.service(f"{stack}_redis")
        container = self.service.inputs["taskSpec"]["containerSpec"]
        self.password = run.mounted_secret(self.service, "redis_password")
        (base / "redis_auth.conf").write_text(run.mounted_secret(self.service, "redis_auth.conf"))
        (base / "redis_password").write_text(self.password)
        (base / "data").mkdir()
        self.base, self.port = base, free_port()
        self.args = [a.replace(SECRETS, f"{base}/").replace("/data", str(base / "data")) for a in container["args"]]
        self.health = container["healthcheck"]["tests"]

    def start(self) -> subprocess.Popen[bytes]:
        assert self.args[0] == "redis-server"
        process = subprocess.Popen(
            [redis_server(), *self.args[1:], "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if self.cli("PING", auth=False).returncode == 0:
                return process
            time.sleep(0.05)
        process.kill()
        raise AssertionError("redis-server did not start with the generated arguments")

    def cli(self, *command: str, auth: bool = True) -> subprocess.CompletedProcess[str]:
        env = {"REDISCLI_AUTH": self.password} if auth else {}
        return subprocess.run([redis_cli(), "-p", str(self.port), *command], capture_output=True, text=True, env=env, timeout=10)

    def config(self, key: str) -> str:
        return self.cli("CONFIG", "GET", key).stdout.split("\n")[1]


@pytest.fixture(params=ENVIRONMENTS)
def redis(request: pytest.FixtureRequest, runs: ProgramRuns, tmp_path: Path) -> Iterator[tuple[str, Redis]]:
    server = Redis(request.param, runs(request.param), tmp_path)
    process = server.start()
    try:
        yield request.param, server
    finally:
        process.terminate()
        process.wait(10)


def test_password_comes_from_the_secret_file_and_is_required(redis: tuple[str, Redis]) -> None:
    _, server = redis
    assert "NOAUTH" in server.cli("SET", "k", "v", auth=False).stdout
    assert server.cli("SET", "k", "v").stdout.strip() == "OK"
    assert server.password not in " ".join(server.args)


def test_memory_and_persistence_policy(redis: tuple[str, Redis]) -> None:
    stack, server = redis
    maxmemory_mb = {"dev": 128, "stg": 128, "prod": 256}[stack]
    assert server.config("maxmemory") == str(maxmemory_mb * 1024 * 1024)
    assert server.config("maxmemory-policy") == "noeviction"
    assert server.config("appendonly") == "yes"
    # Redis's default is everysec already; prod sets it explicitly, as the seeds do.
    assert server.config("appendfsync") == "everysec"
    assert ("--appendfsync" in server.args) == (stack == "prod")


def test_writes_are_refused_not_evicted_when_full(redis: tuple[str, Redis]) -> None:
    _, server = redis
    server.cli("CONFIG", "SET", "maxmemory", "1")  # shrink at run time to see the policy act
    assert "OOM" in server.cli("SET", "another", "value").stdout


@pytest.mark.tools
def test_the_service_health_check_passes_against_it(redis: tuple[str, Redis]) -> None:
    _, server = redis
    kind, command = server.health
    assert kind == "CMD-SHELL"
    command = command.replace(SECRETS, f"{server.base}/").replace("redis-cli", f"{redis_cli()} -p {server.port}")
    assert subprocess.run(["sh", "-c", command], timeout=10).returncode == 0
