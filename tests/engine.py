"""The real Pulumi engine for tests: the CLI and provider plugins from scripts/engine.sh, driven
through the operator command (`python -m ops`, the Automation API path users take), with a local
file backend and a copy of the project's settings files in a temporary folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from tests.harness import ROOT

# The platform with every optional part that needs no Cloudflare API: tunnel token, runners, alert webhook.
# The test swarm is one manager: the runners go there, by the setting a single-node swarm needs.
PLATFORM_CONFIG = {"runnerEnabled": "true", "runnerOwner": "nextcandle", "tunnelMode": "token", "runnerOnManagers": "true"}
PLATFORM_SECRETS = {
    "runnerAccessToken": "ghp_enginetest0123456789",
    "cloudflareTunnelToken": "eyJhIjoiZW5naW5lLXRlc3QifQ",
    "alertWebhookUrl": "https://hooks.example.com/services/T0/B0/x",
}

_STEP = re.compile(r"^\s+\[\s*\d+\]\s+(\S+)\s+(\S+)\s+(\S+)$")


@pytest.fixture(scope="session")
def engine_bin() -> Path:
    """The engine scripts/run-tests.sh provided (NEXTCANDLE_ENGINE_BIN); under CI it must be there."""
    found = os.environ.get("NEXTCANDLE_ENGINE_BIN")
    if found and (Path(found) / "pulumi").exists():
        return Path(found)
    if os.environ.get("CI") == "true":
        pytest.fail("CI runs the engine tests: scripts/run-tests.sh builds the engine and sets NEXTCANDLE_ENGINE_BIN")
    pytest.skip("no Pulumi engine: bash scripts/run-tests.sh builds one when Go is installed (scripts/engine.sh)")


@dataclass
class Operator:
    """Runs `python -m ops` and the pinned `pulumi` CLI against one temporary project and backend."""

    project: Path
    env: dict[str, str]
    program: Path = ROOT
    """The checkout whose `python -m ops` runs (the migration test runs an older one)."""

    def ops(self, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "ops", *args], cwd=self.program, env={**self.env, **(env or {})},
                                capture_output=True, text=True, timeout=900)
        if ok:
            assert result.returncode == 0, f"ops {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def pulumi(self, *args: str) -> str:
        result = subprocess.run(["pulumi", *args, "--cwd", str(self.project), "--non-interactive"], env=self.env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"pulumi {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def set_config(self, stack: str, key: str, value: str, secret: bool = False) -> None:
        self.pulumi("config", "set", *(["--secret"] if secret else []), f"nextcandle:{key}", value, "-s", stack)

    def output(self, stack: str, name: str) -> str:
        return self.pulumi("stack", "output", name, "--show-secrets", "-s", stack).strip()

    def resources(self, stack: str) -> list[dict[str, Any]]:
        state = json.loads(self.pulumi("stack", "export", "-s", stack))
        resources: list[dict[str, Any]] = state["deployment"]["resources"]
        return resources

    def urn(self, stack: str, typ: str, swarm_name: str) -> str:
        (found,) = [r["urn"] for r in self.resources(stack) if r["type"] == typ and r.get("outputs", {}).get("name") == swarm_name]
        return str(found)


def init_platform(operator: Operator, without: tuple[str, ...] = ()) -> None:
    """Create the platform stack with what an operator sets by hand: its optional parts and tokens
    (`without` those an older program does not know). Environments need nothing set by hand: they
    read the platform through their StackReference."""
    operator.pulumi("stack", "init", "platform", "--secrets-provider", "passphrase")
    for key, value in PLATFORM_CONFIG.items():
        if key not in without:
            operator.set_config("platform", key, value)
    for key, value in PLATFORM_SECRETS.items():
        operator.set_config("platform", key, value, secret=True)


def steps(output: str) -> set[tuple[str, str, str]]:
    """(operation, type, resource name) for every step `ops up/preview` printed."""
    return {(m.group(1), m.group(2), m.group(3)) for line in output.splitlines() if (m := _STEP.match(line))}


ENCRYPTION_KEYS = ("encryptionsalt", "encryptedkey", "secretsprovider")
"""What `pulumi` writes into a stack file when it first encrypts with a passphrase or key."""


def copy_without_encryption_state(source: Path, target: Path) -> None:
    """A stack file as the tests need it: a deployment in the same checkout (scripts/deploy-dev.sh)
    writes its own salt and may add secrets of its own passphrase; neither is the tests' to read."""
    document = yaml.safe_load(source.read_text()) or {}
    if not any(key in document for key in ENCRYPTION_KEYS) and "secure:" not in source.read_text():
        shutil.copy(source, target)
        return
    for key in ENCRYPTION_KEYS:
        document.pop(key, None)
    config = document.get("config") or {}
    for key in [k for k, v in config.items() if isinstance(v, dict) and "secure" in v]:
        del config[key]
    target.write_text(yaml.safe_dump(document, sort_keys=False))


