"""The frozen, typed settings the components receive (components/settings.py builds them)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pulumi

# re.ASCII: \d would otherwise accept digits of every script.
_CPUS = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$", re.ASCII)
_MEMORY = re.compile(r"^(\d+)([MG])-(\d+)([MG])$", re.ASCII)


@dataclass(frozen=True)
class Resources:
    """CPU and memory reservation and limit of one service."""

    cpu_reservation: float
    cpu_limit: float
    memory_reservation_mb: int
    memory_limit_mb: int

    @staticmethod
    def parse(cpus: str, memory: str) -> Resources:
        """Parse the seeds' notation: cpus "0.10-0.50", memory "256M-1G" (reservation-limit)."""
        cpu_match = _CPUS.match(cpus.strip())
        if not cpu_match:
            raise ValueError(f"CPUs {cpus!r} is not reservation-limit, e.g. 0.10-0.50")
        memory_match = _MEMORY.match(memory.strip().upper())
        if not memory_match:
            raise ValueError(f"memory {memory!r} is not reservation-limit, e.g. 256M-512M")
        reserved_mb = int(memory_match[1]) * (1024 if memory_match[2] == "G" else 1)
        limit_mb = int(memory_match[3]) * (1024 if memory_match[4] == "G" else 1)
        parsed = Resources(float(cpu_match[1]), float(cpu_match[2]), reserved_mb, limit_mb)
        if parsed.cpu_reservation <= 0 or parsed.cpu_reservation > parsed.cpu_limit:
            raise ValueError(f"CPU reservation must be above 0 and at most the limit (got {cpus})")
        if parsed.memory_reservation_mb <= 0 or parsed.memory_reservation_mb > parsed.memory_limit_mb:
            raise ValueError(f"memory reservation must be above 0 and at most the limit (got {memory})")
        if parsed.cpu_reservation < 0.01:
            raise ValueError(f"a CPU reservation of {parsed.cpu_reservation:g} is below 0.01, the smallest CPU quota Docker sets (got {cpus})")
        if parsed.memory_reservation_mb > 256 * 1024:
            raise ValueError(f"a memory reservation above 256G is more than any node here has: the task would wait forever (got {memory})")
        if parsed.cpu_limit > 64:
            raise ValueError(f"a CPU limit of {parsed.cpu_limit:g} is more than any node here has (at most 64)")
        if not 6 <= parsed.memory_limit_mb <= 1024 * 1024:
            raise ValueError(f"a memory limit must be 6M..1024G (Docker's minimum is 6 MB; got {memory})")
        return parsed



@dataclass(frozen=True)
class TunnelSettings:
    mode: Literal["none", "token", "managed"]
    token: pulumi.Output[str] | None
    """Tunnel token from the Zero Trust dashboard (mode token)."""
    api_token: pulumi.Output[str] | None
    """Cloudflare API token with Tunnel and DNS edit rights (mode managed)."""
    account_id: str
    zone_id: str


@dataclass(frozen=True)
class CoreSettings:
    publish_ports: bool
    publish_dashboard: bool
    dashboard_user: str
    rate_limit_average: int
    rate_limit_burst: int
    tunnel: TunnelSettings
    external_public_network: bool = False
    """traefik-public exists outside this program (the seeds made it by hand): look it up, never create it."""


@dataclass(frozen=True)
class BackupSettings:
    schedule: str
    retention_days: int
    endpoint: str
    bucket: str
    """Empty: the platform's object storage."""
    access_key: pulumi.Output[str] | None
    secret_key: pulumi.Output[str] | None
    """Set with an endpoint; None: the platform's object storage credentials."""


@dataclass(frozen=True)
class DatabaseSettings:
    postgres_major: int
    postgres_previous_major: int | None
    """The major an unconfirmed upgrade came from: its data volume stays (unmounted)."""
    postgres_port: int
    postgres_resources: Resources
    postgres_config_file: str
    postgres_shm_size_mb: int
    redis_port: int
    redis_resources: Resources
    redis_maxmemory_mb: int
    redis_appendfsync: str
    backup: BackupSettings | None
    """None when backupEnabled is false."""


