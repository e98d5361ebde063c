"""What must hold before Pulumi can deploy: Docker, an active swarm on a manager, the Pulumi CLI,
and a usable state backend."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops.backend import Backend, OpsError
from ops.engine import Engine


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def docker_client() -> Any:
    import docker

    return docker.from_env()


def check_docker(connect: Callable[[], Any]) -> tuple[Check, Any]:
    try:
        client = connect()
        client.ping()
        version = client.version().get("Version", "?")
    except Exception:  # the SDK raises several types for an absent daemon
        address = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return Check("docker", False, f"Docker is not reachable at {address}", "start Docker, or set DOCKER_HOST"), None
    return Check("docker", True, f"Docker {version}"), client


def check_swarm(client: Any, init: bool) -> Check:
    swarm = client.info().get("Swarm", {})
    state = swarm.get("LocalNodeState", "inactive")
    if state == "active" and swarm.get("ControlAvailable"):
        return Check("swarm", True, f"swarm active, {swarm.get('Managers', '?')} manager(s), {swarm.get('Nodes', '?')} node(s)")
    if state == "active":
        return Check("swarm", False, "this node is a swarm worker", "run on a manager, or set DOCKER_HOST to one")
    if not init:
        return Check("swarm", False, "swarm is not active", "run `docker swarm init` (or `python -m ops up`, which does it)")
    try:
        client.swarm.init()
    except Exception as error:  # several addresses, or none but loopback: Docker cannot choose one to advertise
        if "advertise" not in str(error) and "could not find the system's IP address" not in str(error):
            raise
        client.swarm.init(advertise_addr="127.0.0.1")
    return Check("swarm", True, "swarm initialised on this node (docker swarm init)")


PULUMI_FIX = "install Go, or the Pulumi CLI version in requirements.txt"


def check_pulumi(locate: Callable[[], Engine] = Engine.locate) -> tuple[Check, str | None]:
    """The pinned CLI: installed, downloaded or built from Go modules by scripts/engine.sh."""
    try:
        engine = locate()
    except OpsError as error:
        return Check("pulumi", False, str(error), PULUMI_FIX), None
    try:
        version = engine.command().version
    except Exception as error:  # not executable, or older than the Automation API accepts
        return Check("pulumi", False, f"{engine.pulumi}: {error}", PULUMI_FIX), None
    return Check("pulumi", True, f"Pulumi CLI v{version} ({engine.bin_dir})"), str(engine.pulumi)


def check_backend(backend: Backend, pulumi: str | None) -> Check:
    """Credentials and passphrase are there, and (with the CLI) `pulumi whoami` reaches the backend."""
    problems = backend.problems()
    if problems:
        what, fix = problems[0].split(": ", 1)
        return Check("backend", False, f"{backend.url}: {what}", fix)
    if pulumi is None:
        return Check("backend", True, f"{backend.url} (not checked without the Pulumi CLI)")
    env = {**os.environ, **backend.env()}
    whoami = subprocess.run([pulumi, "whoami", "--verbose"], capture_output=True, text=True, timeout=60, env=env)
    if whoami.returncode != 0:
        reason = (whoami.stderr or whoami.stdout).strip().splitlines()[-1:] or ["no answer"]
        return Check("backend", False, f"{backend.url}: {reason[0]}", "check the URL, the credentials and that the bucket exists")
    user = next((line.split(":", 1)[1].strip() for line in whoami.stdout.splitlines() if line.startswith("User:")), "?")
    return Check("backend", True, f"{backend.url} (logged in as {user})")


def run_checks(backend: Backend, init_swarm: bool, connect: Callable[[], Any] = docker_client) -> tuple[list[Check], Any]:
    """Every check; the swarm is initialised (init_swarm) only once everything else has passed, so a
    failed run leaves the machine as it found it. Docker is checked while the CLI answers."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        docker_checked = pool.submit(check_docker, connect)
        pulumi_check, pulumi = check_pulumi()
        others = [pulumi_check, check_backend(backend, pulumi)]
        docker_check, client = docker_checked.result()
    if client is None:
        return [docker_check, *others], client
    swarm_check = check_swarm(client, init=False)
    if init_swarm and not swarm_check.ok and all(c.ok for c in others) and "not active" in swarm_check.detail:
        swarm_check = check_swarm(client, init=True)
    return [docker_check, swarm_check, *others], client
