"""Every setting of the program, read once from Pulumi config into frozen, typed objects.

Defaults come from the `config:` block of Pulumi.yaml, so that file is the single list of scalar keys.
Every problem found is reported at once, each with the key and the command that fixes it, before any
resource is declared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import pulumi
import yaml

from names import ENVIRONMENTS, PLATFORM, PROJECT, PROTECTED_ENVIRONMENTS, STACKS

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
TUNNEL_MODES = ("none", "token", "managed")
APPENDFSYNC_VALUES = ("", "always", "everysec", "no")

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CLOUDFLARE_ID = re.compile(r"^[0-9a-f]{32}$")
_CPUS = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$")
_MEMORY = re.compile(r"^(\d+)([MG])-(\d+)([MG])$")
_DURATION = re.compile(r"^\d+(ms|s|m|h|d|w|y)$")
_TARGET = re.compile(r"^[A-Za-z0-9_.-]+:\d{1,5}$")
_CONSTRAINT = re.compile(r"^node\.[A-Za-z0-9_.-]+\s*(==|!=)\s*\S+$")
_CRON = re.compile(r"^(\S+\s+){4}\S+$")


class SettingsError(pulumi.RunError):
    """The stack's configuration is invalid. Pulumi shows the message without a traceback."""


def declared_config() -> dict[str, dict[str, Any]]:
    """The `config:` block of Pulumi.yaml: key -> {type, description, default}."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    return cast(dict[str, dict[str, Any]], project["config"])


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
    dashboard_user: str
    rate_limit_average: int
    rate_limit_burst: int
    tunnel: TunnelSettings


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


@dataclass(frozen=True)
class Hostnames:
    """Hostnames Traefik routes. Public ones go through the tunnel; *.localhost ones stay local."""

    grafana: str
    n8n: str
    s3: str
    s3_console: str
    prometheus: str
    extra_public: tuple[str, ...]
    local_aliases: bool
    """Routed services also answer at <first label>.localhost."""

    @property
    def public(self) -> tuple[str, ...]:
        return (self.grafana, self.n8n, self.s3_console, self.s3, *self.extra_public)

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
    core: CoreSettings
    observability: ObservabilitySettings
    runner: RunnerSettings | None
    """None unless runnerEnabled."""


@dataclass(frozen=True)
class EnvironmentSettings:
    """What an environment stack deploys, and where it finds the platform."""

    name: Literal["dev", "stg", "prod"]
    platform_stack: str
    """The platform's stack reference: `platform`, or organization/project/stack."""
    database: DatabaseSettings
    allow_published_database_ports: bool


@dataclass(frozen=True)
class Settings:
    stack: str
    """platform, dev, stg or prod: the stack name is what the stack deploys."""
    stopped: bool
    """Scale every service of the stack to zero (`ops stop`); volumes, secrets and passwords stay."""
    protect_data: bool
    stateful_placement: tuple[str, ...]
    restart_max_attempts: int
    platform: PlatformSettings | None
    """Set in the platform stack only."""
    environment: EnvironmentSettings | None
    """Set in dev, stg and prod only."""


