"""Run a backup service's scripts now: a backup, or a restore of the newest or a chosen archive.

An environment (dev, stg, prod) is its PostgreSQL database, backed up by <env>_postgres-backup;
grafana, n8n and objects are the platform's data, backed up by shared_backup. A restore into Grafana
or n8n stops that service first and starts it again afterwards, whatever the restore's outcome."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from names import BACKED_UP_SERVICES, BACKUP_KINDS, ENVIRONMENTS, PLATFORM_BACKUP, env_service
from ops.backend import OpsError

SCRIPTS = "/etc/backup"
LIVE_TASK_STATES = frozenset({"new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"})
"""Swarm task states before its container has exited (the others: complete, shutdown, failed, rejected...)."""
BACKUP_TARGETS = (*ENVIRONMENTS, *BACKUP_KINDS, "platform", "state")
"""What `ops backup` takes: an environment, one kind of platform data, all of the platform's, or the
local Pulumi state (ops/state_backup.py)."""
RESTORE_TARGETS = (*ENVIRONMENTS, *BACKUP_KINDS, "state")


def backup_container(client: Any, service: str) -> Any:
    """The running container of a backup service on this node."""
    running = client.containers.list(filters={"label": f"com.docker.swarm.service.name={service}", "status": "running"})
    if running:
        return running[0]
    tasks = [t for t in _tasks(client, service) if t["Status"]["State"] == "running"]
    if tasks:
        node = client.nodes.get(tasks[0]["NodeID"]).attrs["Description"]["Hostname"]
        raise OpsError(f"{service} runs on node {node}; run this command there")
    raise OpsError(f"{service} is not running (python -m ops status)")


def healthy_container(client: Any, service: str, image: str = "", timeout: float = 300) -> Any:
    """A running, healthy container of `service` on this node (of `image`, if given), once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for container in client.containers.list(filters={"label": f"com.docker.swarm.service.name={service}", "status": "running"}):
            healthy = container.attrs.get("State", {}).get("Health", {}).get("Status") == "healthy"
            if healthy and container.attrs.get("Config", {}).get("Image", "").startswith(image):
                return container
        time.sleep(2)
    raise OpsError(f"{service} is not running healthy on this node (python -m ops status)")


def _tasks(client: Any, service: str) -> list[dict[str, Any]]:
    try:
        tasks: list[dict[str, Any]] = client.services.get(service).tasks()
    except Exception as error:
        raise OpsError(f"no service {service}: is backupEnabled set for this stack?") from error
    return tasks


def command_for(action: str, target: str, item: str | None) -> tuple[str, list[str]]:
    """The backup service and the script command line for `ops backup|restore <target> [item]`."""
    extra = [item] if item else []
    if target in ENVIRONMENTS and action == "backup":  # a dump, and a base backup point-in-time restores start from
        return env_service(target, "postgres-backup"), ["sh", "-c", f"sh {SCRIPTS}/backup.sh && sh {SCRIPTS}/base-backup.sh"]
    if target in ENVIRONMENTS:
        return env_service(target, "postgres-backup"), ["sh", f"{SCRIPTS}/{action}.sh", *extra]
    kinds = list(BACKUP_KINDS) if target == "platform" else [target]
    return PLATFORM_BACKUP, ["sh", f"{SCRIPTS}/platform-{action}.sh", *kinds, *extra]


def run_script(client: Any, action: str, target: str, item: str | None = None, out: TextIO = sys.stdout) -> int:
    """Run the backup or restore script for `target` in its backup container, streaming its output;
    return its exit code."""
    service, command = command_for(action, target, item)
    container = backup_container(client, service)
    stopped = BACKED_UP_SERVICES.get(target) if action == "restore" else None
    if stopped is None:
        return exec_script(client, container, command, out)
    replicas = _scale(client, stopped, 0, out)
    try:
        return exec_script(client, container, command, out)
    finally:
        _scale(client, stopped, replicas, out)