def make_operator(engine_bin: Path, docker_host: str, base: Path, source: Path = ROOT) -> Operator:
    """An operator with its own copy of the settings files (from `source`), file backend and Pulumi
    home under base."""
    project = base / "project"
    project.mkdir(parents=True)
    for settings_file in source.glob("Pulumi*.yaml"):
        copy_without_encryption_state(settings_file, project / settings_file.name)
    (base / "state").mkdir()
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(engine_bin), os.environ["PATH"]]),
        "NEXTCANDLE_ENGINE_BIN": str(engine_bin),
        "NEXTCANDLE_PROJECT_DIR": str(project),
        "PULUMI_BACKEND_URL": f"file://{base / 'state'}",
        "PULUMI_HOME": str(base / "pulumi-home"),
        "PULUMI_CONFIG_PASSPHRASE": "engine-tests",
        # No state backup after every `ops up` (test_engine.py backs the state up and restores it once).
        "NEXTCANDLE_STATE_BACKUP": "off",
        # Nor the policy preview before every `ops up` (test_engine.py runs one with it).
        "NEXTCANDLE_POLICY": "off",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "DOCKER_HOST": docker_host,
        "NO_COLOR": "1",
    }
    return Operator(project, env)


@dataclass
class Checkout:
    """A user's checkout of the program driven by the plain `pulumi` CLI, as users and
    .github/workflows/preview.yml type it; its stack files are an operator's, synced both ways."""

    path: Path
    operator: Operator

    @classmethod
    def of(cls, operator: Operator, base: Path) -> Checkout:
        path = base / "checkout"
        shutil.copytree(ROOT, path, ignore=shutil.ignore_patterns(".git", "venv", ".venv", "__pycache__", ".*_cache", ".pulumi-state", "Pulumi.*.yaml"))
        # The virtualenvs as the preview workflow makes them; from this Python's packages, so the
        # pinned requirements are already satisfied and nothing is downloaded.
        for venv, requirements in (("venv", "requirements.txt"), ("policy/venv", "policy/requirements.txt")):
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path / venv)], check=True, timeout=120)
            subprocess.run([str(path / venv / "bin/pip"), "install", "-q", "-r", str(path / requirements)], check=True, timeout=300)
        return cls(path, operator)

    def pulumi(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        """`pulumi <args>` in the checkout, with the operator's stack files and state; it must
        succeed (or, with ok=False, fail)."""
        for stack_file in self.operator.project.glob("Pulumi.*.yaml"):
            shutil.copy(stack_file, self.path / stack_file.name)
        env = {k: v for k, v in self.operator.env.items() if k != "NEXTCANDLE_PROJECT_DIR"}
        try:
            result = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=self.path, env=env, capture_output=True, text=True, timeout=600)
        finally:
            for stack_file in self.path.glob("Pulumi.*.yaml"):
                shutil.copy(stack_file, self.operator.project / stack_file.name)
        assert (result.returncode == 0) == ok, f"pulumi {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result


@pytest.fixture(scope="module")
def operator(engine_bin: Path, swarm: Any, tmp_path_factory: pytest.TempPathFactory) -> Operator:
    return make_operator(engine_bin, swarm.docker_host, tmp_path_factory.mktemp("engine"))


