"""Adopt the compose stacks the seeds deploy (start.sh: services dev_postgres, dev_redis, ... with
their data in .data/<env>/postgres and .data/<env>/redis) without re-initialising any database.

python -m ops adopt dev --data-directory /srv/nextcandle-infra/.data/dev
1. checks: the stack holds no resources yet, the compose services run, the directory holds the data;
2. reads the database login the compose stack used (its secrets, from the running container) into the
   stack file as a secret (adoptedPostgresLogin), so an interrupted adoption can be resumed;
3. removes the compose services this program replaces (applications in the same stack stay) and the
   compose networks nothing else uses; a hand-made traefik-public stays and the platform joins it;
4. sets dataDirectory and runs `up`: the volumes bind to the directory's postgres/ and redis/;
5. once the adopted PostgreSQL runs, gives the program's login to its database (configs/adopt/
   give-login.sql: the program's role, the database renamed to the program's name, pgvector), then
   removes adoptedPostgresLogin. Redis needs nothing: its password is read from the program's secret.
6. `--retire-old-login`, once no application logs in as the compose user: that login is switched off.
The platform (`adopt platform --data-directory .../.data`, first) binds Grafana's and Prometheus's data;
README, "Adopting the compose stacks", lists what moves by other means (object store, n8n)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import names
from components.settings import ADOPTED_LOGIN_KEY, CONFIGS
from names import ENVIRONMENTS, PLATFORM, PLATFORM_NAMESPACES, PROJECT, PUBLIC_NETWORK, STACK_LABEL, env_network, env_service
from ops.backend import Backend, OpsError
from ops.deploy import deployed, run, select_stack

GIVE_LOGIN_SQL = CONFIGS / "adopt" / "give-login.sql"
ENVIRONMENT_SERVICES = ("postgres", "redis", "postgres-exporter", "redis-exporter", "postgres-backup")
PLATFORM_SERVICES = (
    names.TRAEFIK, names.CLOUDFLARED, names.PROMETHEUS, names.ALERTMANAGER, names.LOKI, names.GRAFANA, names.CADVISOR,
    names.NODE_EXPORTER, names.ALLOY, names.OBJECT_STORAGE, names.N8N, names.GITHUB_RUNNER, names.PLATFORM_BACKUP,
)
SEED_ONLY_SERVICES = ("shared_minio", "shared_promtail", "shared_redis-exporter")
"""The seeds' services this program retires (MinIO, Promtail, the shared redis-exporter)."""
PLATFORM_NETWORKS = (
    names.MONITORING_NETWORK, names.STORAGE_NETWORK, names.TUNNEL_NETWORK, names.SHARED_INTERNAL_NETWORK, names.RUNNER_NETWORK,
)


def adopted_data(stack: str) -> dict[str, str | None]:
    """Subdirectories of the data directory the program binds, with a file each must hold (None: any)."""
    return {"grafana": None, "prometheus": None} if stack == PLATFORM else {"postgres": "PG_VERSION", "redis": None}


def namespaces(stack: str) -> tuple[str, ...]:
    return PLATFORM_NAMESPACES if stack == PLATFORM else (stack,)


def replaced(stack: str) -> set[str]:
    """The compose services this program's stack replaces; any other (an application) is left alone."""
    if stack == PLATFORM:
        return {*PLATFORM_SERVICES, *SEED_ONLY_SERVICES}
    return {env_service(stack, service) for service in ENVIRONMENT_SERVICES}


def compose_services(client: Any, stack: str) -> list[Any]:
    found = [s for ns in namespaces(stack) for s in client.services.list(filters={"label": f"{STACK_LABEL}={ns}"})]
    return [s for s in found if s.name in replaced(stack)]


def check_directory(stack: str, directory: str) -> None:
    path = Path(directory)
    if not path.is_absolute() or not path.is_dir():
        raise OpsError(f"{directory} is not a directory on this machine (the compose stack's .data{'' if stack == PLATFORM else '/' + stack})")
    for sub, marker in adopted_data(stack).items():
        if not (path / sub).is_dir() or (marker and not (path / sub / marker).is_file()):
            what = f"holds no {marker}" if (path / sub).is_dir() else "does not exist"
            raise OpsError(f"{path / sub} {what}, so it is not the compose stack's data; nothing was changed")


def our_networks(stack: str) -> tuple[str, ...]:
    return (PUBLIC_NETWORK, *PLATFORM_NETWORKS) if stack == PLATFORM else (env_network(stack),)


