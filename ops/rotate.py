"""`python -m ops rotate <stack> <secret>`: a generated password replaced by a new random one and rolled
out. Pulumi replaces the RandomPassword, every Docker secret made from it, and so every service that
mounts one (each restarts once, health-gated). PostgreSQL keeps the password it was initialised with
in its data, so its role is changed to the new one right after, with the old one read beforehand:
between the two, clients with the new password wait for a few seconds.

Data-encryption keys are refused unless `--i-know`: a new backup key leaves every earlier backup
readable only with the old one (keep it), a new n8n key leaves every stored credential unreadable."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from names import ENVIRONMENTS, PLATFORM, env_service
from ops.backend import Backend, OpsError
from ops.backups import healthy_container
from ops.deploy import pulumi_cli, run, select_stack

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
DOCKER_SECRET = "docker:index/secret:Secret"


@dataclass(frozen=True)
class Rotatable:
    resource: str
    """The RandomPassword's resource name; {stack} is the environment's name."""
    stacks: tuple[str, ...]
    encrypts_data: bool = False


ROTATABLE = {
    "postgres-password": Rotatable("{stack}-postgres-password", ENVIRONMENTS),
    "redis-password": Rotatable("{stack}-redis-password", ENVIRONMENTS),
    # PostgreSQL restarts with the new secret, and app-role.sh gives the role the new password.
    "app-password": Rotatable("{stack}-app-password", ENVIRONMENTS),
    "dashboard-password": Rotatable("core-dashboard-password", (PLATFORM,)),
    "prometheus-password": Rotatable("shared-prometheus-password", (PLATFORM,)),
    "backup-encryption-key": Rotatable("{stack}-backup-encryption-key", ENVIRONMENTS, encrypts_data=True),
    "n8n-encryption-key": Rotatable("shared-services-n8n-encryption-key", (PLATFORM,), encrypts_data=True),
}
"""Grafana's admin password is not here: Grafana keeps the first one in its database (change it in Grafana)."""


def password_urn(resources: list[dict[str, Any]], resource: str) -> tuple[str, bool]:
    """The URN of the RandomPassword named `resource`, and whether it is protected."""
    for found in resources:
        if found.get("type") == RANDOM_PASSWORD and found["urn"].rsplit("::", 1)[-1] == resource:
            return str(found["urn"]), bool(found.get("protect"))
    raise OpsError(f"no {resource} in this stack's state: is it deployed (python -m ops up)?")


def rotate(client: Any, stack_name: str, secret: str, backend: Backend, i_know: bool = False, out: TextIO = sys.stdout) -> None:
    what = ROTATABLE[secret]
    if stack_name not in what.stacks:
        raise OpsError(f"{secret} belongs to {' and '.join(what.stacks)}, not {stack_name}")
    if what.encrypts_data and not i_know:
        raise OpsError(f"{secret} encrypts data: a new one cannot read what the old one encrypted (backups, n8n's credentials); "
                       "keep the old value (python -m ops pulumi stack output ... --show-secrets), then pass --i-know")
    stack = select_stack(stack_name, backend)
    resources = stack.export_stack().deployment.get("resources", [])
    urn, protected = password_urn(resources, what.resource.format(stack=stack_name))
    old_login = _postgres_login(client, stack_name) if secret == "postgres-password" else None
    # The password and the Docker secrets made from it are protected with the data: unprotected for
    # this update, whose program protects the new ones again.
    for unprotect in [urn] * protected + [r["urn"] for r in resources if r.get("type") == DOCKER_SECRET and r.get("protect")]:
        if pulumi_cli(["state", "unprotect", unprotect, "-s", stack_name, "--yes"], backend):
            raise OpsError(f"could not unprotect {unprotect}; nothing was rotated (python -m ops up {stack_name} protects all again)")
    print(f"rotate {stack_name} {secret}: a new value, and every service that mounts it restarted", file=out, flush=True)
    run("up", stack_name, backend, out=out, replace=[urn])
    if old_login is not None:
        _alter_postgres_role(client, stack_name, old_login, out)


def _mounted_password(container: Any) -> str | None:
    """The PostgreSQL password secret a container mounts (None if it cannot be read)."""
    code, output = container.exec_run(["cat", "/run/secrets/postgres_password"])
    return None if code else str(output.decode())


def _postgres_login(client: Any, env: str) -> str:
    """The password PostgreSQL has now, read from its running container before the rotation."""
    password = _mounted_password(healthy_container(client, env_service(env, "postgres")))
    if password is None:
        raise OpsError(f"could not read {env}'s current PostgreSQL password; nothing was rotated")
    return password


def _restarted_postgres(client: Any, env: str, old_password: str, timeout: float = 300) -> Any:
    """The healthy container that mounts the new password. The update returns before Swarm has
    stopped the old task, which may still look healthy for a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container = healthy_container(client, env_service(env, "postgres"), timeout=max(deadline - time.monotonic(), 1))
        if _mounted_password(container) not in (None, old_password):
            return container
        time.sleep(2)
    raise OpsError(f"{env}'s PostgreSQL did not restart with the new password; run python -m ops rotate {env} postgres-password again")


def _alter_postgres_role(client: Any, env: str, old_password: str, out: TextIO) -> None:
    """Give the role the new password (the new container mounts it), logging in with the old one."""
    script = (
        'printf "%s" "ALTER ROLE :\\"role\\" PASSWORD :\'password\';" | psql -v ON_ERROR_STOP=1 -h 127.0.0.1 '
        '-U "$(cat /run/secrets/postgres_user)" -d "$(cat /run/secrets/postgres_db)" '
        '-v role="$(cat /run/secrets/postgres_user)" -v password="$(cat /run/secrets/postgres_password)"'
    )
    code, output = _restarted_postgres(client, env, old_password).exec_run(["sh", "-c", script], environment={"PGPASSWORD": old_password})
    if code:
        raise OpsError(f"{env}'s PostgreSQL still has the old password: {output.decode().strip()}; run python -m ops rotate again")
    print(f"rotate {env} postgres-password: the role has the new password", file=out)