class _Reader:
    """Reads keys declared in Pulumi.yaml, applying their defaults, and collects problems."""

    def __init__(self, config: pulumi.Config, declared: dict[str, dict[str, Any]]) -> None:
        self._config = config
        self._declared = declared
        self.problems: list[str] = []

    def problem(self, key: str, what: str, fix: str) -> None:
        self.problems.append(f"{PROJECT}:{key}: {what}. Fix: {fix}")

    def _raw(self, key: str) -> str | None:
        if key not in self._declared:
            raise KeyError(f"{key} is read by the program but not declared in Pulumi.yaml")
        value = self._config.get(key)
        if value is None and "default" in self._declared[key]:
            default = self._declared[key]["default"]
            value = str(default).lower() if isinstance(default, bool) else str(default)
        return value

    def is_set(self, key: str) -> bool:
        """Whether the stack sets `key` (plain or secret), rather than leaving its default."""
        return self._config.get(key) is not None

    def string(self, key: str, example: str = "<value>") -> str:
        value = self._raw(key)
        if value is None:
            self.problem(key, "is required", f"pulumi config set {PROJECT}:{key} {example}")
            return ""
        return value.strip()

    def integer(self, key: str, minimum: int, maximum: int = 2**31) -> int:
        value = self.string(key)
        try:
            number = int(value)
        except ValueError:
            self.problem(key, f"{value!r} is not a whole number", f"pulumi config set {PROJECT}:{key} {minimum}")
            return minimum
        if not minimum <= number <= maximum:
            self.problem(
                key,
                f"{number} is outside {minimum}..{maximum}",
                f"pulumi config set {PROJECT}:{key} <a number from {minimum} to {maximum}>",
            )
        return number

    def boolean(self, key: str) -> bool:
        value = self.string(key).lower()
        if value not in ("true", "false"):
            self.problem(key, f"{value!r} is not true or false", f"pulumi config set {PROJECT}:{key} true")
        return value == "true"

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.string(key, allowed[0])
        if value == "" and "" not in allowed:
            self.problem(key, "is required", f"pulumi config set {PROJECT}:{key} {allowed[0]}")
        elif value not in allowed:
            shown = ", ".join(repr(a) if a == "" else a for a in allowed)
            self.problem(key, f"{value!r} is not one of {shown}", f"pulumi config set {PROJECT}:{key} {allowed[-1]}")
        return value

    def matching(self, key: str, pattern: re.Pattern[str], example: str) -> str:
        value = self.string(key, example)
        if value and not pattern.match(value):
            self.problem(key, f"{value!r} is not valid (e.g. {example})", f"pulumi config set {PROJECT}:{key} {example}")
        return value

    def listing(self, key: str, pattern: re.Pattern[str], example: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in self.string(key).split(",") if item.strip())
        bad = [item for item in items if not pattern.match(item)]
        if bad:
            self.problem(
                key, f"{', '.join(bad)} not valid (e.g. {example})", f"pulumi config set {PROJECT}:{key} {example}"
            )
        return items

    def resources(self, cpus_key: str, memory_key: str) -> Resources:
        cpus, memory = self.string(cpus_key), self.string(memory_key)
        try:
            return Resources.parse(cpus, memory)
        except ValueError as error:
            self.problem(
                f"{cpus_key}/{memory_key}",
                str(error),
                f"pulumi config set {PROJECT}:{cpus_key} 0.10-0.50 && pulumi config set {PROJECT}:{memory_key} 256M-512M",
            )
            return Resources(0.1, 0.1, 64, 64)

    def secret(self, key: str) -> pulumi.Output[str] | None:
        """A secret key (never declared in Pulumi.yaml); None when it is not set."""
        if self._config.get(key) is None:
            return None
        return self._config.require_secret(key)

    def require_secret(self, key: str, reason: str, what: str) -> pulumi.Output[str] | None:
        value = self.secret(key)
        if value is None:
            self.problem(key, f"is required {reason}", f"pulumi config set --secret {PROJECT}:{key} <{what}>")
        return value


PLATFORM_ONLY_KEYS = (
    "domain", "traefikPublishPorts", "traefikDashboardUser", "rateLimitAverage", "rateLimitBurst", "tunnelMode",
    "cloudflareAccountId", "cloudflareZoneId", "localAliases", "extraPublicHostnames", "monitoredEnvironments",
    "appScrapeTargets", "prometheusRetention", "scrapeInterval", "lokiRetentionHours", "timezone", "runnerEnabled",
    "runnersStopped", "runnerReplicas", "runnerScope", "runnerOwner", "runnerLabels", "runnerEphemeral",
)
ENVIRONMENT_ONLY_KEYS = (
    "platformStack", "postgresPort", "postgresCpus", "postgresMemory", "postgresConfigFile", "postgresShmSizeMb",
    "redisPort", "redisCpus", "redisMemory", "redisMaxmemoryMb", "redisAppendfsync", "allowPublishedDatabasePorts",
    "backupEnabled", "backupS3Endpoint", "backupBucket", "backupSchedule", "backupRetentionDays",
)
TRAEFIK_PORTS = {80: "Traefik web", 443: "Traefik websecure", 8080: "Traefik dashboard"}
"""Published by the platform on every node (traefikPublishPorts), so no environment may take them."""


