"""Every setting of the program, read once from Pulumi config into frozen, typed objects.

Each setting is declared once in components/settings_table.py (key, scope, type, default, secret),
from which Pulumi.yaml's `config:` block is written.
Every problem found is reported at once, each with the key and the command that fixes it, before any
resource is declared.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import posixpath
import re
import urllib.parse
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import pulumi
import yaml

from components.settings_table import ENVIRONMENT_ONLY_KEYS, PLATFORM_ONLY_KEYS, SECRET_KEYS, config_block
from names import ENVIRONMENTS, PLATFORM, PROJECT, PROTECTED_ENVIRONMENTS, STACKS, TRAEFIK_DASHBOARD_PORT, TRAEFIK_WEB_PORT

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
TUNNEL_MODES = ("none", "token", "managed")
APPENDFSYNC_VALUES = ("", "always", "everysec", "no")

# re.ASCII everywhere: \d would otherwise accept digits of every script ("١٢٣").
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.ASCII)
_CLOUDFLARE_ID = re.compile(r"^[0-9a-f]{32}$", re.ASCII)
_CPUS = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$", re.ASCII)
_MEMORY = re.compile(r"^(\d+)([MG])-(\d+)([MG])$", re.ASCII)
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$", re.ASCII)
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_TARGET = re.compile(r"^[a-z0-9][a-z0-9_.-]*:(\d{1,5})$", re.ASCII)
# Swarm's placement attributes (docs.docker.com/engine/swarm/services/#placement-constraints).
_CONSTRAINT = re.compile(
    r"^(node\.id|node\.hostname|node\.role|node\.platform\.os|node\.platform\.arch|node\.labels\.[A-Za-z0-9_.-]+|"
    r"engine\.labels\.[A-Za-z0-9_.-]+)\s*(==|!=)\s*[A-Za-z0-9_.-]+$",
    re.ASCII,
)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$", re.ASCII)
_HOST_PATH = re.compile(r"^(/[A-Za-z0-9_.@+-]+)+$", re.ASCII)
_CONFIG_FILE = re.compile(r"^[A-Za-z0-9_.-]+\.conf$", re.ASCII)
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_NAMES = {
    "month": {m: i for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)},
    "day of week": {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])},
}
class SettingsError(pulumi.RunError):
    """The stack's configuration is invalid. Pulumi shows the message without a traceback."""


