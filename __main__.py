"""NextCandle on Docker Swarm. The stack name says what a stack deploys:

- `platform`: CoreStack (traefik-public and monitoring networks, Traefik, cloudflared),
  SharedObservability (Prometheus, Alertmanager, Grafana, Loki, Alloy, exporters), SharedServices
  (object storage, n8n), PlatformBackup (Grafana, n8n, buckets off-site) and, when enabled, RunnerStack
  (GitHub Actions runners);
- `dev`, `stg`, `prod`: that environment's EnvDatabaseStack (PostgreSQL + pgvector, Redis, exporters,
  backups), reading the platform's networks and object storage through a StackReference.
"""

from collections.abc import Callable
from typing import Any

import pulumi

from components.app_secrets import AppSecrets, AppSecretsArgs
from components.backup import PlatformBackup, PlatformBackupArgs
from components.backup_jobs import ObjectStorage, backup_target
from components.core import CoreStack, CoreStackArgs
from components.docker_api import DockerApiProxy, DockerApiProxyArgs
from components.env_database import EnvDatabaseStack, EnvDatabaseStackArgs
from components.observability import SharedObservability, SharedObservabilityArgs
from components.observability_configs import PROMETHEUS_USER
from components.runner import RunnerStack, RunnerStackArgs
from components.settings import EnvironmentSettings, PlatformSettings, load_settings
from components.shared_services import SharedServices, SharedServicesArgs
from components.swarm import SharedPlatform, StackScope
from names import (
    APP_ROLE,
    DOCKER_API_CLIENTS,
    POSTGRES_PORT,
    REDIS_PORT,
    TRAEFIK,
    TRAEFIK_DASHBOARD_PORT,
    PlatformOutputs,
    env_backup_bucket,
)


def deploy_platform(scope: StackScope, platform: PlatformSettings) -> None:
    # The Docker API's only door: Traefik's, and the observability agents' when they are deployed.
    docker_api = DockerApiProxy(
        "core-docker-api",
        DockerApiProxyArgs(scope=scope, clients=(TRAEFIK,) if platform.core_only else DOCKER_API_CLIENTS),
    )
    core = CoreStack("core", CoreStackArgs(
        settings=platform.core, hostnames=platform.hostnames, scope=scope, docker_api_volume=docker_api.socket_volumes[TRAEFIK]
    ))
    if platform.runner is not None:
        runner = RunnerStack(
            "runner",
            RunnerStackArgs(settings=platform.runner, scope=scope),
        )
        pulumi.export(PlatformOutputs.RUNNER_NETWORK_ID, runner.network_id)
    # What environments read through their StackReference.
    pulumi.export(PlatformOutputs.PUBLIC_NETWORK_ID, core.public_network_id)
    pulumi.export(PlatformOutputs.MONITORING_NETWORK_ID, core.monitoring_network_id)
    pulumi.export(PlatformOutputs.STORAGE_NETWORK_ID, core.storage_network_id)
    # For operators.
    pulumi.export("traefik_dashboard_url", f"http://localhost:{TRAEFIK_DASHBOARD_PORT}/dashboard/"
                  + ("" if platform.core.publish_dashboard else " (not published: set traefikDashboardPublished)"))
    pulumi.export("traefik_dashboard_user", platform.core.dashboard_user)
    pulumi.export("traefik_dashboard_password", core.dashboard_password)
    if core.tunnel_id is not None:
        pulumi.export("cloudflare_tunnel_id", core.tunnel_id)
    if not platform.core_only:
        deploy_shared(scope, platform, core, docker_api)


def deploy_shared(scope: StackScope, platform: PlatformSettings, core: CoreStack, docker_api: DockerApiProxy) -> None:
    """Observability, the object store, n8n and the platform's backups (all but platformCoreOnly)."""
    shared = SharedPlatform(
        hostnames=platform.hostnames,
        public_network_id=core.public_network_id,
        monitoring_network_id=core.monitoring_network_id,
        storage_network_id=core.storage_network_id,
        n8n_network_id=core.n8n_network_id,
        tunnel_metrics_network_id=core.tunnel_metrics_network_id,
    )
    observability = SharedObservability(
        "shared",
        SharedObservabilityArgs(
            platform=shared, scope=scope, settings=platform.observability, alert_webhook_url=platform.observability.alert_webhook_url,
            docker_api_volumes=docker_api.socket_volumes,
        ),
    )
    services = SharedServices(
        "shared-services",
        SharedServicesArgs(platform=shared, scope=scope, timezone=platform.timezone, n8n_owner_set_up=platform.n8n_owner_set_up),
    )
    object_storage = ObjectStorage(
        endpoint=services.s3_internal_endpoint, access_key=services.s3_access_key, secret_key=services.s3_secret_key
    )
    backup = backup_target(platform.backup, object_storage)
    platform_backup = PlatformBackup(
        "shared-backup",
        PlatformBackupArgs(
            platform=shared,
            scope=scope,
            target=backup,
            # Buckets are copied to an off-site target, else into a second volume (never onto the store itself).
            object_storage=object_storage,
            grafana_volume=observability.grafana_volume_name,
            n8n_volume=services.n8n_volume_name,
            n8n_encryption_key=services.n8n_encryption_key,
        ),
    )
    # Without it no archive can be read: keep a copy away from this swarm (README, "Backups").
    pulumi.export("backup_encryption_key", platform_backup.encryption_key)
    pulumi.export(PlatformOutputs.OBJECT_STORAGE_ENDPOINT, services.s3_internal_endpoint)
    pulumi.export(PlatformOutputs.S3_ACCESS_KEY, services.s3_access_key)
    pulumi.export(PlatformOutputs.S3_SECRET_KEY, services.s3_secret_key)
    for env, (access_key, secret_key) in services.environment_keys.items():
        pulumi.export(PlatformOutputs.env_s3_access_key(env), access_key)
        pulumi.export(PlatformOutputs.env_s3_secret_key(env), secret_key)
    hostnames = platform.hostnames
    pulumi.export(
        PlatformOutputs.HOSTNAMES,
        {"grafana": hostnames.grafana, "n8n": hostnames.n8n, "s3": hostnames.s3},
    )
    # Public URLs only when a tunnel carries them; a local-only deployment shows its *.localhost ones.
    tunneled = platform.core.tunnel.mode != "none"
    pulumi.export("grafana_url", hostnames.url(hostnames.grafana, tunneled))
    pulumi.export("grafana_admin_user", observability.grafana_admin_user)
    pulumi.export("grafana_admin_password", observability.grafana_admin_password)
    pulumi.export("prometheus_user", PROMETHEUS_USER)
    pulumi.export("prometheus_password", observability.prometheus_password)
    pulumi.export("n8n_url", hostnames.url(hostnames.n8n, tunneled))
    pulumi.export("s3_endpoint", hostnames.url(hostnames.s3, tunneled).rstrip("/") if hostnames.object_storage_public
                  else f"{services.s3_internal_endpoint} (inside the swarm only: set objectStoragePublic to route it)")


