"""Names the program, the operator command (`ops/`), the policy pack (`policy/`) and the tests share.

Defined once here, with no dependency, so that a service, network, port or label is spelled in one
place. Components never import each other: what one needs of another (Traefik's metrics port for
Prometheus, the object store's address for backups) is a name here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PROJECT = "nextcandle"


def project_dir() -> Path:
    """Where Pulumi.yaml and the stack files are read (and a new stack's encryption salt written):
    this checkout, or NEXTCANDLE_PROJECT_DIR (python -m ops runs with it; the tests use a copy)."""
    return Path(os.environ.get("NEXTCANDLE_PROJECT_DIR") or Path(__file__).resolve().parent)


# Pulumi stacks: the shared platform, then one per environment, which references the platform.
PLATFORM = "platform"
ENVIRONMENTS = ("dev", "stg", "prod")
STACKS = (PLATFORM, *ENVIRONMENTS)
PROTECTED_ENVIRONMENTS = ("stg", "prod")
"""Environments whose data protection only an explicitly named override switches off."""

# Swarm stack namespaces (`com.docker.stack.namespace`), as `docker stack deploy` would name them.
CORE = "core"
SHARED = "shared"
RUNNER = "runner"
PLATFORM_NAMESPACES = (CORE, SHARED, RUNNER)
"""The swarm namespaces the platform stack owns; each environment's namespace is its name."""

# Labels on Swarm objects.
STACK_LABEL = "com.docker.stack.namespace"
DATABASE_CLIENTS_LABEL = "nextcandle.database-clients"
CI_NODE_LABEL = "nextcandle.ci"
"""Worker nodes labelled `<it>=true` run the GitHub Actions runners (docker node update --label-add)."""
"""On a database with a published port: the client networks pg_hba (or the port's firewall) admits."""
STOPPED_LABEL = "nextcandle.stopped"
"""Set on a service its stack stopped on purpose (`ops stop`): status shows it stopped, not failed."""
CACHE_LABEL = "nextcandle.cache"
"""On volumes that hold a cache, not data: losing one costs time only, so it is not protected."""

# Networks.
PUBLIC_NETWORK = "traefik-public"
MONITORING_NETWORK = "monitoring"
SHARED_INTERNAL_NETWORK = f"{SHARED}_internal"
"""Platform services only: Loki, Alertmanager, Grafana, Prometheus, Alloy. No application joins it."""
STORAGE_NETWORK = "storage"
"""The object storage, Traefik (its authenticated S3 route), Prometheus and the environments' backups."""
TUNNEL_NETWORK = f"{CORE}_tunnel"
N8N_NETWORK = f"{CORE}_n8n"
"""Traefik, Prometheus and n8n only: n8n's port answers nobody else, so its basic auth at Traefik cannot be
bypassed (it stayed on traefik-public and monitoring before, where every application is)."""
TUNNEL_METRICS_NETWORK = f"{CORE}_tunnel_metrics"
"""cloudflared and Prometheus only: cloudflared's metrics server also serves its configuration and pprof."""
TUNNEL_SUBNET = "10.254.254.0/24"
"""cloudflared to Traefik: the only source whose X-Forwarded-For Traefik trusts."""
RUNNER_NETWORK = f"{RUNNER}_internal"

# Platform services and the ports others reach them on (components/images.py records, as upstream
# facts, the ports each image listens on by default; these are the ones the program uses).
TRAEFIK = f"{CORE}_traefik"
CLOUDFLARED = f"{CORE}_cloudflared"
TRAEFIK_WEB_PORT = 80
TRAEFIK_TUNNEL_PORT = 8000
"""The entry point cloudflared sends to; not published."""
TRAEFIK_METRICS_PORT = 8082
TRAEFIK_DASHBOARD_PORT = 8080
CLOUDFLARED_METRICS_PORT = 20241
PROMETHEUS = f"{SHARED}_prometheus"
PROMETHEUS_PORT = 9090
ALERTMANAGER = f"{SHARED}_alertmanager"
ALERTMANAGER_PORT = 9093
LOKI = f"{SHARED}_loki"
LOKI_PORT = 3100
LOKI_GRPC_PORT = 9096
GRAFANA = f"{SHARED}_grafana"
GRAFANA_PORT = 3000
CADVISOR = f"{SHARED}_cadvisor"
CADVISOR_PORT = 8080
NODE_EXPORTER = f"{SHARED}_node-exporter"
NODE_EXPORTER_PORT = 9100
ALLOY = f"{SHARED}_alloy"
ALLOY_PORT = 12345
OBJECT_STORAGE = f"{SHARED}_seaweedfs"
OBJECT_STORAGE_HOST = "object-storage"
"""The object store's network alias, which S3 clients use: the aws CLI (botocore's is_valid_endpoint_url)
refuses an endpoint whose host has an underscore, as every Swarm service name <stack>_<service> does."""
OBJECT_STORAGE_S3_PORT = 8333
OBJECT_STORAGE_S3_GRPC_PORT = OBJECT_STORAGE_S3_PORT + 10000
"""SeaweedFS's default for the S3 gateway's gRPC (IAM cache) port, which binds where S3 does."""
OBJECT_STORAGE_FILER_PORT = 8888
OBJECT_STORAGE_METRICS_PORT = 9324
OBJECT_STORAGE_MASTER_PORT = 9333
N8N = f"{SHARED}_n8n"
N8N_PORT = 5678
PLATFORM_BACKUP = f"{SHARED}_backup"
"""Archives Grafana and n8n, and copies the object store's buckets off-site."""
BACKUP_KINDS = ("grafana", "n8n", "objects")
"""What the platform's backup service backs up; `python -m ops backup|restore <kind>`."""
BACKED_UP_SERVICES = {"grafana": GRAFANA, "n8n": N8N}
"""The service whose data a kind restores into: stopped while it is restored."""
GITHUB_RUNNER = f"{RUNNER}_github-runner"

DOCKER_SOCKET = "/var/run/docker.sock"
DOCKER_SOCKET_REAL_PATH = "/run/docker.sock"
"""Where the socket lies on a host (/var/run links to /run): a bind of `/` or `/run` reaches it there."""
DOCKER_API_PROXY = f"{CORE}_docker-api-proxy"
"""HAProxy on every node: the only service with the raw socket (besides runners that opt in), it lets each
client through only the read-only API calls it needs, on a unix socket of its own."""
DOCKER_API_CLIENTS = (TRAEFIK, ALLOY, CADVISOR)
DOCKER_API_DIR = "/var/run/docker-api"
"""Where a client mounts its socket's volume; the socket inside it is DOCKER_API_SOCKET."""
DOCKER_API_SOCKET = f"{DOCKER_API_DIR}/docker.sock"
DOCKER_API_CONTAINERD_SOCKET = f"{DOCKER_API_DIR}/containerd.sock"
"""cAdvisor's read-only way to containerd, which it asks about Docker's containers where Docker keeps images in containerd."""
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
DOCKER_API_PROXY_HEALTH_PORT = 8405
"""The proxy's own health URL, on its loopback only."""
DOCKER_SOCKET_ALLOWED = frozenset({DOCKER_API_PROXY, GITHUB_RUNNER})
"""Services that mount the raw Docker socket: the socket proxy, and CI runners whose jobs need Docker (opt-in)."""

# Each environment's services.
POSTGRES_PORT = 5432
REDIS_PORT = 6379
POSTGRES_EXPORTER_PORT = 9187
BACKUP_METRICS_PORT = 9199
"""backup-cron's /metrics in every backup service (images/postgres-backup)."""
REDIS_EXPORTER_PORT = 9121


def env_service(environment: str, service: str) -> str:
    """An environment's Swarm service name, e.g. env_service("prod", "postgres") -> prod_postgres."""
    return f"{environment}_{service}"


APP_ROLE = "app"
"""The applications' PostgreSQL login in every environment: no superuser (configs/postgres/app-role.sh)."""

FIRST_POSTGRES_MAJOR = 17
"""The major the environments started on; its data volume keeps the name it had before upgrades existed."""


def postgres_data_volume(environment: str, major: int) -> str:
    """A major's PostgreSQL data volume: <env>_postgres_data for the first, <env>_postgres<major>_data after."""
    return f"{environment}_postgres_data" if major == FIRST_POSTGRES_MAJOR else f"{environment}_postgres{major}_data"


def env_network(environment: str) -> str:
    """The overlay network an environment's databases and applications share."""
    return f"{environment}_internal"


class PlatformOutputs:
    """Outputs of the platform stack that environments read through a StackReference."""

    PUBLIC_NETWORK_ID = "public_network_id"
    MONITORING_NETWORK_ID = "monitoring_network_id"
    STORAGE_NETWORK_ID = "storage_network_id"
    OBJECT_STORAGE_ENDPOINT = "object_storage_endpoint"
    """The S3 API inside the swarm, e.g. http://object-storage:8333."""
    RUNNER_NETWORK_ID = "runner_network_id"
    """Only with runnerEnabled: environments with runnerDatabaseAccess put their databases on it."""
    S3_ACCESS_KEY = "s3_access_key"
    S3_SECRET_KEY = "s3_secret_key"
    """The object store's administrator (the platform's own backups; operators)."""
    HOSTNAMES = "hostnames"

    @staticmethod
    def env_s3_access_key(environment: str) -> str:
        """The S3 identity that reaches only `environment`'s bucket (env_backup_bucket)."""
        return f"s3_{environment}_access_key"

    @staticmethod
    def env_s3_secret_key(environment: str) -> str:
        return f"s3_{environment}_secret_key"


def env_backup_bucket(environment: str) -> str:
    """An environment's bucket in the platform's object store: its identity reaches this one only."""
    return f"{environment}-backups"


def declared_environment(env: Mapping[str, Any] | Sequence[str] | None, commands: Sequence[Any] | None) -> dict[str, str]:
    """The environment a service's program gets from its spec: its env (a map, or Docker's NAME=VALUE
    list) and the assignments of an `env` command line (components/swarm.py, command_line)."""
    items = dict(env) if isinstance(env, Mapping) else dict(e.split("=", 1) for e in env or ())
    if commands and commands[0] == "env":
        for word in commands[1:]:
            if "=" not in word:
                break
            name, value = word.split("=", 1)
            items[name] = value
    return items