def declared_config() -> dict[str, dict[str, Any]]:
    """Every plain setting: key -> {type, description, default} (Pulumi.yaml's `config:` block)."""
    return config_block()


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
    n8n_owner_set_up: bool
    core: CoreSettings
    observability: ObservabilitySettings
    runner: RunnerSettings | None
    """None unless runnerEnabled."""
    backup: BackupSettings | None
    """Grafana, n8n and (to an off-site target) the object store's buckets; None when backupEnabled is false."""


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
        return self._default(key) if value is None else value

    def is_set(self, key: str) -> bool:
        """Whether the stack sets `key` to other than its default. (The engine passes the defaults
        of Pulumi.yaml to the program as values, so "present" alone would mean nothing.)"""
        value = self._config.get(key)
        return value is not None and value != self._default(key)

    def _default(self, key: str) -> str | None:
        if "default" not in self._declared.get(key, {}):
            return None
        default = self._declared[key]["default"]
        return str(default).lower() if isinstance(default, bool) else str(default)

    def string(self, key: str, example: str = "<value>") -> str:
        value = self._raw(key)
        if value is None:
            self.problem(key, "is required", f"pulumi config set {PROJECT}:{key} {example}")
            return ""
        return value.strip()

    def integer(self, key: str, minimum: int, maximum: int = 2**31) -> int:
        value = self.string(key)
        try:
            if not re.fullmatch(r"-?[0-9]+", value, re.ASCII):
                raise ValueError(value)
            number = int(value)
        except ValueError:
            self.problem(key, f"{value!r} is not a whole number", f"pulumi config set {PROJECT}:{key} {minimum}")
            return minimum
        if not minimum <= number <= maximum:
            self.outside(key, str(number), f"{minimum}..{maximum}", f"<a number from {minimum} to {maximum}>")
        return number

    def outside(self, key: str, value: str, bounds: str, example: str) -> None:
        self.problem(key, f"{value} is outside {bounds}", f"pulumi config set {PROJECT}:{key} {example}")

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

    def matching(self, key: str, pattern: re.Pattern[str], example: str, optional: bool = False) -> str:
        """A value the pattern accepts; empty only when `optional` (empty then means "none")."""
        value = self.string(key, example)
        if not value and not optional:
            self.problem(key, "is empty", f"pulumi config set {PROJECT}:{key} {example} (or pulumi config rm {PROJECT}:{key} for the default)")
        elif value and not pattern.match(value):
            self.problem(key, f"{value!r} is not valid (e.g. {example})", f"pulumi config set {PROJECT}:{key} {example}")
        return value

    def duration(self, key: str, example: str, minimum_seconds: float, maximum_seconds: float) -> str:
        """A Prometheus-style duration (30s, 15d) within what its consumer accepts."""
        value = self.matching(key, _DURATION, example)
        match = _DURATION.match(value)
        if match:
            seconds = int(match[1]) * _DURATION_SECONDS[match[2]]
            if not minimum_seconds <= seconds <= maximum_seconds:
                self.outside(key, value, f"{_shown(minimum_seconds)}..{_shown(maximum_seconds)}", example)
        return value

    def cron(self, key: str, example: str) -> str:
        """Five cron fields (minute hour day-of-month month day-of-week), each within its range."""
        value = self.string(key, example)
        fields = value.split()
        if len(fields) != len(_CRON_FIELDS):
            self.problem(key, f"{value!r} needs 5 fields: minute hour day-of-month month day-of-week", f"pulumi config set {PROJECT}:{key} {example}")
            return value
        for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
            if not _cron_field_ok(text, low, high, _CRON_NAMES.get(name, {})):
                self.problem(key, f"{name} {text!r} is not within {low}-{high} (in {value!r})", f"pulumi config set {PROJECT}:{key} {example}")
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
            return Resources(0.1, 64, 64, 1024 * 1024)  # the widest bounds: no consequential problems

    def secret(self, key: str) -> pulumi.Output[str] | None:
        """A secret key (never declared in Pulumi.yaml); None when it is not set."""
        value = self._config.get(key)
        if value is None:
            return None
        if not value.strip():
            self.problem(key, "is empty", f"pulumi config set --secret {PROJECT}:{key} <value> (or pulumi config rm {PROJECT}:{key})")
        return self._config.require_secret(key)

    def check_keys(self, stack: str, configured: set[str], secret: set[str]) -> None:
        """Every key of the project's namespace is one we read, and secrets are stored as secrets."""
        known = [*self._declared, *SECRET_KEYS]
        for full in sorted(configured):
            namespace, _, key = full.partition(":")
            if namespace != PROJECT:
                continue
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.problem(key, f"is not a setting of this program{hint}", f"pulumi config rm {PROJECT}:{key} -s {stack}")
            elif key in SECRET_KEYS and full not in secret:
                self.problem(
                    key,
                    f"is stored in plain text in Pulumi.{stack}.yaml",
                    f"pulumi config set --secret {PROJECT}:{key} <value> -s {stack} (it replaces the plain value)",
                )

    def require_secret(self, key: str, reason: str, what: str) -> pulumi.Output[str] | None:
        value = self.secret(key)
        if value is None:
            self.problem(key, f"is required {reason}", f"pulumi config set --secret {PROJECT}:{key} <{what}>")
        return value


ADOPTED_LOGIN_KEY = "adoptedPostgresLogin"
"""Written and removed by `python -m ops adopt`: the compose stack's database login (JSON), kept until the
program's login has been given to the adopted database. The program itself never reads it."""
TRAEFIK_PORTS = {TRAEFIK_WEB_PORT: "Traefik web", TRAEFIK_DASHBOARD_PORT: "Traefik dashboard"}
"""Published by the platform on every node (traefikPublishPorts), so no environment may take them."""