def platform_reader(stack_name: str) -> Callable[[str], pulumi.Output[Any]]:
    """Reads the platform stack's outputs; one it lacks (deployed by an older program) is named with the fix."""
    platform = pulumi.StackReference("platform", stack_name=stack_name)

    def read(key: str) -> pulumi.Output[Any]:
        def present(value: Any) -> Any:
            if value is None:
                raise ValueError(f"the {stack_name} stack has no output {key!r}: if an older version of this program "
                                 f"deployed it, run `python -m ops up {stack_name}` first; if it runs with platformCoreOnly "
                                 "(no object store), back this environment up off-site (backupS3Endpoint) or set backupEnabled false")
            return value
        return platform.get_output(key).apply(present)
    return read


def deploy_environment(scope: StackScope, environment: EnvironmentSettings) -> None:
    platform_output = platform_reader(environment.platform_stack)
    backup = environment.database.backup
    # Read only when backups go to the platform's object store (a platformCoreOnly platform has none).
    storage = None if backup is None or backup.endpoint else ObjectStorage(
        endpoint=platform_output(PlatformOutputs.OBJECT_STORAGE_ENDPOINT),
        access_key=platform_output(PlatformOutputs.env_s3_access_key(environment.name)),
        secret_key=platform_output(PlatformOutputs.env_s3_secret_key(environment.name)),
    )
    db = EnvDatabaseStack(
        environment.name,
        EnvDatabaseStackArgs(
            scope=scope,
            settings=environment.database,
            monitoring_network_id=platform_output(PlatformOutputs.MONITORING_NETWORK_ID),
            storage_network_id=platform_output(PlatformOutputs.STORAGE_NETWORK_ID),
            client_networks=environment.client_networks,
            runner_network_id=platform_output(PlatformOutputs.RUNNER_NETWORK_ID) if environment.runner_access else None,
            backup=backup_target(backup, storage, platform_bucket=env_backup_bucket(environment.name)),
        ),
    )
    if environment.app_secrets is not None:
        app = AppSecrets(
            f"{environment.name}-app-secrets",
            AppSecretsArgs(scope=scope, names=environment.app_secret_names, values=environment.app_secrets),
        )
        pulumi.export("app_secrets", app.swarm_names)
    database = environment.database
    pulumi.export("network", db.network_name)
    pulumi.export("postgres_host", db.postgres_host)
    pulumi.export("postgres_published_port", database.postgres_port)
    pulumi.export("postgres_database", db.postgres_database)
    # The superuser, for operators (and the backups, which mount it); applications use the app login.
    pulumi.export("postgres_user", db.postgres_user)
    pulumi.export("postgres_password", db.postgres_password)
    pulumi.export("app_user", APP_ROLE)
    pulumi.export("app_password", db.app_password)
    pulumi.export("backup_encryption_key", db.backup_encryption_key)  # keep a copy away from this swarm
    pulumi.export(
        "postgres_url",
        pulumi.Output.format(
            f"postgresql://{APP_ROLE}:{{0}}@{{1}}:{POSTGRES_PORT}/{{2}}", db.app_password, db.postgres_host, db.postgres_database
        ),
    )
    pulumi.export("redis_host", db.redis_host)
    pulumi.export("redis_published_port", database.redis_port)
    pulumi.export("redis_password", db.redis_password)
    pulumi.export("redis_url", pulumi.Output.format(f"redis://:{{0}}@{{1}}:{REDIS_PORT}/0", db.redis_password, db.redis_host))


settings = load_settings()
if settings.platform is not None:
    deploy_platform(StackScope.of_settings(settings), settings.platform)
if settings.environment is not None:
    deploy_environment(StackScope.of_settings(settings), settings.environment)