def networks_to_remove(client: Any, stack: str, services: list[Any]) -> tuple[list[Any], bool]:
    """The compose stack's own networks nothing else will use, and whether traefik-public stays as it is
    (made by hand, applications on it). Refuses, before anything changes, a network the program would
    create that must stay."""
    leaving = {s.id for s in services}
    used_by_others = {n["Target"] for s in client.services.list() if s.id not in leaving
                      for n in s.attrs["Spec"]["TaskTemplate"].get("Networks", [])}
    removable, external_public = [], False
    for network in client.networks.list():
        if network.attrs.get("Scope") != "swarm" or network.name == "ingress":
            continue
        ours_by_name = network.name in our_networks(stack)
        compose = (network.attrs.get("Labels") or {}).get(STACK_LABEL) in namespaces(stack)
        if compose and network.id not in used_by_others:
            removable.append(network)
        elif network.name == PUBLIC_NETWORK and stack == PLATFORM:
            external_public = True
        elif ours_by_name:
            users = sorted(s.name for s in client.services.list() if s.id not in leaving and any(
                n["Target"] == network.id for n in s.attrs["Spec"]["TaskTemplate"].get("Networks", [])))
            raise OpsError(f"network {network.name} exists and is used by {', '.join(users) or 'nothing of this stack'}; "
                           "this program creates its own: move those services off it first; nothing was changed")
    return removable, external_public


def _exec(container: Any, command: list[str], environment: dict[str, str] | None = None) -> tuple[int, str]:
    code, output = container.exec_run(command, environment=environment, demux=False)
    return int(code), (output or b"").decode(errors="replace")