def assert_settled(operator: Operator, stack: str, swarm: Any) -> None:
    """A preview of `stack` shows no change, except services Swarm rolled back by itself: no image
    can be pulled here, so an update that restarts tasks fails and Swarm (failure_action: rollback)
    may restore the previous spec before the provider reads it back. With images that cannot happen."""
    preview = operator.ops("preview", stack, "--expect-no-changes", ok=False)
    if preview.returncode == 0:
        return
    names = {r["urn"].rsplit("::", 1)[-1]: r.get("outputs", {}).get("name") for r in operator.resources(stack)}
    for op, kind, name in steps(preview.stdout):
        service = swarm.services.get(names.get(name)) if kind == "Service" and op == "update" and names.get(name) else None
        state = ((service.attrs.get("UpdateStatus") or {}).get("State", "")) if service else ""
        assert state.startswith("rollback"), f"{op} {kind} {name} (Swarm update state {state!r}):\n{preview.stdout}\n{preview.stderr}"


def running_tasks(swarm: Any) -> dict[str, set[str]]:
    """Each service's running tasks, by id: an id that changes is a task Swarm restarted."""
    return {s.name: {t["ID"] for t in s.tasks({"desired-state": "running"}) if t["Status"]["State"] == "running"}
            for s in swarm.services.list()}


def _inspect(engines: Sequence[Any], container_id: str) -> dict[str, Any] | None:
    """A container's details from whichever node's engine runs it."""
    for engine in engines:
        with contextlib.suppress(docker.errors.NotFound):
            found: dict[str, Any] = engine.api.inspect_container(container_id)
            return found
    return None


def unhealthy_services(swarm: Any, names: tuple[str, ...] = (), nodes: Sequence[Any] = ()) -> dict[str, str]:
    """Services (all, or those named) whose desired tasks are not all running with a healthy container,
    and why; `nodes` are the engines of every node (default: the swarm's one)."""
    engines = list(nodes) or [swarm]
    problems: dict[str, str] = {}
    for service in swarm.services.list():
        if names and service.name not in names:
            continue
        mode = service.attrs["Spec"]["Mode"]
        wanted = mode["Replicated"]["Replicas"] if "Replicated" in mode else len(swarm.nodes.list())
        tasks = service.tasks({"desired-state": "running"})
        healthy = 0
        for task in tasks:
            container_id = task["Status"].get("ContainerStatus", {}).get("ContainerID")
            if task["Status"]["State"] == "running" and container_id:
                container = _inspect(engines, container_id)  # None: replaced meanwhile
                healthy += bool(container) and (container["State"].get("Health") or {}).get("Status") == "healthy"
        if healthy < wanted:
            last = max(service.tasks(), key=lambda t: t["UpdatedAt"], default={"Status": {}})["Status"]
            problems[service.name] = f"{healthy}/{wanted} healthy; last task {last.get('State')}: {last.get('Err') or last.get('Message')}"
    return problems


def wait_until_healthy(swarm: Any, timeout: float = 600, names: tuple[str, ...] = (), nodes: Sequence[Any] = ()) -> dict[str, str]:
    """Wait for every service (or those named) to be healthy; return what is still not after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (problems := unhealthy_services(swarm, names, nodes)) and time.monotonic() < deadline:
        time.sleep(5)
    return problems


def exec_in(swarm: Any, service: str, command: str, nodes: Sequence[Any] = ()) -> str:
    """Run a shell command in a running container of `service` (as the image's user), on whichever
    of `nodes` (default: the swarm's one engine) runs it; return its output."""
    filters = {"label": f"com.docker.swarm.service.name={service}", "status": "running"}
    (container,) = [c for engine in (list(nodes) or [swarm]) for c in engine.containers.list(filters=filters)][:1]
    result = container.exec_run(["sh", "-c", command])
    assert result.exit_code == 0, f"{service}: {command}: {result.output.decode(errors='replace')}"
    return str(result.output.decode())