def recovery_target(text: str, now: datetime | None = None) -> datetime:
    """The moment `ops restore <env> --to` names: ISO 8601 with its UTC offset, in the past."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise OpsError(f"--to {text!r} is not a time; give it as e.g. \"2026-12-01 10:00:00+09\"") from error
    if moment.tzinfo is None:
        raise OpsError(f"--to {text!r} has no UTC offset, so it could be any of 27 moments; add one, e.g. \"{text}+09\"")
    if moment >= (now or datetime.now(UTC)):
        raise OpsError(f"--to {text!r} is not in the past; restore to a moment that has happened")
    return moment


def pitr_arguments(moment: datetime) -> tuple[str, str]:
    """pitr-restore.sh's: the base backups' UTC stamp to stay before, and PostgreSQL's recovery_target_time,
    to the microsecond (a commit later in the same second is not part of the moment)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H-%M-%SZ"), utc.strftime("%Y-%m-%d %H:%M:%S.%f+00")


def restore_to_time(client: Any, env: str, moment: datetime, out: TextIO = sys.stdout) -> int:
    """Point-in-time restore (configs/backup/pitr-restore.sh): ship the newest WAL, stop PostgreSQL,
    replace its data by the newest base backup before `moment`, start it to replay WAL up to `moment`."""
    container = backup_container(client, env_service(env, "postgres-backup"))
    stamp, target = pitr_arguments(moment)
    # Everything written until now goes to the archive first: the state replaced stays reachable.
    if exec_script(client, container, ["sh", f"{SCRIPTS}/wal-ship.sh", "--switch"], out):
        raise OpsError(f"{env}: the newest WAL could not be archived and shipped; nothing was changed")
    postgres = env_service(env, "postgres")
    replicas = _scale(client, postgres, 0, out)
    try:
        code = exec_script(client, container, ["sh", f"{SCRIPTS}/pitr-restore.sh", stamp, target], out)
    finally:
        _scale(client, postgres, replicas, out, timeout=600)
    return code or exec_script(client, container, ["sh", f"{SCRIPTS}/pitr-restore.sh", "--finish"], out)


def _program_environment(client: Any, container: Any) -> dict[str, str]:
    """The environment the container's program runs with: the service passes most of it on the
    program's command line (`env NAME=VALUE ...`), which `docker exec` does not inherit."""
    exec_id = client.api.exec_create(container.id, ["cat", "/proc/1/environ"])["Id"]
    raw: bytes = client.api.exec_start(exec_id)
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def exec_script(client: Any, container: Any, command: list[str], out: TextIO, environment: dict[str, str] | None = None) -> int:
    """Run `command` in the container with its program's environment (plus `environment`), streaming its output."""
    env = {**_program_environment(client, container), **(environment or {})}
    exec_id = client.api.exec_create(container.id, command, environment=env)["Id"]
    for chunk in client.api.exec_start(exec_id, stream=True):
        out.write(chunk.decode(errors="replace"))
    out.flush()
    code: int = client.api.exec_inspect(exec_id)["ExitCode"]
    return code


def _scale(client: Any, name: str, replicas: int, out: TextIO, timeout: float = 120) -> int:
    """Scale a replicated service, wait until that many tasks run; return the replicas it had."""
    try:
        service = client.services.get(name)
    except Exception as error:
        raise OpsError(f"no service {name} (python -m ops status platform)") from error
    before: int = service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"]
    if before != replicas:
        print(f"{'stopping' if replicas == 0 else 'starting'} {name}", file=out, flush=True)
        service.scale(replicas)
    deadline = time.monotonic() + timeout
    while True:
        tasks = client.services.get(name).tasks()
        # Stopped means every container has exited: a task told to shut down still runs until it has.
        done = not any(t["Status"]["State"] in LIVE_TASK_STATES for t in tasks) if replicas == 0 else any(
            t["Status"]["State"] == "running" and t["DesiredState"] == "running" for t in tasks)
        if done:
            return before
        if time.monotonic() > deadline:
            raise OpsError(f"{name} did not reach {replicas} running task(s) in {timeout:.0f} s (python -m ops status platform)")
        time.sleep(0.5)