def running_container(client: Any, service: str, timeout: float = 0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = client.containers.list(filters={"label": f"com.docker.swarm.service.name={service}", "status": "running"})
        if found:
            return found[0]
        if time.monotonic() >= deadline:
            raise OpsError(f"{service} has no running container on this node; once it runs, run python -m ops adopt {service.split('_')[0]} again")
        time.sleep(2)


def read_login(container: Any) -> dict[str, str]:
    """The database login a postgres container was started with: POSTGRES_*_FILE secrets, or plain env."""
    env = dict(line.split("=", 1) for line in container.attrs["Config"].get("Env", []) if "=" in line)

    def value(name: str, default: str) -> str:
        if f"POSTGRES_{name}_FILE" in env:
            code, text = _exec(container, ["cat", env[f"POSTGRES_{name}_FILE"]])
            if code != 0:
                raise OpsError(f"cannot read {env[f'POSTGRES_{name}_FILE']} in {container.name}: {text.strip()}")
            return text.strip()
        return str(env.get(f"POSTGRES_{name}", default))

    user = value("USER", "postgres")
    return {"user": user, "password": value("PASSWORD", ""), "database": value("DB", user)}


def take_over(client: Any, stack: str, directory: str, backend: Backend, out: TextIO = sys.stdout) -> Any:
    """Steps 1-4: the compose stack's services make way for the program's, on the same data."""
    from pulumi import automation as auto

    live = deployed(backend)
    if stack in live:
        raise OpsError(f"{stack} is already deployed by this program; adopt only replaces a compose stack")
    if stack != PLATFORM and PLATFORM not in live:
        raise OpsError(f"the platform comes first: python -m ops adopt {PLATFORM} --data-directory <the compose stacks' .data> "
                       f"(or python -m ops up {PLATFORM} on a swarm without them); nothing was changed")
    services = compose_services(client, stack)
    if not services:
        raise OpsError(f"no compose service of {'/'.join(namespaces(stack))} runs here (docker stack ls)")
    check_directory(stack, directory)
    removable, external_public = networks_to_remove(client, stack, services)  # may refuse: before any change
    pulumi_stack = select_stack(stack, backend)
    if stack in ENVIRONMENTS:
        login = read_login(running_container(client, env_service(stack, "postgres")))
        pulumi_stack.set_config(f"{PROJECT}:{ADOPTED_LOGIN_KEY}", auto.ConfigValue(json.dumps(login), secret=True))
        print(f"adopt {stack}: the compose stack's database login kept as {ADOPTED_LOGIN_KEY} (secret)", file=out, flush=True)
    if external_public:
        pulumi_stack.set_config(f"{PROJECT}:externalPublicNetwork", auto.ConfigValue("true"))
        print(f"adopt {stack}: {PUBLIC_NETWORK} exists; the platform joins it (externalPublicNetwork)", file=out, flush=True)
    removed = sorted(s.name for s in services)
    for service in services:
        service.remove()
    print(f"adopt {stack}: removed the compose services {', '.join(removed)}; their data stays in {directory}", file=out, flush=True)
    _wait_gone(client, services)
    for network in removable:
        network.remove()
    pulumi_stack.set_config(f"{PROJECT}:dataDirectory", auto.ConfigValue(directory))
    return run("up", stack, backend, select=lambda _name, _backend: pulumi_stack, out=out)


def _wait_gone(client: Any, services: list[Any], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while any(client.containers.list(filters={"label": f"com.docker.swarm.service.name={s.name}"}) for s in services):
        if time.monotonic() > deadline:
            raise OpsError(f"the compose stack's containers did not stop in {timeout:.0f} s (docker ps)")
        time.sleep(1)


def sql_command(user: str, psql: str = "psql", host: str = "/var/run/postgresql", port: int = 5432) -> list[str]:
    """psql, as `user` on the `postgres` database, runs $ADOPT_SQL (unaligned, `|` between columns): SQL
    such as configs/adopt/give-login.sql is handed over in the environment (exec has no stdin)."""
    run_sql = f'printf "%s\\n" "$ADOPT_SQL" | {psql} -X -q -A -t -F "|" -h "$0" -p "$1" -U "$2" -d postgres -f -'
    return ["sh", "-c", run_sql, host, str(port), user]


BOOTSTRAP_ROLE_SQL = (
    "SELECT r.rolname, r.rolcanlogin, coalesce((SELECT string_agg(DISTINCT coalesce(host(a.client_addr), 'the local socket'), ', ')"
    " FROM pg_stat_activity a WHERE a.usename = r.rolname AND a.backend_type = 'client backend'), '') FROM pg_roles r WHERE r.oid = 10"
)
"""The cluster's first role (initdb's, oid 10), whether it may log in, and where its client sessions come from
(the logical replication launcher runs as that role too)."""
RETIRE_SQL = "SELECT format('ALTER ROLE %I NOLOGIN PASSWORD NULL', rolname) FROM pg_roles WHERE oid = 10 AND rolname <> current_user \\gexec"


def retire_old_login(run_sql: Callable[[str], tuple[int, str]], program_user: str, stack: str) -> str:
    """The compose stack's login, which initdb made the cluster's first role: it cannot be dropped (and
    owns what the applications created), so it loses its login and password. Refused while it is in use."""
    code, found = run_sql(BOOTSTRAP_ROLE_SQL)
    if code != 0:
        raise OpsError(f"cannot read {stack}'s roles: {found.strip()}")
    role, can_login, clients = found.strip().split("|")
    if role == program_user:
        raise OpsError(f"{stack}'s database was initialised by this program: there is no compose login to retire")
    if can_login != "t":
        return role
    if clients:
        raise OpsError(f"the compose login {role} is still in use (from {clients}): move those applications to the "
                       f"app login (python -m ops pulumi stack output -s {stack} --show-secrets) first; nothing was changed")
    code, output = run_sql(RETIRE_SQL)
    if code != 0:
        raise OpsError(f"retiring {role} failed: {output.strip()}")
    return role


def retire_login(client: Any, stack: str, backend: Backend, out: TextIO = sys.stdout) -> None:
    """After the handover: the compose stack's login can no longer log in."""
    pulumi_stack = select_stack(stack, backend)
    if f"{PROJECT}:{ADOPTED_LOGIN_KEY}" in pulumi_stack.get_all_config():
        raise OpsError(f"the handover is not finished: python -m ops adopt {stack} first")
    outputs = pulumi_stack.outputs()
    user, password = str(outputs["postgres_user"].value), str(outputs["postgres_password"].value)
    container = running_container(client, env_service(stack, "postgres"))

    def run_sql(sql: str) -> tuple[int, str]:
        return _exec(container, sql_command(user), {"PGPASSWORD": password, "ADOPT_SQL": sql})

    role = retire_old_login(run_sql, user, stack)
    print(f"adopt {stack}: the compose login {role} can no longer log in (it keeps what it owns)", file=out, flush=True)


def give_login_environment(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    return {
        "PGPASSWORD": old["password"], "ADOPT_SQL": GIVE_LOGIN_SQL.read_text(), "ADOPT_OLD_DB": old["database"],
        "ADOPT_NEW_USER": new["user"], "ADOPT_NEW_PASSWORD": new["password"], "ADOPT_NEW_DB": new["database"],
    }


def give_login(client: Any, stack: str, backend: Backend, out: TextIO = sys.stdout, timeout: float = 300) -> None:
    """Step 5: the program's login takes over the adopted database; then the kept login goes."""
    pulumi_stack = select_stack(stack, backend)
    key = f"{PROJECT}:{ADOPTED_LOGIN_KEY}"
    config = pulumi_stack.get_all_config()
    if key not in config:
        return
    old = json.loads(config[key].value)
    outputs = pulumi_stack.outputs()
    new = {name: str(outputs[f"postgres_{name}"].value) for name in ("user", "password", "database")}
    container = running_container(client, env_service(stack, "postgres"), timeout)
    code, output = _exec(container, sql_command(old["user"]), give_login_environment(old, new))
    if code != 0:
        raise OpsError(f"giving the program's login to {stack}'s database failed: {output.strip()}; run python -m ops adopt {stack} again")
    pulumi_stack.remove_config(key)
    print(f"adopt {stack}: database {old['database']} is now {new['database']}, owned by the program's user; "
          f"applications take the credentials from `pulumi stack output -s {stack} --show-secrets`", file=out, flush=True)


def adopt(client: Any, stack: str, directory: str | None, backend: Backend, out: TextIO = sys.stdout, wait: float = 300) -> None:
    if stack not in deployed(backend):
        if not directory:
            raise OpsError(f"adopting {stack} needs --data-directory (the compose stack's .data{'' if stack == PLATFORM else '/' + stack})")
        take_over(client, stack, directory, backend, out)
    if stack in ENVIRONMENTS:
        give_login(client, stack, backend, out, timeout=wait)
    print(f"done: python -m ops status {stack}", file=out)