@dataclass(frozen=True)
class ObservabilitySettings:
    monitored_environments: tuple[str, ...]
    app_scrape_targets: tuple[str, ...]
    prometheus_retention: str
    scrape_interval: str
    loki_retention_hours: int
    alert_webhook_url: pulumi.Output[str] | None
    """Alertmanager webhook receiver (Slack-compatible or any webhook); alerts stay in the UI without one."""


@dataclass(frozen=True)
class RunnerSettings:
    replicas: int
    scope: Literal["repo", "org"]
    owner: str
    labels: tuple[str, ...]
    ephemeral: bool
    stopped: bool
    """Scaled to zero (`ops stop runner`) while the rest of the platform runs."""
    registration_token: pulumi.Output[str] | None
    access_token: pulumi.Output[str] | None
    on_managers: bool = False
    """On managers (opt-in); else only on workers labelled CI_NODE_LABEL."""
    docker_access: bool = False
    """The node's Docker socket in every job (opt-in)."""


@dataclass(frozen=True)
class Hostnames:
    """Hostnames Traefik routes. Public ones go through the tunnel; *.localhost ones stay local."""

    grafana: str
    n8n: str
    s3: str
    extra_public: tuple[str, ...]
    local_aliases: bool
    """Routed services also answer at <first label>.localhost."""
    object_storage_public: bool = False
    """The object store's S3 API is routed (s3); else it is not."""

    @property
    def public(self) -> tuple[str, ...]:
        storage = (self.s3,) if self.object_storage_public else ()
        return (self.grafana, self.n8n, *storage, *self.extra_public)

    def url(self, host: str, tunneled: bool) -> str:
        """Where a person reaches `host`'s service: through the tunnel (https), else at its local alias."""
        if tunneled or not self.local_aliases:
            return f"{'https' if tunneled else 'http'}://{host}/"
        return f"http://{self.routed(host)[-1]}/"

    def routed(self, host: str) -> tuple[str, ...]:
        """Every hostname Traefik routes to the service whose main hostname is `host`."""
        if not self.local_aliases or host.endswith(".localhost"):
            return (host,)
        return (host, f"{host.split('.', 1)[0]}.localhost")


@dataclass(frozen=True)
class PlatformSettings:
    """What the platform stack deploys: core, shared observability and services, runners."""

    domain: str
    hostnames: Hostnames
    timezone: str
    n8n_owner_set_up: bool
    core: CoreSettings
    observability: ObservabilitySettings
    runner: RunnerSettings | None
    """None unless runnerEnabled."""
    backup: BackupSettings | None
    """Grafana, n8n and (to an off-site target) the object store's buckets; None when backupEnabled is false."""
    core_only: bool = False
    """platformCoreOnly: CoreStack (and runners) only."""


@dataclass(frozen=True)
class EnvironmentSettings:
    """What an environment stack deploys, and where it finds the platform."""

    name: Literal["dev", "stg", "prod"]
    platform_stack: str
    """The platform's stack reference: `platform`, or organization/project/stack."""
    database: DatabaseSettings
    client_networks: tuple[str, ...]
    """Networks admitted to a published PostgreSQL port (over TLS)."""
    runner_access: bool
    """The databases join the platform's runner network (CI jobs reach them by name)."""
    app_secret_names: tuple[str, ...] = ()
    app_secrets: pulumi.Output[str] | None = None
    """appSecrets: NAME=value lines, one Docker secret per name."""


@dataclass(frozen=True)
class Settings:
    stack: str
    """platform, dev, stg or prod: the stack name is what the stack deploys."""
    stopped: bool
    """Scale every service of the stack to zero (`ops stop`); volumes, secrets and passwords stay."""
    protect_data: bool
    stateful_placement: tuple[str, ...]
    restart_max_attempts: int
    data_directory: str
    """The seeds' data directory (.data/<env> or .data) whose subdirectories hold the stack's data:
    volumes bind there instead of Docker's own storage (adopting the compose stacks). Empty: named volumes."""
    platform: PlatformSettings | None
    """Set in the platform stack only."""
    environment: EnvironmentSettings | None
    """Set in dev, stg and prod only."""


