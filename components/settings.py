"""Every setting of the program, read once from Pulumi config into frozen, typed objects.

Each setting is declared once in components/settings_table.py (key, scope, type, default, secret),
from which Pulumi.yaml's `config:` block is written.
Every problem found is reported at once, each with the key and the command that fixes it, before any
resource is declared.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from pathlib import Path
from typing import Any, Literal, cast

import pulumi

from components.images import POSTGRES_RELEASES
from components.settings_checks import (
    app_secret_lines,
    app_secrets_problem,
    bucket_problem,
    off_site_problem,
    platform_stack_problem,
    port_problems,
    schedule_problem,
    webhook_problem,
)
from components.settings_platform import runner_settings, tunnel_settings
from components.settings_reader import (
    _CONFIG_FILE,
    _CONSTRAINT,
    _DOMAIN,
    _HOST_PATH,
    _NAME,
    _TARGET,
    SettingsError,
    _Reader,
    configured_keys,
)
from components.settings_table import ENVIRONMENT_ONLY_KEYS, PLATFORM_ONLY_KEYS, config_block
from components.settings_types import (
    BackupSettings,
    CoreSettings,
    DatabaseSettings,
    EnvironmentSettings,
    Hostnames,
    ObservabilitySettings,
    PlatformSettings,
    Resources,
    RunnerSettings,
    Settings,
    TunnelSettings,
)
from names import ENVIRONMENTS, PLATFORM, PROJECT, PROTECTED_ENVIRONMENTS, STACKS, TRAEFIK_DASHBOARD_PORT, TRAEFIK_WEB_PORT

__all__ = [
    "CONFIGS", "ROOT", "BackupSettings", "CoreSettings", "DatabaseSettings", "EnvironmentSettings", "Hostnames",
    "ObservabilitySettings", "PlatformSettings", "Resources", "RunnerSettings", "Settings", "SettingsError",
    "TunnelSettings", "declared_config", "load_settings",
]

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
APPENDFSYNC_VALUES = ("", "always", "everysec", "no")

def declared_config() -> dict[str, dict[str, Any]]:
    """Every plain setting: key -> {type, description, default} (Pulumi.yaml's `config:` block)."""
    return config_block()


ADOPTED_LOGIN_KEY = "adoptedPostgresLogin"
"""Written and removed by `python -m ops adopt`: the compose stack's database login (JSON), kept until the
program's login has been given to the adopted database. The program itself never reads it."""
TRAEFIK_PORTS = {TRAEFIK_WEB_PORT: "Traefik web", TRAEFIK_DASHBOARD_PORT: "Traefik dashboard"}
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
    read.check_keys(stack, *configured_keys())
    _naming_this_stack(read, "environment", stack, "the stack name is the environment")
    settings = Settings(
        stack=stack,
        stopped=read.boolean("stopped"),
        protect_data=_protect_data(read, stack),
        stateful_placement=read.listing("statefulPlacement", _CONSTRAINT, "node.labels.nextcandle.data==true"),
        restart_max_attempts=read.integer("restartMaxAttempts", 1, 100),
        data_directory=_data_directory(read, stack),
        platform=_platform_settings(read) if stack == PLATFORM else None,
        environment=_environment_settings(read, stack) if stack != PLATFORM else None,
    )
    if read.problems:
        listed = "\n".join(f"  - {problem}" for problem in read.problems)
        raise SettingsError(f"Invalid configuration for stack '{stack}':\n{listed}")
    return settings


def _data_directory(read: _Reader, stack: str) -> str:
    """An absolute, normalised host path, or empty."""
    value = read.string("dataDirectory")
    example = f"/srv/nextcandle-infra/.data{'' if stack == PLATFORM else '/' + stack}"
    if value and (not _HOST_PATH.match(value) or posixpath.normpath(value) != value or value == "/"):
        read.problem("dataDirectory", f"{value!r} is not an absolute, normalised directory path", f"pulumi config set {PROJECT}:dataDirectory {example}")
    return value


def _naming_this_stack(read: _Reader, key: str, stack: str, why: str) -> str:
    """A setting whose value, when set, must be the stack's own name."""
    value = read.string(key)
    if value and value != stack:
        read.problem(key, f"is {value!r} but this is stack '{stack}': {why}", f"pulumi config rm {PROJECT}:{key} -s {stack}")
    return value


def _protect_data(read: _Reader, stack: str) -> bool:
    """stg and prod keep their data protected unless `unprotectData` names the stack itself."""
    protect = read.boolean("protectData")
    override = _naming_this_stack(read, "unprotectData", stack, "it must name its own stack, so a copied stack file cannot carry it")
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


def _platform_settings(read: _Reader) -> PlatformSettings:
    read.wrong_stack_keys(ENVIRONMENT_ONLY_KEYS, "environment stacks (dev, stg, prod)", PLATFORM)
    domain = read.matching("domain", _DOMAIN, "nextcandle.io")
    hostnames = Hostnames(
        grafana=f"grafana.{domain}",
        n8n=f"n8n.{domain}",
        s3=f"s3.{domain}",
        extra_public=read.listing("extraPublicHostnames", _DOMAIN, "www.nextcandle.io,stg.nextcandle.io"),
        local_aliases=read.boolean("localAliases"),
        object_storage_public=read.boolean("objectStoragePublic"),
    )
    core = CoreSettings(
        publish_ports=read.boolean("traefikPublishPorts"),
        publish_dashboard=read.boolean("traefikDashboardPublished"),
        dashboard_user=read.matching("traefikDashboardUser", _NAME, "admin"),
        rate_limit_average=read.integer("rateLimitAverage", 1, 100_000),
        rate_limit_burst=read.integer("rateLimitBurst", 1, 100_000),
        tunnel=tunnel_settings(read),
        external_public_network=read.boolean("externalPublicNetwork"),
    )
    built_in = {hostnames.grafana, hostnames.n8n, hostnames.s3} & set(hostnames.extra_public)
    if built_in:
        read.problem("extraPublicHostnames", f"{', '.join(sorted(built_in))} is routed already (one DNS record and route per name)",
                     f"pulumi config rm {PROJECT}:extraPublicHostnames")
    if core.tunnel.mode == "managed":
        outside = [host for host in hostnames.extra_public if host != domain and not host.endswith(f".{domain}")]
        if outside:
            read.problem(
                "extraPublicHostnames",
                f"{', '.join(outside)} not in the zone {domain}: the managed tunnel creates DNS records in that zone only",
                f"pulumi config set {PROJECT}:extraPublicHostnames www.{domain}",
            )
    observability = ObservabilitySettings(
        # Prometheus refuses a DNS job with no name: at least one environment.
        monitored_environments=read.listing("monitoredEnvironments", re.compile(r"^(dev|stg|prod)$"), "dev,stg,prod", required=True),
        app_scrape_targets=read.listing("appScrapeTargets", _TARGET, "dev_auth:8080"),
        prometheus_retention=read.duration("prometheusRetention", "15d", 2 * 3600, 10 * 365 * 86400),
        # Prometheus refuses an interval below its 10 s scrape timeout.
        scrape_interval=read.duration("scrapeInterval", "15s", 10, 3600),
        loki_retention_hours=read.integer("lokiRetentionHours", 24, 24 * 3650),
        alert_webhook_url=read.secret("alertWebhookUrl", check=webhook_problem),
    )
    return PlatformSettings(
        domain=domain,
        hostnames=hostnames,
        timezone=read.timezone("timezone", "Asia/Seoul"),
        n8n_owner_set_up=read.boolean("n8nOwnerSetUp"),
        backup=_backup_settings(read, own_hosts=(hostnames.s3,)),
        core=core,
        observability=observability,
        runner=runner_settings(read),
        core_only=read.boolean("platformCoreOnly"),
    )


def _client_networks(read: _Reader) -> tuple[str, ...]:
    networks = read.listing("databaseClientNetworks", re.compile(r"^[0-9a-fA-F.:]+/[0-9]{1,3}$", re.ASCII), "192.168.10.0/24")
    for network in networks:
        try:
            parsed = ipaddress.ip_network(network, strict=False)
        except ValueError:
            read.problem("databaseClientNetworks", f"{network} is not a network", f"pulumi config set {PROJECT}:databaseClientNetworks 192.168.10.0/24")
            continue
        if parsed.prefixlen < 8:
            read.problem(
                "databaseClientNetworks",
                f"{network} admits {'the whole internet' if parsed.prefixlen == 0 else 'far too many addresses'} to the database",
                f"pulumi config set {PROJECT}:databaseClientNetworks <your office or VPN network, e.g. 192.168.10.0/24>",
            )
    return networks


def _postgres_config_file(read: _Reader) -> str:
    """A file name under configs/postgres/, never a path: the program reads no other file of the machine."""
    value = read.string("postgresConfigFile")
    available = ", ".join(sorted(p.name for p in (CONFIGS / "postgres").glob("*.conf") if p.name != "pg_hba.conf"))
    fix = f"pulumi config set {PROJECT}:postgresConfigFile postgresql.conf (available: {available})"
    if not _CONFIG_FILE.match(value) or value == "pg_hba.conf":
        read.problem("postgresConfigFile", f"{value!r} is not the name of a server configuration under configs/postgres/", fix)
    elif not (CONFIGS / "postgres" / value).is_file():
        read.problem("postgresConfigFile", f"configs/postgres/{value} does not exist", fix)
    return value


def _postgres_majors(read: _Reader) -> tuple[int, int | None]:
    """postgresMajorVersion and postgresPreviousMajorVersion: majors the images pin, not the same."""
    majors = tuple(POSTGRES_RELEASES)
    major = read.integer("postgresMajorVersion", min(majors), max(majors))
    if min(majors) <= major <= max(majors) and major not in majors:
        read.problem("postgresMajorVersion", f"no image is pinned for PostgreSQL {major}", f"pulumi config set {PROJECT}:postgresMajorVersion {max(majors)}")
    previous = read.integer("postgresPreviousMajorVersion", 0, max(majors))
    if previous and (previous not in majors or previous == major):
        read.problem("postgresPreviousMajorVersion", f"{previous} is not another pinned major than postgresMajorVersion {major}",
                     f"python -m ops upgrade-postgres <env> --confirm (or pulumi config rm {PROJECT}:postgresPreviousMajorVersion)")
    return major, previous or None


def _environment_settings(read: _Reader, stack: str) -> EnvironmentSettings:
    read.wrong_stack_keys(PLATFORM_ONLY_KEYS, f"platform stack ({PLATFORM})", stack)
    postgres_config_file = _postgres_config_file(read)
    major, previous = _postgres_majors(read)
    database = DatabaseSettings(
        postgres_major=major,
        postgres_previous_major=previous,
        postgres_port=read.integer("postgresPort", 0, 65535),
        postgres_resources=read.resources("postgresCpus", "postgresMemory"),
        postgres_config_file=postgres_config_file,
        postgres_shm_size_mb=read.integer("postgresShmSizeMb", 64, 65536),
        redis_port=read.integer("redisPort", 0, 65535),
        redis_resources=read.resources("redisCpus", "redisMemory"),
        redis_maxmemory_mb=read.integer("redisMaxmemoryMb", 16, 1 << 20),
        redis_appendfsync=read.choice("redisAppendfsync", APPENDFSYNC_VALUES),
        backup=_backup_settings(read, environment=True),
    )
    if database.redis_maxmemory_mb >= database.redis_resources.memory_limit_mb:
        read.problem(
            "redisMaxmemoryMb",
            f"{database.redis_maxmemory_mb} MB leaves no headroom under the {database.redis_resources.memory_limit_mb} MB "
            "memory limit, so the kernel would kill Redis before noeviction applies",
            f"pulumi config set {PROJECT}:redisMaxmemoryMb {database.redis_resources.memory_limit_mb // 2}",
        )
    if database.postgres_shm_size_mb >= database.postgres_resources.memory_limit_mb:
        read.problem(
            "postgresShmSizeMb",
            f"{database.postgres_shm_size_mb} MB of /dev/shm counts against the {database.postgres_resources.memory_limit_mb} MB "
            "memory limit and leaves PostgreSQL none",
            f"pulumi config set {PROJECT}:postgresShmSizeMb {max(64, database.postgres_resources.memory_limit_mb // 4)}",
        )
    _check_port_clashes(read, database, stack)
    return EnvironmentSettings(
        name=cast(Literal["dev", "stg", "prod"], stack),
        platform_stack=_platform_stack(read),
        database=database,
        client_networks=_client_networks(read),
        runner_access=read.boolean("runnerDatabaseAccess"),
        app_secrets=read.secret("appSecrets", check=app_secrets_problem),
        app_secret_names=read.secret_names("appSecrets", app_secret_lines),
    )


def _platform_stack(read: _Reader) -> str:
    name = read.matching("platformStack", re.compile(r"^([A-Za-z0-9_.-]+/){0,2}[A-Za-z0-9_.-]+$"), PLATFORM)
    read.report("platformStack", platform_stack_problem("platformStack", name, ENVIRONMENTS))
    return name


def _backup_settings(read: _Reader, own_hosts: tuple[str, ...] = (), environment: bool = False) -> BackupSettings | None:
    """`own_hosts`: the platform's public names of its object store, which no off-site target may be.
    An environment's backups in the platform's store go to its own bucket, which its key alone reaches."""
    schedule = read.cron("backupSchedule", '"0 3 * * *"')
    read.report("backupSchedule", schedule_problem("backupSchedule", schedule))
    retention_days = read.integer("backupRetentionDays", 1, 3650)
    endpoint = read.url("backupS3Endpoint", "https://s3.eu-central-1.amazonaws.com")
    if endpoint:
        read.report("backupS3Endpoint", off_site_problem("backupS3Endpoint", endpoint, own_hosts))
    bucket = read.string("backupBucket", "backups")
    read.report("backupBucket", bucket_problem("backupBucket", bucket))
    if environment and not endpoint and read.is_set("backupBucket"):
        read.problem("backupBucket", "names an off-site bucket, and backupS3Endpoint is not set: in the platform's object store "
                     "an environment's backups go to <env>-backups, which only its own S3 identity reaches",
                     f"pulumi config rm {PROJECT}:backupBucket (or set backupS3Endpoint)")
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


def _check_port_clashes(read: _Reader, database: DatabaseSettings, stack: str) -> None:
    """Every stack runs on the same swarm, whose ingress publishes a port on every node: a port
    can serve one service of one stack only."""
    ports = {"postgresPort": database.postgres_port, "redisPort": database.redis_port}
    for key, found in port_problems(ports, stack, declared_config(), TRAEFIK_PORTS):
        read.report(key, found)
