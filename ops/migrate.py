"""Move a deployment of the three-stack layout (the dev stack owned the platform) to the platform stack,
without re-creating anything: the platform's resources move in Pulumi's state (`pulumi state move`)
with their settings and secrets; the swarm is not touched. `ops up` afterwards changes objects in
place (labels), and replaces no volume, secret or password."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, TextIO

from components.settings import declared_config
from components.settings_table import PLATFORM_ONLY_KEYS
from names import ENVIRONMENTS, PLATFORM, PROJECT, project_dir
from ops.backend import Backend, OpsError
from ops.deploy import deployed, select_stack, workspace_options

PLATFORM_COMPONENTS = (
    "nextcandle:core:CoreStack",
    "nextcandle:observability:SharedObservability",
    "nextcandle:shared_services:SharedServices",
    "nextcandle:runner:RunnerStack",
)
RETIRED_KEYS = ("ownCore", "ownShared", "ownRunner", "protectSharedData", "allowPublishedDatabasePorts")
OLD_BACKUP_ENDPOINT = "http://shared_seaweedfs:8333"
"""The old default of backupS3Endpoint: the platform's object storage, now read from the platform stack."""


def platform_urns(resources: list[dict[str, Any]]) -> list[str]:
    """The platform's components in a stack's state (their children move with them)."""
    return [r["urn"] for r in resources if r["type"] in PLATFORM_COMPONENTS]


def _key(name: str) -> str:
    return f"{PROJECT}:{name}"


def _set_in_stack_file(stack: Any) -> dict[str, Any]:
    """The stack's own settings: the CLI also lists Pulumi.yaml's defaults, which need no moving."""
    defaults = {name: str(spec["default"]).lower() if isinstance(spec["default"], bool) else str(spec["default"])
                for name, spec in declared_config().items()}
    return {key: value for key, value in stack.get_all_config().items()
            if value.secret or defaults.get(key.removeprefix(f"{PROJECT}:")) != value.value}


def move_settings(source: Any, platform: Any, out: TextIO) -> None:
    """Platform settings and secrets go from the old owner to the platform stack; retired keys go."""
    from pulumi import automation as auto

    config = _set_in_stack_file(source)
    for name in PLATFORM_ONLY_KEYS:  # plain and secret
        if _key(name) in config:
            platform.set_config(_key(name), config[_key(name)])
            source.remove_config(_key(name))
            print(f"  setting {name} moved to {PLATFORM}", file=out)
    if config.get(_key("ownRunner"), auto.ConfigValue("false")).value == "true":
        platform.set_config(_key("runnerEnabled"), auto.ConfigValue("true"))
        # The old layout ran them on managers with the node's Docker: kept, said, for the operator to narrow.
        for name in ("runnerOnManagers", "runnerDockerAccess"):
            platform.set_config(_key(name), auto.ConfigValue("true"))
        print("  runners kept on managers with the Docker socket, as before (runnerOnManagers, runnerDockerAccess): "
              "label a worker nextcandle.ci=true and remove both (README, \"Threat model\")", file=out)
    if config.get(_key("protectSharedData"), auto.ConfigValue("true")).value == "false":
        platform.set_config(_key("protectData"), auto.ConfigValue("false"))
    for name in RETIRED_KEYS:
        if _key(name) in config:
            source.remove_config(_key(name))


def forget_copied_backup_keys(environment: Any, out: TextIO) -> None:
    """Backup keys copied by hand from dev's outputs: the platform stack provides them now."""
    config = _set_in_stack_file(environment)
    endpoint = config.get(_key("backupS3Endpoint"))
    if endpoint is not None and endpoint.value not in ("", OLD_BACKUP_ENDPOINT):
        return  # an off-site target keeps its own keys
    for name in ("backupS3Endpoint", "backupS3AccessKey", "backupS3SecretKey"):
        if _key(name) in config:
            environment.remove_config(_key(name))
            print(f"  {environment.name}: {name} removed (read from the {PLATFORM} stack now)", file=out)


def migrate(source_name: str, backend: Backend, out: TextIO = sys.stdout) -> None:
    live = deployed(backend)
    if source_name not in live:
        raise OpsError(f"stack {source_name} holds no resources in {backend.url}; nothing to move")
    if PLATFORM in live:
        raise OpsError(f"the {PLATFORM} stack already holds {live[PLATFORM]} resources; nothing was moved")
    source = select_stack(source_name, backend)
    urns = platform_urns(source.export_stack().deployment.get("resources") or [])
    if not urns:
        raise OpsError(f"stack {source_name} holds no platform component; nothing to move")
    platform = select_stack(PLATFORM, backend)
    move_settings(source, platform, out)
    options = workspace_options(backend)
    command = ["pulumi", "state", "move", "--source", source_name, "--dest", PLATFORM, "--yes", "--non-interactive", *urns]
    moved = subprocess.run(command, cwd=project_dir(), env={**os.environ, **options.env_vars}, capture_output=True, text=True)
    if moved.returncode != 0:
        raise OpsError(f"pulumi state move failed: {moved.stderr.strip() or moved.stdout.strip()}")
    print(f"  moved {len(urns)} platform components with their resources from {source_name} to {PLATFORM}", file=out)
    for environment in ENVIRONMENTS:
        if environment in live:
            forget_copied_backup_keys(select_stack(environment, backend), out)
    print(f"done: check with python -m ops preview {PLATFORM}, then python -m ops up all", file=out)