def load_settings(config: pulumi.Config | None = None, stack: str | None = None) -> Settings:
    """Read and validate the stack's configuration; raise SettingsError listing every problem."""
    read = _Reader(config or pulumi.Config(PROJECT), declared_config())
    stack = stack or pulumi.get_stack()
    if stack not in STACKS:
        raise SettingsError(
            f"Stack '{stack}' is not one of {', '.join(STACKS)}: the stack name says what it deploys. "
            f"Fix: pulumi stack select {ENVIRONMENTS[0]} (or pulumi stack init {PLATFORM})"
        )
    environment = read.string("environment")
    if environment and environment != stack:
        read.problem(
            "environment",
            f"says {environment!r} but this is stack '{stack}' (the stack name is the environment)",
            f"pulumi config rm {PROJECT}:environment -s {stack}",
        )
    settings = Settings(
        stack=stack,
        stopped=read.boolean("stopped"),
        protect_data=_protect_data(read, stack),
        stateful_placement=read.listing("statefulPlacement", _CONSTRAINT, "node.labels.nextcandle.data==true"),
        restart_max_attempts=read.integer("restartMaxAttempts", 1, 100),
        platform=_platform_settings(read) if stack == PLATFORM else None,
        environment=_environment_settings(read, stack) if stack != PLATFORM else None,
    )
    if read.problems:
        listed = "\n".join(f"  - {problem}" for problem in read.problems)
        raise SettingsError(f"Invalid configuration for stack '{stack}':\n{listed}")
    return settings


def _protect_data(read: _Reader, stack: str) -> bool:
    """stg and prod keep their data protected unless `unprotectData` names the stack itself."""
    protect = read.boolean("protectData")
    override = read.string("unprotectData")
    if override and override != stack:
        read.problem(
            "unprotectData",
            f"is {override!r}; it must name this stack ('{stack}') to take effect, so a copied stack file cannot carry it",
            f"pulumi config rm {PROJECT}:unprotectData -s {stack}",
        )
    if stack not in PROTECTED_ENVIRONMENTS:
        return protect
    if override == stack:
        return False
    if not protect:
        read.problem(
            "protectData",
            f"cannot be false in {stack}: its data stays protected",
            f"pulumi config rm {PROJECT}:protectData -s {stack} "
            f"(to let {stack}'s data go on purpose: pulumi config set {PROJECT}:unprotectData {stack} -s {stack})",
        )
    return True


def _wrong_stack_keys(read: _Reader, keys: tuple[str, ...], belongs: str, stack: str) -> None:
    for key in keys:
        if read.is_set(key):
            read.problem(key, f"applies to the {belongs} only, not to stack '{stack}'", f"pulumi config rm {PROJECT}:{key} -s {stack}")


