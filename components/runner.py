"""RunnerStack: self-hosted GitHub Actions runners, with a lifecycle of their own.

Creates (stack `runner`): the runner token as a Docker secret, `runner_github-runner` replicas on
worker nodes labelled nextcandle.ci=true (managers only with runnerOnManagers), without the node's
Docker unless runnerDockerAccess, their network `runner_internal` (environments with runnerDatabaseAccess put their databases
on it, so jobs reach dev_postgres by name) and the build-cache volume `runner_work`. The token is the only input of these resources that changes often (a registration token
expires after an hour), so updating it rolls the runners and nothing else.

Runners are ephemeral by default: each takes one job, deregisters and exits, and Swarm starts a
fresh one, so dead registrations do not pile up. An ephemeral runner registers again on every
restart, which needs a personal access token (runnerAccessToken); a registration token works only
for its first hour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi

from components import images
from components.settings import Resources, RunnerSettings
from components.swarm import (
    Healthcheck,
    Mounted,
    ServiceSpec,
    StackScope,
    bind_mount,
    volume_mount,
)
from names import CI_NODE_LABEL, DOCKER_SOCKET, GITHUB_RUNNER, RUNNER, RUNNER_NETWORK

STACK = RUNNER
WORK_VOLUME = f"{RUNNER}_work"
WORK_DIR = f"/var/lib/docker/volumes/{WORK_VOLUME}/_data"
"""The build-cache volume (the seeds' runner-work), mounted at its own path on the node: a job's
container actions bind their workspace from the node's Docker, which must find it at the same path
(Docker's default data-root)."""
# A reservation is a guarantee the scheduler keeps free: what an idle runner needs, not a job's burst (the limit).
RUNNER_RESOURCES = Resources(0.10, 2.00, 1024, 4096)
TOKEN_FILE = "/run/secrets/github_token"
RUNNER_HEALTHCHECK = Healthcheck(["CMD-SHELL", "grep -qs 'Runner[.]Listener' /proc/[0-9]*/cmdline"], start_period="120s")
"""The listener runs. The image has no procps (pgrep); the brackets keep grep from matching its own command line."""


@dataclass(frozen=True, kw_only=True)
class RunnerStackArgs:
    settings: RunnerSettings
    scope: StackScope


def runner_command(token_variable: str) -> list[str]:
    """The image reads its token from the environment only: export it from the secret file at start."""
    return [
        "/bin/bash",
        "-c",
        f'export {token_variable}="$(cat {TOKEN_FILE})" && exec /entrypoint.sh ./bin/Runner.Listener run --startuptype service',
    ]


def runner_env(settings: RunnerSettings) -> dict[str, str]:
    """The image's settings: where it registers, its labels, its name and work directory."""
    registration = {"RUNNER_SCOPE": "org", "ORG_NAME": settings.owner} if settings.scope == "org" else {
        "RUNNER_SCOPE": "repo", "REPO_URL": settings.owner,
    }
    env = {
        **registration,
        "LABELS": ",".join(settings.labels),
        # One name per node and slot (Swarm expands the templates), so each runner keeps its own
        # work directory, and its cache, across restarts; the image registers with --replace.
        "RUNNER_NAME": "nextcandle-{{.Node.Hostname}}-{{.Task.Slot}}",
        "RANDOM_RUNNER_SUFFIX": "false",
        "RUNNER_WORKDIR_ROOT": WORK_DIR,
        # An updating runner exits and Swarm restarts the same pin, in a loop (myoung34 #251): the pin follows releases.
        "DISABLE_AUTO_UPDATE": "true",
    }
    if settings.ephemeral:
        env["EPHEMERAL"] = "1"
    return env


def runner_placement(settings: RunnerSettings) -> list[str]:
    if settings.on_managers:
        return ["node.role==manager"]
    return ["node.role==worker", f"node.labels.{CI_NODE_LABEL}==true"]


class RunnerStack(pulumi.ComponentResource):
    def __init__(self, name: str, args: RunnerStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nextcandle:runner:RunnerStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        # settings.stopped stops the runners alone; ephemeral runners restart after every job, without limit.
        self._scope = replace(
            args.scope.of(STACK),
            stopped=args.scope.stopped or settings.stopped,
            restart_max_attempts=0 if settings.ephemeral else args.scope.restart_max_attempts,
        )
        if settings.access_token is not None:
            token, variable = settings.access_token, "ACCESS_TOKEN"
        elif settings.registration_token is not None:
            token, variable = settings.registration_token, "RUNNER_TOKEN"
        else:
            raise ValueError("RunnerStack needs a token; settings validation requires one")

        network = self._scope.network(f"{name}-internal", RUNNER_NETWORK, child)
        self.network_id = network.id
        work = self._scope.cache_volume(f"{name}-work", WORK_VOLUME, child)
        token_secret = self._scope.secret(f"{name}-token", token, child)
        env = runner_env(settings)
        self.runners = self._scope.service(
            f"{name}-github-runner",
            ServiceSpec(
                name=GITHUB_RUNNER,
                image=images.GITHUB_RUNNER,
                commands=runner_command(variable),
                env=env,
                healthcheck=RUNNER_HEALTHCHECK,
                resources=RUNNER_RESOURCES,
                replicas=settings.replicas,
                # Stop first: a slot's new task takes its predecessor's name and work directory.
                stateful=True,
                networks=[network.id],
                secrets=[Mounted(token_secret, "github_token", mode=0o400)],
                # A job runs whatever its repository says: on CI workers by default, away from the
                # managers (which hold every stack's secrets), and with the node's Docker (root on
                # that node) only when runnerDockerAccess opts in (README, "Threat model").
                mounts=[
                    *([bind_mount(DOCKER_SOCKET, DOCKER_SOCKET, read_only=False)] if settings.docker_access else []),
                    volume_mount(work.name, WORK_DIR),
                ],
                placement=runner_placement(settings),
                # An ephemeral runner exits 0 after its job; Swarm must start a new one.
                restart_condition="any" if settings.ephemeral else "on-failure",
                stop_grace_period="5m",
            ),
            child,
        )
        self.register_outputs({"replicas": settings.replicas})
