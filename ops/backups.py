"""Run the backup service's scripts now: a backup, or a restore of the newest or a chosen dump."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ops.backend import OpsError

SCRIPTS = "/etc/backup"


def backup_container(client: Any, environment: str) -> Any:
    """The running container of <env>_postgres-backup on this node."""
    service = f"{environment}_postgres-backup"
    running = client.containers.list(filters={"label": f"com.docker.swarm.service.name={service}", "status": "running"})
    if running:
        return running[0]
    tasks = [t for t in _tasks(client, service) if t["Status"]["State"] == "running"]
    if tasks:
        node = client.nodes.get(tasks[0]["NodeID"]).attrs["Description"]["Hostname"]
        raise OpsError(f"{service} runs on node {node}; run this command there")
    raise OpsError(f"{service} is not running (python -m ops status {environment})")


def _tasks(client: Any, service: str) -> list[dict[str, Any]]:
    try:
        tasks: list[dict[str, Any]] = client.services.get(service).tasks()
    except Exception as error:
        raise OpsError(f"no service {service}: is backupEnabled set for this stack?") from error
    return tasks


def run_script(client: Any, environment: str, script: str, args: list[str], out: TextIO = sys.stdout) -> int:
    """Run /etc/backup/<script>.sh in the backup container, streaming its output; return its exit code."""
    container = backup_container(client, environment)
    exec_id = client.api.exec_create(container.id, ["sh", f"{SCRIPTS}/{script}.sh", *args])["Id"]
    for chunk in client.api.exec_start(exec_id, stream=True):
        out.write(chunk.decode(errors="replace"))
    out.flush()
    code: int = client.api.exec_inspect(exec_id)["ExitCode"]
    return code