def _platform_settings(read: _Reader) -> PlatformSettings:
    _wrong_stack_keys(read, ENVIRONMENT_ONLY_KEYS, "environment stacks (dev, stg, prod)", PLATFORM)
    domain = read.matching("domain", _DOMAIN, "nextcandle.io")
    hostnames = Hostnames(
        grafana=f"grafana.{domain}",
        n8n=f"n8n.{domain}",
        s3=f"s3.{domain}",
        s3_console=f"minio.{domain}",
        prometheus="prometheus.localhost",
        extra_public=read.listing("extraPublicHostnames", _DOMAIN, "www.nextcandle.io,stg.nextcandle.io"),
        local_aliases=read.boolean("localAliases"),
    )
    core = CoreSettings(
        publish_ports=read.boolean("traefikPublishPorts"),
        dashboard_user=read.matching("traefikDashboardUser", re.compile(r"^[A-Za-z0-9_.-]{1,64}$"), "admin"),
        rate_limit_average=read.integer("rateLimitAverage", 1),
        rate_limit_burst=read.integer("rateLimitBurst", 1),
        tunnel=_tunnel_settings(read),
    )
    observability = ObservabilitySettings(
        monitored_environments=read.listing("monitoredEnvironments", re.compile(r"^(dev|stg|prod)$"), "dev,stg,prod"),
        app_scrape_targets=read.listing("appScrapeTargets", _TARGET, "dev_auth:8080"),
        prometheus_retention=read.matching("prometheusRetention", _DURATION, "15d"),
        scrape_interval=read.matching("scrapeInterval", _DURATION, "15s"),
        loki_retention_hours=read.integer("lokiRetentionHours", 24),
        alert_webhook_url=read.secret("alertWebhookUrl"),
    )
    return PlatformSettings(
        domain=domain,
        hostnames=hostnames,
        timezone=read.matching("timezone", re.compile(r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$"), "Asia/Seoul"),
        core=core,
        observability=observability,
        runner=_runner_settings(read),
    )


def _environment_settings(read: _Reader, stack: str) -> EnvironmentSettings:
    _wrong_stack_keys(read, PLATFORM_ONLY_KEYS, f"platform stack ({PLATFORM})", stack)
    postgres_config_file = read.string("postgresConfigFile")
    if not (CONFIGS / "postgres" / postgres_config_file).is_file():
        available = ", ".join(sorted(p.name for p in (CONFIGS / "postgres").glob("*.conf") if p.name != "pg_hba.conf"))
        read.problem(
            "postgresConfigFile",
            f"configs/postgres/{postgres_config_file} does not exist (available: {available})",
            f"pulumi config set {PROJECT}:postgresConfigFile postgresql.conf",
        )
    database = DatabaseSettings(
        postgres_port=read.integer("postgresPort", 0, 65535),
        postgres_resources=read.resources("postgresCpus", "postgresMemory"),
        postgres_config_file=postgres_config_file,
        postgres_shm_size_mb=read.integer("postgresShmSizeMb", 64, 65536),
        redis_port=read.integer("redisPort", 0, 65535),
        redis_resources=read.resources("redisCpus", "redisMemory"),
        redis_maxmemory_mb=read.integer("redisMaxmemoryMb", 16, 1 << 20),
        redis_appendfsync=read.choice("redisAppendfsync", APPENDFSYNC_VALUES),
        backup=_backup_settings(read),
    )
    if database.redis_maxmemory_mb >= database.redis_resources.memory_limit_mb:
        read.problem(
            "redisMaxmemoryMb",
            f"{database.redis_maxmemory_mb} MB leaves no headroom under the {database.redis_resources.memory_limit_mb} MB "
            "memory limit, so the kernel would kill Redis before noeviction applies",
            f"pulumi config set {PROJECT}:redisMaxmemoryMb {database.redis_resources.memory_limit_mb // 2}",
        )
    _check_port_clashes(read, database)
    return EnvironmentSettings(
        name=cast(Literal["dev", "stg", "prod"], stack),
        platform_stack=read.matching("platformStack", re.compile(r"^([A-Za-z0-9_.-]+/){0,2}[A-Za-z0-9_.-]+$"), PLATFORM),
        database=database,
        allow_published_database_ports=read.boolean("allowPublishedDatabasePorts"),
    )


def _tunnel_settings(read: _Reader) -> TunnelSettings:
    mode = read.choice("tunnelMode", TUNNEL_MODES)
    account_id = read.string("cloudflareAccountId")
    zone_id = read.string("cloudflareZoneId")
    token = read.secret("cloudflareTunnelToken")
    api_token = read.secret("cloudflareApiToken")
    if mode == "token" and token is None:
        read.require_secret("cloudflareTunnelToken", "when tunnelMode is token", "tunnel token from the Zero Trust dashboard")
    if mode == "managed":
        if api_token is None:
            read.require_secret(
                "cloudflareApiToken", "when tunnelMode is managed", "API token with Tunnel and DNS edit rights"
            )
        for key, value in (("cloudflareAccountId", account_id), ("cloudflareZoneId", zone_id)):
            if not _CLOUDFLARE_ID.match(value):
                read.problem(
                    key,
                    f"{value!r} is not a 32-character Cloudflare id (needed when tunnelMode is managed)",
                    f"pulumi config set {PROJECT}:{key} <id from the Cloudflare dashboard>",
                )
    return TunnelSettings(cast(Any, mode), token, api_token, account_id, zone_id)


def _backup_settings(read: _Reader) -> BackupSettings | None:
    schedule = read.matching("backupSchedule", _CRON, '"0 3 * * *"')
    retention_days = read.integer("backupRetentionDays", 1, 3650)
    endpoint = read.matching("backupS3Endpoint", re.compile(r"^(https?://\S+)?$"), "https://s3.eu-central-1.amazonaws.com")
    bucket = read.matching("backupBucket", re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"), "backups")
    access_key, secret_key = read.secret("backupS3AccessKey"), read.secret("backupS3SecretKey")
    if not read.boolean("backupEnabled"):
        return None
    if endpoint:
        for key, value in (("backupS3AccessKey", access_key), ("backupS3SecretKey", secret_key)):
            if value is None:
                read.require_secret(key, f"for backups to {endpoint}", "key of that S3 service")
    else:
        for key, value in (("backupS3AccessKey", access_key), ("backupS3SecretKey", secret_key)):
            if value is not None:
                read.problem(
                    key,
                    "is only used with backupS3Endpoint; backups to the platform's object storage take its keys "
                    "from the platform stack",
                    f"pulumi config rm {PROJECT}:{key}",
                )
    return BackupSettings(schedule, retention_days, endpoint, bucket, access_key, secret_key)


def _runner_settings(read: _Reader) -> RunnerSettings | None:
    scope = read.choice("runnerScope", ("repo", "org"))
    owner = read.string("runnerOwner")
    registration_token = read.secret("runnerRegistrationToken")
    access_token = read.secret("runnerAccessToken")
    ephemeral = read.boolean("runnerEphemeral")
    replicas = read.integer("runnerReplicas", 1, 64)
    labels = read.listing("runnerLabels", re.compile(r"^[A-Za-z0-9_.-]+$"), "self-hosted,linux")
    stopped = read.boolean("runnersStopped")
    if not read.boolean("runnerEnabled"):
        return None
    if not owner:
        example = "my-org" if scope == "org" else "https://github.com/my-org/my-repo"
        read.problem("runnerOwner", "is required when runnerEnabled is true", f"pulumi config set {PROJECT}:runnerOwner {example}")
    elif scope == "repo" and not owner.startswith("https://"):
        read.problem(
            "runnerOwner",
            f"{owner!r} must be a repository URL when runnerScope is repo",
            f"pulumi config set {PROJECT}:runnerOwner https://github.com/my-org/my-repo",
        )
    if registration_token is None and access_token is None:
        read.problem(
            "runnerAccessToken",
            "a runner token is required when runnerEnabled is true",
            f"pulumi config set --secret {PROJECT}:runnerAccessToken <personal access token> "
            f"(or: pulumi config set --secret {PROJECT}:runnerRegistrationToken <registration token, valid 1 hour>)",
        )
    return RunnerSettings(
        replicas=replicas,
        scope=cast(Literal["repo", "org"], scope),
        owner=owner,
        labels=labels,
        ephemeral=ephemeral,
        stopped=stopped,
        registration_token=registration_token,
        access_token=access_token,
    )


def _check_port_clashes(read: _Reader, database: DatabaseSettings) -> None:
    used = dict(TRAEFIK_PORTS)
    for key, port in (("postgresPort", database.postgres_port), ("redisPort", database.redis_port)):
        if port == 0:
            continue
        if port in used:
            read.problem(key, f"port {port} is already used by {used[port]}", f"pulumi config set {PROJECT}:{key} <another port, or 0>")
        used[port] = key