def _shown(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= _DURATION_SECONDS[unit] and seconds % _DURATION_SECONDS[unit] == 0:
            return f"{int(seconds // _DURATION_SECONDS[unit])}{unit}"
    return f"{seconds:g}s"


def _cron_field_ok(text: str, low: int, high: int, names: dict[str, int]) -> bool:
    def number(part: str) -> int | None:
        if part.upper() in names:
            return names[part.upper()]
        return int(part) if re.fullmatch(r"[0-9]{1,2}", part, re.ASCII) else None

    for item in text.split(","):
        base, _, step = item.partition("/")
        if step and (not re.fullmatch(r"[0-9]{1,2}", step, re.ASCII) or int(step) == 0):
            return False
        if base == "*":
            continue
        bounds = [number(part) for part in base.split("-", 1)]
        if any(b is None or not low <= b <= high for b in bounds) or (len(bounds) == 2 and bounds[0] > bounds[1]):  # type: ignore[operator]
            return False
    return True


def configured_keys() -> tuple[set[str], set[str]]:
    """(every config key the stack sets, the secret ones), as the Pulumi runtime holds them. The SDK
    has no public way to list them; this is the one place that reads its internals."""
    from pulumi.runtime import config as runtime_config

    keys = set(runtime_config.get_config_env()) | set(runtime_config.CONFIG.get())
    secret = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return keys, secret


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
        extra_public=read.listing("extraPublicHostnames", _DOMAIN, "www.nextcandle.io,stg.nextcandle.io"),
        local_aliases=read.boolean("localAliases"),
    )
    core = CoreSettings(
        publish_ports=read.boolean("traefikPublishPorts"),
        dashboard_user=read.matching("traefikDashboardUser", _NAME, "admin"),
        rate_limit_average=read.integer("rateLimitAverage", 1, 100_000),
        rate_limit_burst=read.integer("rateLimitBurst", 1, 100_000),
        tunnel=_tunnel_settings(read),
        external_public_network=read.boolean("externalPublicNetwork"),
    )
    if core.tunnel.mode == "managed":
        outside = [host for host in hostnames.extra_public if host != domain and not host.endswith(f".{domain}")]
        if outside:
            read.problem(
                "extraPublicHostnames",
                f"{', '.join(outside)} not in the zone {domain}: the managed tunnel creates DNS records in that zone only",
                f"pulumi config set {PROJECT}:extraPublicHostnames www.{domain}",
            )
    observability = ObservabilitySettings(
        monitored_environments=read.listing("monitoredEnvironments", re.compile(r"^(dev|stg|prod)$"), "dev,stg,prod"),
        app_scrape_targets=read.listing("appScrapeTargets", _TARGET, "dev_auth:8080"),
        prometheus_retention=read.duration("prometheusRetention", "15d", 2 * 3600, 10 * 365 * 86400),
        # Prometheus refuses an interval below its 10 s scrape timeout.
        scrape_interval=read.duration("scrapeInterval", "15s", 10, 3600),
        loki_retention_hours=read.integer("lokiRetentionHours", 24, 24 * 3650),
        alert_webhook_url=read.secret("alertWebhookUrl"),
    )
    return PlatformSettings(
        domain=domain,
        hostnames=hostnames,
        timezone=_timezone(read),
        n8n_owner_set_up=read.boolean("n8nOwnerSetUp"),
        backup=_backup_settings(read),
        core=core,
        observability=observability,
        runner=_runner_settings(read),
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


def _timezone(read: _Reader) -> str:
    value = read.matching("timezone", re.compile(r"^[A-Za-z0-9_+/-]+$", re.ASCII), "Asia/Seoul")
    if value and value not in zoneinfo.available_timezones():
        read.problem("timezone", f"{value!r} is not a time zone of the tz database", f"pulumi config set {PROJECT}:timezone Asia/Seoul")
    return value


def _url(read: _Reader, key: str, example: str) -> str:
    """An http(s) URL with a host, or empty."""
    value = read.string(key, example)
    if value:
        parsed = urllib.parse.urlsplit(value)
        try:
            parsed.port  # noqa: B018 (raises on a bad port)
            valid = parsed.scheme in ("http", "https") and bool(parsed.hostname) and value.isascii() and " " not in value
        except ValueError:
            valid = False
        if not valid:
            read.problem(key, f"{value!r} is not an http(s) URL", f"pulumi config set {PROJECT}:{key} {example}")
    return value


def _environment_settings(read: _Reader, stack: str) -> EnvironmentSettings:
    _wrong_stack_keys(read, PLATFORM_ONLY_KEYS, f"platform stack ({PLATFORM})", stack)
    postgres_config_file = _postgres_config_file(read)
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
        platform_stack=read.matching("platformStack", re.compile(r"^([A-Za-z0-9_.-]+/){0,2}[A-Za-z0-9_.-]+$"), PLATFORM),
        database=database,
        client_networks=_client_networks(read),
        runner_access=read.boolean("runnerDatabaseAccess"),
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
    schedule = read.cron("backupSchedule", '"0 3 * * *"')
    retention_days = read.integer("backupRetentionDays", 1, 3650)
    endpoint = _url(read, "backupS3Endpoint", "https://s3.eu-central-1.amazonaws.com")
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
    labels = read.listing("runnerLabels", _NAME, "self-hosted,linux")
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


def _project_dir() -> Path:
    """Where the stack files are: this checkout, or NEXTCANDLE_PROJECT_DIR (python -m ops and the tests)."""
    return Path(os.environ.get("NEXTCANDLE_PROJECT_DIR") or ROOT)


def published_ports(stack: str) -> dict[int, str]:
    """The host ports another environment's stack file publishes (its setting or the default)."""
    path = _project_dir() / f"Pulumi.{stack}.yaml"
    values = (yaml.safe_load(path.read_text()) or {}).get("config") or {} if path.is_file() else {}
    declared = declared_config()
    ports = {}
    for key in ("postgresPort", "redisPort"):
        value = str(values.get(f"{PROJECT}:{key}", declared[key]["default"]))
        if value.isascii() and value.isdigit() and int(value):
            ports[int(value)] = f"{key} of stack {stack}"
    return ports


def _check_port_clashes(read: _Reader, database: DatabaseSettings, stack: str) -> None:
    """Every stack runs on the same swarm, whose ingress publishes a port on every node: a port
    can serve one service of one stack only."""
    used = dict(TRAEFIK_PORTS)
    for other in ENVIRONMENTS:
        if other != stack:
            used.update(published_ports(other))
    for key, port in (("postgresPort", database.postgres_port), ("redisPort", database.redis_port)):
        if port == 0:
            continue
        if port in used:
            read.problem(key, f"port {port} is already used by {used[port]}", f"pulumi config set {PROJECT}:{key} <another port, or 0>")
        used[port] = key
