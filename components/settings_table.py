"""Every setting of the program, declared once: its key, scope, type, default, description, whether
it is a secret, and a different valid value the data-safety test changes it to.

From this table come the `config:` block of Pulumi.yaml (`python -m components.settings_table`
writes it; a test checks they agree), the scope checks (a platform setting in an environment stack
is refused with its fix), the list of secrets (stored with `--secret`, never declared in Pulumi.yaml,
where a key without a default is required), `ops migrate`'s keys and the data-safety test's cases.
Adding a setting: one entry here, and its reader where it is used (components/settings.py).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

Scope = Literal["platform", "environment", "both"]
PLATFORM_SCOPE: Scope = "platform"
ENVIRONMENT_SCOPE: Scope = "environment"
BOTH: Scope = "both"
PULUMI_YAML = Path(__file__).resolve().parent.parent / "Pulumi.yaml"


@dataclass(frozen=True)
class Setting:
    key: str
    scope: Scope
    type: Literal["string", "boolean", "integer"]
    default: str | bool | int | None
    """None for secrets: they have no default."""
    description: str
    secret: bool = False
    changed: str | None = None
    """Another valid value; the data-safety test proves changing to it replaces no data (booleans flip)."""
    changes_freely: bool = True
    """False where a change is meant to touch data or needs an outside account (the data-safety test skips it)."""


SETTINGS: tuple[Setting, ...] = (
    Setting("environment", BOTH, "string", "",
            "Optional; when set it must equal the stack name (platform, dev, stg or prod), which alone says what a stack deploys.", changes_freely=False),
    Setting("stopped", BOTH, "boolean", False,
            "Every service of this stack scaled to zero (python -m ops stop <stack>); volumes, secrets and passwords stay."),
    Setting("protectData", BOTH, "boolean", False,
            "Protect data volumes, passwords and keys from deletion and replacement, and keep volumes if the stack is destroyed. Always on in stg and prod.", changes_freely=False),
    Setting("unprotectData", BOTH, "string", "",
            "The one way to switch data protection off in stg or prod; its value must be the stack's own name (e.g. prod).", changes_freely=False),
    Setting("domain", PLATFORM_SCOPE, "string", "nextcandle.io",
            "Public DNS zone the routed hostnames live under.", changed="nextcandle.example"),
    Setting("platformStack", ENVIRONMENT_SCOPE, "string", "platform",
            "Stack reference of the platform that environments read (networks, object storage); organization/nextcandle/platform on a shared backend.", changed="organization/nextcandle/platform"),
    Setting("externalPublicNetwork", PLATFORM_SCOPE, "boolean", False,
            "traefik-public already exists (the seeds' setup created it by hand, and applications are attached to it): use it instead of creating it. python -m ops adopt platform sets it."),
    Setting("dataDirectory", BOTH, "string", "",
            "Adopting the compose stacks: the host directory of their data (.data/<env> for an environment, .data for the platform); volumes bind to its subdirectories (postgres, redis; grafana, prometheus). Set before the first up only (python -m ops adopt does).", changes_freely=False),
    Setting("statefulPlacement", BOTH, "string", "",
            "Swarm placement constraint for stateful services, e.g. node.labels.nextcandle.data==true. Empty on one node.", changed="node.labels.nextcandle.data==true"),
    Setting("traefikPublishPorts", PLATFORM_SCOPE, "boolean", True,
            "Publish Traefik's web entry point (80) on every node (local access). The tunnel needs no published port."),
    Setting("traefikDashboardPublished", PLATFORM_SCOPE, "boolean", False,
            "Also publish the dashboard's port (8080) on every node: plain HTTP with basic auth, so only where the network between you and the nodes is trusted. Off: reach it through an SSH tunnel to a manager (README).", changed="true"),
    Setting("traefikDashboardUser", PLATFORM_SCOPE, "string", "admin",
            "User name for the Traefik dashboard's basic auth.", changed="ops"),
    Setting("rateLimitAverage", PLATFORM_SCOPE, "integer", 100,
            "Requests per second allowed per client IP on every router.", changed="10"),
    Setting("rateLimitBurst", PLATFORM_SCOPE, "integer", 200,
            "Burst size of the per-client rate limit.", changed="20"),
    Setting("tunnelMode", PLATFORM_SCOPE, "string", "none",
            "Cloudflare Tunnel: none (local only), token (tunnel token from the dashboard) or managed (tunnel, ingress and DNS declared here).", changes_freely=False),
    Setting("cloudflareAccountId", PLATFORM_SCOPE, "string", "",
            "Cloudflare account id (managed tunnel mode).", changes_freely=False),
    Setting("cloudflareZoneId", PLATFORM_SCOPE, "string", "",
            "Cloudflare zone id of the domain (managed tunnel mode).", changes_freely=False),
    Setting("objectStoragePublic", PLATFORM_SCOPE, "boolean", False,
            "Route the object store's S3 API (s3.<domain>) through Traefik and the tunnel, for clients outside the swarm. Off: only the swarm's backups reach it, on the storage network."),
    Setting("localAliases", PLATFORM_SCOPE, "boolean", False,
            "Routed services also answer at <name>.localhost (grafana.localhost, s3.localhost, ...), for a laptop without a tunnel."),
    Setting("extraPublicHostnames", PLATFORM_SCOPE, "string", "",
            "Comma-separated application hostnames routed by Traefik and published through the tunnel, e.g. www.nextcandle.io.", changed="www.nextcandle.example"),
    Setting("postgresPort", ENVIRONMENT_SCOPE, "integer", 0,
            "Host port PostgreSQL is published on; 0 keeps it internal to the swarm.", changed="15434"),
    Setting("postgresCpus", ENVIRONMENT_SCOPE, "string", "0.10-0.50",
            "PostgreSQL CPU reservation-limit, e.g. 0.10-0.50.", changed="0.50-2.00"),
    Setting("postgresMemory", ENVIRONMENT_SCOPE, "string", "256M-512M",
            "PostgreSQL memory reservation-limit, e.g. 256M-512M.", changed="1G-2G"),
    Setting("postgresConfigFile", ENVIRONMENT_SCOPE, "string", "postgresql.conf",
            "Server configuration under configs/postgres/ (postgresql.conf or postgresql-prod.conf).", changed="postgresql.conf"),
    Setting("postgresMajorVersion", ENVIRONMENT_SCOPE, "integer", 17,
            "PostgreSQL major the environment runs (17 or 18), each on a data volume of its own; move up with python -m ops upgrade-postgres, which carries the data over.", changes_freely=False),
    Setting("postgresPreviousMajorVersion", ENVIRONMENT_SCOPE, "integer", 0,
            "The major an upgrade came from, whose data volume is kept, unmounted, until python -m ops upgrade-postgres <env> --confirm; 0: none.", changes_freely=False),
    Setting("postgresShmSizeMb", ENVIRONMENT_SCOPE, "integer", 256,
            "Size of the tmpfs mounted at /dev/shm for PostgreSQL's parallel workers.", changed="768"),
    Setting("redisPort", ENVIRONMENT_SCOPE, "integer", 0,
            "Host port Redis is published on; 0 keeps it internal to the swarm.", changed="16381"),
    Setting("redisCpus", ENVIRONMENT_SCOPE, "string", "0.05-0.20",
            "Redis CPU reservation-limit.", changed="0.20-1.00"),
    Setting("redisMemory", ENVIRONMENT_SCOPE, "string", "64M-256M",
            "Redis memory reservation-limit.", changed="256M-1G"),
    Setting("redisMaxmemoryMb", ENVIRONMENT_SCOPE, "integer", 128,
            "Redis maxmemory in MB (policy noeviction).", changed="200"),
    Setting("redisAppendfsync", ENVIRONMENT_SCOPE, "string", "",
            "Redis appendfsync (always, everysec, no); empty keeps Redis's default.", changed="always"),
    Setting("restartMaxAttempts", BOTH, "integer", 3,
            "Restart attempts of a failing task before Swarm gives up.", changed="9"),
    Setting("databaseClientNetworks", ENVIRONMENT_SCOPE, "string", "172.16.0.0/12",
            "Comma-separated networks (CIDR) allowed to reach a published PostgreSQL port, over TLS only; the default is this node's Docker bridges (tools on the host).", changed="192.168.10.0/24"),
    Setting("runnerDatabaseAccess", ENVIRONMENT_SCOPE, "boolean", False,
            "Put this environment's PostgreSQL and Redis on the runners' network, so CI jobs reach them by service name (dev_postgres:5432); needs runnerEnabled on the platform."),
    Setting("monitoredEnvironments", PLATFORM_SCOPE, "string", "dev,stg,prod",
            "Comma-separated environments whose exporters Prometheus scrapes.", changed="prod"),
    Setting("appScrapeTargets", PLATFORM_SCOPE, "string", "dev_auth:8080",
            "Comma-separated application metrics targets (service:port), e.g. dev_auth:8080.", changed="prod_api:9000"),
    Setting("prometheusRetention", PLATFORM_SCOPE, "string", "15d",
            "Prometheus TSDB retention.", changed="30d"),
    Setting("scrapeInterval", PLATFORM_SCOPE, "string", "15s",
            "Prometheus scrape interval.", changed="30s"),
    Setting("lokiRetentionHours", PLATFORM_SCOPE, "integer", 168,
            "Log retention enforced by Loki's compactor, in hours.", changed="336"),
    Setting("timezone", PLATFORM_SCOPE, "string", "Asia/Seoul",
            "Time zone of n8n (GENERIC_TIMEZONE and TZ).", changed="UTC"),
    Setting("backupEnabled", BOTH, "boolean", True,
            "Back up on backupSchedule: an environment dumps its PostgreSQL; the platform archives Grafana and n8n and, with backupS3Endpoint, copies the object store's buckets off-site."),
    Setting("backupS3Endpoint", BOTH, "string", "",
            "Off-site S3 endpoint for backups (needs backupS3AccessKey/SecretKey); empty means the platform's object storage.", changed="https://s3.offsite.example"),
    Setting("backupBucket", BOTH, "string", "backups",
            "Bucket for backups off-site (backupS3Endpoint), each stack under its own prefix (dev/, stg/, prod/, platform/); also the platform's own in its object store, where each environment has <env>-backups instead.", changed="prod-backups"),
    Setting("backupSchedule", BOTH, "string", "0 3 * * *",
            "Cron schedule, in UTC, of the stack's backup.", changed="0 */6 * * *"),
    Setting("backupRetentionDays", BOTH, "integer", 14,
            "Days a dump or archive is kept (the newest always stays; copied buckets are never pruned).", changed="30"),
    Setting("n8nOwnerSetUp", PLATFORM_SCOPE, "boolean", False,
            "n8n's owner account exists (created in n8n's setup screen); until then n8n is behind the dashboard's basic auth."),
    Setting("platformCoreOnly", PLATFORM_SCOPE, "boolean", False,
            "A laptop's platform, like the seeds' start.sh dev: only Traefik, cloudflared and the networks (and runners with runnerEnabled); no observability, object store, n8n or platform backups. Environments then back up off-site (backupS3Endpoint) or not at all (backupEnabled false).", changes_freely=False),
    Setting("runnerEnabled", PLATFORM_SCOPE, "boolean", False,
            "The platform runs GitHub Actions runners (needs runnerOwner and a runner token)."),
    Setting("runnersStopped", PLATFORM_SCOPE, "boolean", False,
            "Runners scaled to zero (python -m ops stop runner) while the rest of the platform runs."),
    Setting("runnerReplicas", PLATFORM_SCOPE, "integer", 2,
            "Number of GitHub Actions runner replicas.", changed="5"),
    Setting("runnerScope", PLATFORM_SCOPE, "string", "org",
            "Runner registration scope, repo or org.", changed="repo"),
    Setting("runnerOwner", PLATFORM_SCOPE, "string", "",
            "GitHub organisation (scope org) or repository URL (scope repo) the runners register with.", changed="https://github.com/nextcandle/app"),
    Setting("runnerLabels", PLATFORM_SCOPE, "string", "self-hosted,linux,swarm",
            "Comma-separated labels of the runners.", changed="self-hosted,prod"),
    Setting("runnerOnManagers", PLATFORM_SCOPE, "boolean", False,
            "Run the runners on managers instead of worker nodes labelled nextcandle.ci=true (a single-node swarm has no other node): CI jobs then share the machine that holds every stack's secrets."),
    Setting("runnerDockerAccess", PLATFORM_SCOPE, "boolean", False,
            "Mount the node's Docker socket into the runners, for jobs that build images or run containers: root on that node for every job."),
    Setting("runnerEphemeral", PLATFORM_SCOPE, "boolean", True,
            "Each runner takes one job and re-registers; needs runnerAccessToken to keep registering after an hour."),
    Setting("cloudflareTunnelToken", PLATFORM_SCOPE, "string", None,
            "Tunnel token from the Zero Trust dashboard; required with tunnelMode token.", secret=True),
    Setting("cloudflareApiToken", PLATFORM_SCOPE, "string", None,
            "Cloudflare API token with Tunnel and DNS edit rights; required with tunnelMode managed.", secret=True),
    Setting("runnerAccessToken", PLATFORM_SCOPE, "string", None,
            "GitHub token the runners register with (preferred: ephemeral runners re-register with it).", secret=True),
    Setting("runnerRegistrationToken", PLATFORM_SCOPE, "string", None,
            "A runner registration token, the alternative to runnerAccessToken (it expires after one hour).", secret=True),
    Setting("alertWebhookUrl", PLATFORM_SCOPE, "string", None,
            "Optional Alertmanager receiver: a Slack-compatible or any webhook URL.", secret=True),
    Setting("backupS3AccessKey", BOTH, "string", None,
            "Access key of the off-site S3 service (only with backupS3Endpoint).", secret=True),
    Setting("backupS3SecretKey", BOTH, "string", None,
            "Secret key of the off-site S3 service (only with backupS3Endpoint).", secret=True),
    Setting("appSecrets", ENVIRONMENT_SCOPE, "string", None,
            "The environment's application secrets (the seeds' .env: Supabase keys, tokens), one NAME=value per line; each becomes a "
            "Docker secret applications mount (the app_secrets output names them). "
            "pulumi config set --secret nextcandle:appSecrets \"$(cat app-secrets.env)\"", secret=True),
    Setting("adoptedPostgresLogin", ENVIRONMENT_SCOPE, "string", None,
            "Set and removed by python -m ops adopt (the compose stack's login, until handed over); never by hand.", secret=True),
)
BY_KEY = {setting.key: setting for setting in SETTINGS}
SECRET_KEYS = tuple(s.key for s in SETTINGS if s.secret)
PLATFORM_ONLY_KEYS = tuple(s.key for s in SETTINGS if s.scope == PLATFORM_SCOPE)
ENVIRONMENT_ONLY_KEYS = tuple(s.key for s in SETTINGS if s.scope == ENVIRONMENT_SCOPE)


def config_block() -> dict[str, dict[str, Any]]:
    """Pulumi.yaml's `config:` block: every plain setting with its type, description and default."""
    return {s.key: {"type": s.type, "description": s.description, "default": s.default} for s in SETTINGS if not s.secret}


def write_pulumi_yaml(path: Path = PULUMI_YAML) -> None:
    """Replace the `config:` block (the file's last section) with the table's."""
    text = path.read_text()
    head = re.split(r"(?m)^config:\n", text)[0]
    block = yaml.safe_dump({"config": config_block()}, sort_keys=False, width=1000, allow_unicode=True)
    path.write_text(head + block)


if __name__ == "__main__":
    write_pulumi_yaml()
    print(f"wrote the config block of {PULUMI_YAML}", file=sys.stderr)
