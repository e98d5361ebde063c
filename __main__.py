"""NextCandle on Docker Swarm.

Deploys, as the stack's configuration says it owns them:
- CoreStack: traefik-public and monitoring networks, Traefik, cloudflared (ownCore);
- SharedObservability and SharedServices: Prometheus, Alertmanager, Grafana, Loki, Alloy, exporters,
  object storage and n8n (ownShared);
- EnvDatabaseStack: this environment's PostgreSQL + pgvector, Redis and their backups (always);
- RunnerStack: GitHub Actions runners (ownRunner).
A stack that does not own the core joins its networks by name.
"""

import pulumi

from components.core import CoreStack, CoreStackArgs
from components.env_database import EnvDatabaseStack, EnvDatabaseStackArgs, backup_target
from components.observability import SharedObservability, SharedObservabilityArgs, SharedPlatform
from components.runner import RunnerStack, RunnerStackArgs
from components.settings import MONITORING_NETWORK, PUBLIC_NETWORK, load_settings
from components.shared_services import SharedServices, SharedServicesArgs
from components.swarm import existing_network_id

settings = load_settings()

if settings.own_core:
    core = CoreStack(
        "core",
        CoreStackArgs(settings=settings.core, hostnames=settings.hostnames, restart_max_attempts=settings.restart_max_attempts),
    )
    public_network_id, monitoring_network_id = core.public_network_id, core.monitoring_network_id
    pulumi.export("traefik_dashboard_url", "http://traefik.localhost:8080/dashboard/")
    pulumi.export("traefik_dashboard_user", settings.core.dashboard_user)
    pulumi.export("traefik_dashboard_password", core.dashboard_password)
    if core.tunnel_id is not None:
        pulumi.export("cloudflare_tunnel_id", core.tunnel_id)
else:
    public_network_id = existing_network_id(PUBLIC_NETWORK)
    monitoring_network_id = existing_network_id(MONITORING_NETWORK)

services = None
if settings.own_shared:
    platform = SharedPlatform(
        hostnames=settings.hostnames,
        public_network_id=public_network_id,
        monitoring_network_id=monitoring_network_id,
        restart_max_attempts=settings.restart_max_attempts,
        protect_data=settings.protect_shared_data,
        stateful_placement=settings.stateful_placement,
    )
    observability = SharedObservability(
        "shared",
        SharedObservabilityArgs(
            platform=platform, settings=settings.observability, alert_webhook_url=settings.observability.alert_webhook_url
        ),
    )
    services = SharedServices(
        "shared-services",
        SharedServicesArgs(platform=platform, timezone=settings.timezone, internal_network_id=observability.internal_network_id),
    )
    pulumi.export("grafana_url", f"https://{settings.hostnames.grafana}/")
    pulumi.export("grafana_admin_user", observability.grafana_admin_user)
    pulumi.export("grafana_admin_password", observability.grafana_admin_password)
    pulumi.export("prometheus_url", f"http://{settings.hostnames.prometheus}/")
    pulumi.export("n8n_url", f"https://{settings.hostnames.n8n}/")
    pulumi.export("s3_endpoint", f"https://{settings.hostnames.s3}")
    pulumi.export("s3_access_key", services.s3_access_key)
    pulumi.export("s3_secret_key", services.s3_secret_key)

owned_storage = (services.s3_access_key, services.s3_secret_key) if services else None
db = EnvDatabaseStack(
    settings.environment,
    EnvDatabaseStackArgs(
        environment=settings.environment,
        settings=settings.database,
        monitoring_network_id=monitoring_network_id,
        restart_max_attempts=settings.restart_max_attempts,
        protect_data=settings.protect_data,
        stateful_placement=settings.stateful_placement,
        allow_published_ports=settings.allow_published_database_ports,
        backup=backup_target(settings.database.backup, owned_storage),
    ),
)
pulumi.export("network", db.network_name)
pulumi.export("postgres_host", db.postgres_host)
pulumi.export("postgres_published_port", settings.database.postgres_port)
pulumi.export("postgres_database", db.postgres_database)
pulumi.export("postgres_user", db.postgres_user)
pulumi.export("postgres_password", db.postgres_password)
pulumi.export(
    "postgres_url",
    pulumi.Output.format(
        "postgresql://{0}:{1}@{2}:5432/{3}", db.postgres_user, db.postgres_password, db.postgres_host, db.postgres_database
    ),
)
pulumi.export("redis_host", db.redis_host)
pulumi.export("redis_published_port", settings.database.redis_port)
pulumi.export("redis_password", db.redis_password)
pulumi.export("redis_url", pulumi.Output.format("redis://:{0}@{1}:6379/0", db.redis_password, db.redis_host))

if settings.own_runner:
    RunnerStack("runner", RunnerStackArgs(settings=settings.runner, restart_max_attempts=settings.restart_max_attempts))
