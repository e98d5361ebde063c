"""Bad input, as a careless or hostile operator would give it: every case stops the run before any
resource is declared, with the key and the command that fixes it. No case is silently accepted."""

from __future__ import annotations

import pytest

from components.settings import SettingsError
from tests.harness import RecordingMocks, run_program

PLAIN = "plain"
SECRET = "secret"
MANAGED = {"tunnelMode": "managed", "cloudflareAccountId": "a" * 32, "cloudflareZoneId": "b" * 32}
MANAGED_TOKEN = {"cloudflareApiToken": "cf-api-token-0123456789"}
RUNNERS = {"runnerEnabled": "true", "runnerOwner": "nextcandle"}
RUNNER_TOKEN = {"runnerAccessToken": "ghp_validation0123456789"}

# (stack, plain settings, secret settings, fragments the message must contain)
CASES: list[tuple[str, dict[str, str], dict[str, str], list[str]]] = [
    # which stack this is
    ("dev", {"environment": "prod"}, {}, ["nextcandle:environment", "pulumi config rm nextcandle:environment -s dev"]),
    ("platform", {"environment": "dev"}, {}, ["nextcandle:environment", "this is stack 'platform'"]),
    ("prod", {"protectData": "false"}, {}, ["cannot be false in prod", "pulumi config set nextcandle:unprotectData prod -s prod"]),
    ("stg", {"protectData": "false"}, {}, ["cannot be false in stg"]),
    ("prod", {"unprotectData": "stg"}, {}, ["nextcandle:unprotectData", "is 'stg' but this is stack 'prod'"]),
    ("dev", {"platformStack": "a/b/c/d"}, {}, ["nextcandle:platformStack", "is not valid"]),
    ("dev", {"platformStack": ""}, {}, ["nextcandle:platformStack: is empty"]),
    # unknown and misplaced keys
    ("dev", {"postgresPrt": "5432"}, {}, ["nextcandle:postgresPrt: is not a setting", "did you mean postgresPort?", "pulumi config rm nextcandle:postgresPrt -s dev"]),
    ("platform", {"rateLimt": "5"}, {}, ["did you mean rateLimitBurst?", "pulumi config rm nextcandle:rateLimt"]),
    ("prod", {"ownCore": "true"}, {}, ["nextcandle:ownCore: is not a setting"]),
    ("platform", {"tunelMode": "token"}, {}, ["did you mean tunnelMode?"]),
    ("dev", {"domain": "example.com"}, {}, ["nextcandle:domain: applies to the platform stack", "pulumi config rm nextcandle:domain -s dev"]),
    ("stg", {"runnerReplicas": "3"}, {}, ["nextcandle:runnerReplicas: applies to the platform stack"]),
    ("platform", {"redisPort": "6390"}, {}, ["nextcandle:redisPort: applies to the environment stacks"]),
    ("platform", {"backupS3Endpoint": "https://s3.example"}, {}, ["nextcandle:backupS3AccessKey: is required for backups to https://s3.example"]),
    # secrets given as plain settings
    ("platform", {**RUNNERS, "runnerAccessToken": "ghp_inplaintext0123"}, {}, ["nextcandle:runnerAccessToken: is stored in plain text in Pulumi.platform.yaml", "pulumi config set --secret nextcandle:runnerAccessToken"]),
    ("platform", {"tunnelMode": "token", "cloudflareTunnelToken": "eyJwbGFpbiI6InRleHQifQ"}, {}, ["nextcandle:cloudflareTunnelToken: is stored in plain text", "--secret"]),
    ("platform", {"alertWebhookUrl": "https://hooks.example.com/x"}, {}, ["nextcandle:alertWebhookUrl: is stored in plain text"]),
    ("prod", {"backupS3Endpoint": "https://s3.example.com", "backupS3SecretKey": "plain-secret-key-0123"}, {"backupS3AccessKey": "ACCESSKEY0000000001"}, ["nextcandle:backupS3SecretKey: is stored in plain text"]),
    # empty values
    ("platform", {"domain": ""}, {}, ["nextcandle:domain: is empty", "pulumi config set nextcandle:domain nextcandle.io"]),
    ("platform", {"traefikDashboardUser": ""}, {}, ["nextcandle:traefikDashboardUser: is empty"]),
    ("platform", {"timezone": ""}, {}, ["nextcandle:timezone: is empty"]),
    ("platform", {"scrapeInterval": ""}, {}, ["nextcandle:scrapeInterval: is empty"]),
    ("prod", {"backupBucket": ""}, {}, ["nextcandle:backupBucket: is empty"]),
    ("prod", {"postgresConfigFile": ""}, {}, ["nextcandle:postgresConfigFile", "not the name of a server configuration"]),
    ("dev", {"postgresPort": ""}, {}, ["nextcandle:postgresPort", "'' is not a whole number"]),
    ("platform", {"tunnelMode": "token"}, {"cloudflareTunnelToken": "  "}, ["nextcandle:cloudflareTunnelToken: is empty"]),
    # wrong types
    ("dev", {"stopped": "yes"}, {}, ["nextcandle:stopped: 'yes' is not true or false"]),
    ("platform", {"localAliases": "1"}, {}, ["nextcandle:localAliases: '1' is not true or false"]),
    ("prod", {"backupEnabled": "sometimes"}, {}, ["nextcandle:backupEnabled"]),
    ("platform", {"rateLimitAverage": "fast"}, {}, ["nextcandle:rateLimitAverage: 'fast' is not a whole number"]),
    ("dev", {"redisMaxmemoryMb": "1.5"}, {}, ["nextcandle:redisMaxmemoryMb: '1.5' is not a whole number"]),
    ("platform", {"lokiRetentionHours": "7d"}, {}, ["nextcandle:lokiRetentionHours: '7d' is not a whole number"]),
    # ASCII digits only
    ("dev", {"postgresPort": "٥٤٣٢"}, {}, ["nextcandle:postgresPort", "is not a whole number"]),
    ("prod", {"postgresCpus": "٠.١-٠.٥"}, {}, ["nextcandle:postgresCpus/postgresMemory", "is not reservation-limit"]),
    ("platform", {"scrapeInterval": "１５s"}, {}, ["nextcandle:scrapeInterval"]),
    # bounds
    ("dev", {"postgresPort": "70000"}, {}, ["70000 is outside 0..65535"]),
    ("stg", {"redisPort": "-1"}, {}, ["-1 is outside 0..65535"]),
    ("platform", {"rateLimitBurst": "0"}, {}, ["nextcandle:rateLimitBurst: 0 is outside 1..100000"]),
    ("platform", {**RUNNERS, "runnerReplicas": "0"}, RUNNER_TOKEN, ["nextcandle:runnerReplicas: 0 is outside 1..64"]),
    ("prod", {"restartMaxAttempts": "0"}, {}, ["nextcandle:restartMaxAttempts: 0 is outside 1..100"]),
    ("prod", {"backupRetentionDays": "0"}, {}, ["nextcandle:backupRetentionDays: 0 is outside 1..3650"]),
    ("dev", {"postgresCpus": "0.5-128"}, {}, ["more than any node here has"]),
    ("dev", {"postgresCpus": "0-0.5"}, {}, ["CPU reservation must be above 0"]),
    ("dev", {"redisMemory": "1M-4M"}, {}, ["Docker's minimum is 6 MB"]),
    ("dev", {"redisMemory": "64M-2048G"}, {}, ["a memory limit must be 6M..1024G"]),
    ("prod", {"postgresShmSizeMb": "1024"}, {}, ["nextcandle:postgresShmSizeMb", "counts against the 1024 MB memory limit"]),
    ("dev", {"postgresShmSizeMb": "16"}, {}, ["nextcandle:postgresShmSizeMb: 16 is outside 64..65536"]),
    ("prod", {"redisMaxmemoryMb": "512"}, {}, ["nextcandle:redisMaxmemoryMb", "no headroom"]),
    ("platform", {"scrapeInterval": "5s"}, {}, ["nextcandle:scrapeInterval: 5s is outside 10s..1h"]),
    ("platform", {"prometheusRetention": "30m"}, {}, ["nextcandle:prometheusRetention: 30m is outside 2h..3650d"]),
    ("platform", {"lokiRetentionHours": "12"}, {}, ["nextcandle:lokiRetentionHours: 12 is outside 24..87600"]),
    # units
    ("dev", {"postgresMemory": "256MB-512MB"}, {}, ["is not reservation-limit, e.g. 256M-512M"]),
    ("dev", {"redisMemory": "64K-256K"}, {}, ["is not reservation-limit"]),
    ("platform", {"prometheusRetention": "15 days"}, {}, ["nextcandle:prometheusRetention: '15 days' is not valid"]),
    # cron
    ("prod", {"backupSchedule": "99 99 * * *"}, {}, ["nextcandle:backupSchedule: minute '99' is not within 0-59", "hour '99' is not within 0-23"]),
    ("prod", {"backupSchedule": "0 3 * *"}, {}, ["needs 5 fields"]),
    ("stg", {"backupSchedule": "0 3 32 * *"}, {}, ["day of month '32' is not within 1-31"]),
    ("stg", {"backupSchedule": "0 3 * 13 *"}, {}, ["month '13' is not within 1-12"]),
    ("dev", {"backupSchedule": "*/0 * * * *"}, {}, ["minute '*/0'"]),
    ("dev", {"backupSchedule": "0 3 * * FUNDAY"}, {}, ["day of week 'FUNDAY'"]),
    # placement constraints
    ("prod", {"statefulPlacement": "storage"}, {}, ["nextcandle:statefulPlacement", "storage not valid"]),
    ("prod", {"statefulPlacement": "node.colour==blue"}, {}, ["node.colour==blue not valid"]),
    ("platform", {"statefulPlacement": "node.labels.data=true"}, {}, ["node.labels.data=true not valid"]),
    # ports that clash across the project's stack files
    ("dev", {"postgresPort": "5433"}, {}, ["nextcandle:postgresPort: port 5433 is already used by postgresPort of stack stg"]),
    ("stg", {"redisPort": "6379"}, {}, ["port 6379 is already used by redisPort of stack dev"]),
    ("prod", {"redisPort": "8080"}, {}, ["already used by Traefik dashboard"]),
    ("dev", {"databaseClientNetworks": "0.0.0.0/0"}, {}, ["nextcandle:databaseClientNetworks: 0.0.0.0/0 admits the whole internet"]),
    ("stg", {"databaseClientNetworks": "10.0.0.0/4"}, {}, ["admits far too many addresses"]),
    ("stg", {"databaseClientNetworks": "192.168.1.300/24"}, {}, ["192.168.1.300/24 is not a network"]),
    ("dev", {"redisPort": "5432"}, {}, ["port 5432 is already used by postgresPort"]),
    # configuration files stay under configs/
    ("prod", {"postgresConfigFile": "../../../etc/passwd"}, {}, ["not the name of a server configuration under configs/postgres/"]),
    ("prod", {"postgresConfigFile": "/etc/postgresql/postgresql.conf"}, {}, ["not the name of a server configuration"]),
    ("prod", {"postgresConfigFile": "pg_hba.conf"}, {}, ["not the name of a server configuration"]),
    ("prod", {"postgresConfigFile": "missing.conf"}, {}, ["configs/postgres/missing.conf does not exist", "available: postgresql-prod.conf, postgresql.conf"]),
    # URLs
    ("prod", {"backupS3Endpoint": "s3.example.com"}, {}, ["nextcandle:backupS3Endpoint: 's3.example.com' is not an http(s) URL"]),
    ("prod", {"backupS3Endpoint": "ftp://s3.example.com"}, {}, ["is not an http(s) URL"]),
    ("prod", {"backupS3Endpoint": "https://s3.example.com:99999"}, {}, ["is not an http(s) URL"]),
    ("prod", {"backupS3Endpoint": "https://s3.example.com"}, {}, ["pulumi config set --secret nextcandle:backupS3AccessKey <key of that S3 service>"]),
    ("platform", {**RUNNERS, "runnerScope": "repo"}, RUNNER_TOKEN, ["must be a repository URL when runnerScope is repo"]),
    # time zones
    ("platform", {"timezone": "Asia/Pyongyang/North"}, {}, ["nextcandle:timezone: 'Asia/Pyongyang/North' is not a time zone"]),
    ("platform", {"timezone": "KST"}, {}, ["'KST' is not a time zone of the tz database"]),
    # the tunnel
    ("platform", {"tunnelMode": "magic"}, {}, ["'magic' is not one of none, token, managed"]),
    ("platform", {"tunnelMode": "token"}, {}, ["pulumi config set --secret nextcandle:cloudflareTunnelToken"]),
    ("platform", {**MANAGED, "cloudflareZoneId": "zone"}, MANAGED_TOKEN, ["nextcandle:cloudflareZoneId: 'zone' is not a 32-character Cloudflare id"]),
    ("platform", {**MANAGED, "extraPublicHostnames": "www.other.example"}, MANAGED_TOKEN, ["www.other.example not in the zone nextcandle.io"]),
    ("platform", {"extraPublicHostnames": "www.nextcandle.io,not a host"}, {}, ["nextcandle:extraPublicHostnames: not a host not valid"]),
    ("platform", {"domain": "NextCandle.IO"}, {}, ["nextcandle:domain: 'NextCandle.IO' is not valid"]),
    # the rest of the platform
    ("platform", {"monitoredEnvironments": "dev,qa"}, {}, ["nextcandle:monitoredEnvironments: qa not valid"]),
    ("platform", {"appScrapeTargets": "dev_api"}, {}, ["nextcandle:appScrapeTargets: dev_api not valid"]),
    ("platform", {"traefikDashboardUser": "admin:root"}, {}, ["nextcandle:traefikDashboardUser: 'admin:root' is not valid"]),
    ("platform", {"runnerEnabled": "true"}, {}, ["nextcandle:runnerOwner: is required when runnerEnabled is true", "pulumi config set --secret nextcandle:runnerAccessToken"]),
    ("platform", {**RUNNERS, "runnerLabels": "self hosted"}, RUNNER_TOKEN, ["nextcandle:runnerLabels: self hosted not valid"]),
    ("dev", {"redisAppendfsync": "sometimes"}, {}, ["nextcandle:redisAppendfsync: 'sometimes' is not one of"]),
    # one of each kind, as the settings module's first table had them
    ("dev", {"environment": "prod"}, {}, ["nextcandle:environment", "is 'prod' but this is stack 'dev'", "pulumi config rm nextcandle:environment -s dev"]),
    ("platform", {"domain": "not a domain"}, {}, ["nextcandle:domain", "pulumi config set nextcandle:domain nextcandle.io"]),
    ("platform", {"runnerEnabled": "true", "runnerOwner": "org", "runnerReplicas": "-1"}, {}, ["nextcandle:runnerReplicas", "-1 is outside 1..64"]),
    ("dev", {"redisPort": "5432"}, {}, ["nextcandle:redisPort", "port 5432 is already used by postgresPort"]),
    ("dev", {"postgresPort": "8080"}, {}, ["nextcandle:postgresPort", "already used by Traefik dashboard"]),
    ("dev", {"postgresPort": "70000"}, {}, ["nextcandle:postgresPort", "70000 is outside 0..65535"]),
    ("dev", {"postgresCpus": "0.9-0.5"}, {}, ["nextcandle:postgresCpus/postgresMemory", "at most the limit"]),
    ("stg", {"redisMemory": "lots"}, {}, ["redisCpus/redisMemory", "is not reservation-limit"]),
    ("dev", {"redisMaxmemoryMb": "256"}, {}, ["nextcandle:redisMaxmemoryMb", "no headroom", "pulumi config set nextcandle:redisMaxmemoryMb 128"]),
    ("prod", {"redisAppendfsync": "sometimes"}, {}, ["nextcandle:redisAppendfsync", "'sometimes' is not one of"]),
    ("dev", {"postgresConfigFile": "missing.conf"}, {}, ["nextcandle:postgresConfigFile", "configs/postgres/missing.conf does not exist", "postgresql-prod.conf"]),
    ("platform", {"traefikPublishPorts": "yes"}, {}, ["nextcandle:traefikPublishPorts", "'yes' is not true or false"]),
    ("prod", {"statefulPlacement": "storage"}, {}, ["nextcandle:statefulPlacement", "node.labels.nextcandle.data==true"]),
    ("platform", {"appScrapeTargets": "dev_auth"}, {}, ["nextcandle:appScrapeTargets", "dev_auth not valid"]),
    ("platform", {"tunnelMode": "magic"}, {}, ["nextcandle:tunnelMode", "'magic' is not one of none, token, managed"]),
    ("dev", {"stopped": "maybe"}, {}, ["nextcandle:stopped", "'maybe' is not true or false"]),
    ("dev", {"tunnelMode": "token"}, {}, ["nextcandle:tunnelMode: applies to the platform stack (platform) only", "pulumi config rm nextcandle:tunnelMode -s dev"]),
    ("platform", {"postgresPort": "5432"}, {}, ["nextcandle:postgresPort: applies to the environment stacks", "pulumi config rm nextcandle:postgresPort -s platform"]),
    ("prod", {"protectData": "false"}, {}, ["nextcandle:protectData: cannot be false in prod", "pulumi config set nextcandle:unprotectData prod -s prod"]),
    ("stg", {"unprotectData": "prod"}, {}, ["nextcandle:unprotectData", "is 'prod' but this is stack 'stg'", "pulumi config rm nextcandle:unprotectData -s stg"]),
    ("dev", {"platformStack": "not a stack name"}, {}, ["nextcandle:platformStack", "pulumi config set nextcandle:platformStack platform"]),
    # A platform secret in an environment does nothing there: refused like any platform setting.
    ("prod", {}, {"runnerAccessToken": "ghp_misplaced0123456789"}, ["nextcandle:runnerAccessToken: applies to the platform stack", "pulumi config rm nextcandle:runnerAccessToken -s prod"]),
    # appSecrets: NAME=value lines; a line that is not one is refused without quoting it (it may be a value).
    ("dev", {}, {"appSecrets": "hf_pastedwithoutaname"}, ["nextcandle:appSecrets: entry 1 is not NAME=value", "one NAME=value per line"]),
    ("stg", {}, {"appSecrets": "A=1\nB=2\nA=3"}, ["nextcandle:appSecrets: names A more than once"]),
    ("prod", {}, {"appSecrets": "# only a comment\n"}, ["nextcandle:appSecrets: has no NAME=value line"]),
    ("prod", {}, {"appSecrets": "2FA_KEY=x"}, ["nextcandle:appSecrets: entry 1 is not NAME=value"]),
    ("platform", {}, {"appSecrets": "A=1"}, ["nextcandle:appSecrets: applies to the environment stacks", "pulumi config rm nextcandle:appSecrets -s platform"]),
    # Values the consuming program refuses: S3's bucket rules, Alertmanager's webhook, Prometheus's DNS names.
    ("prod", {"backupBucket": "a..b"}, {}, ["nextcandle:backupBucket", "no two dots in a row"]),
    ("prod", {"backupBucket": "192.168.1.1"}, {}, ["nextcandle:backupBucket", "not an IP address"]),
    ("platform", {"backupBucket": "xn--bucket"}, {}, ["nextcandle:backupBucket", "prefix or suffix S3 reserves"]),
    ("stg", {"backupBucket": "Backups_Stg"}, {}, ["nextcandle:backupBucket", "is not an S3 bucket name"]),
    ("dev", {"backupBucket": "logs-s3alias"}, {}, ["prefix or suffix S3 reserves"]),
    ("stg", {"backupBucket": "stg-dumps"}, {}, ["nextcandle:backupBucket", "only its own S3 identity reaches"]),
    ("platform", {}, {"alertWebhookUrl": "not a url"}, ["nextcandle:alertWebhookUrl: is not an https URL", "pulumi config set --secret nextcandle:alertWebhookUrl"]),
    ("platform", {}, {"alertWebhookUrl": "http://hooks.example.com/x"}, ["nextcandle:alertWebhookUrl: is not an https URL"]),
    ("platform", {}, {"alertWebhookUrl": "https://user:pass@hooks.example.com/x"}, ["nextcandle:alertWebhookUrl: has a user or password inside the URL"]),
    ("platform", {"monitoredEnvironments": ""}, {}, ["nextcandle:monitoredEnvironments: is empty"]),
    ("platform", {"monitoredEnvironments": "dev,dev"}, {}, ["nextcandle:monitoredEnvironments: lists dev twice"]),
    ("platform", {"appScrapeTargets": ","}, {}, ["nextcandle:appScrapeTargets", "has an empty entry"]),
    ("platform", {"appScrapeTargets": "dev_auth:8080,,dev_api:8080"}, {}, ["has an empty entry"]),
    ("platform", {"tunnelMode": "token"}, {"cloudflareTunnelToken": "x"}, ["nextcandle:cloudflareTunnelToken: is not a tunnel token"]),
    ("platform", {**RUNNERS, "runnerLabels": ""}, RUNNER_TOKEN, ["nextcandle:runnerLabels: is empty"]),
    ("platform", {**RUNNERS, "runnerOwner": "https://github.com/"}, RUNNER_TOKEN, ["nextcandle:runnerOwner", "is not a GitHub organisation name"]),
    # Hostnames twice in DNS and routing.
    ("platform", {**MANAGED, "domain": "example.com", "extraPublicHostnames": "grafana.example.com"}, MANAGED_TOKEN, ["nextcandle:extraPublicHostnames", "grafana.example.com is routed already"]),
    ("platform", {**MANAGED, "domain": "example.com", "extraPublicHostnames": "app.example.com,app.example.com"}, MANAGED_TOKEN, ["lists app.example.com twice"]),
    ("platform", {"extraPublicHostnames": "n8n.nextcandle.io"}, {}, ["n8n.nextcandle.io is routed already"]),
    # Values no node can meet.
    ("prod", {"postgresCpus": "0.0001-0.5"}, {}, ["nextcandle:postgresCpus/postgresMemory", "below 0.01"]),
    ("dev", {"redisCpus": "0.005-0.01"}, {}, ["below 0.01"]),
    ("prod", {"postgresMemory": "900G-1000G"}, {}, ["more than any node here has", "wait forever"]),
    # Settings that point at the wrong stack.
    ("dev", {"platformStack": "prod"}, {}, ["nextcandle:platformStack", "'prod' is an environment", "pulumi config set nextcandle:platformStack platform"]),
    ("dev", {"platformStack": "dev"}, {}, ["'dev' is an environment"]),
    ("stg", {"platformStack": "organization/nextcandle/stg"}, {}, ["'organization/nextcandle/stg' is an environment"]),
    # Dangerous but legal.
    ("prod", {"postgresPort": "22"}, {}, ["nextcandle:postgresPort: port 22 is a system port"]),
    ("dev", {"redisPort": "443"}, {}, ["nextcandle:redisPort: port 443 is a system port"]),
    ("prod", {"redisPort": "2377"}, {}, ["port 2377 is Swarm's cluster management"]),
    ("stg", {"postgresPort": "7946"}, {}, ["port 7946 is Swarm's node gossip"]),
    ("prod", {"backupSchedule": "* * * * *"}, {}, ["nextcandle:backupSchedule", "more than once an hour"]),
    ("platform", {"backupSchedule": "*/5 * * * *"}, {}, ["more than once an hour"]),
    ("prod", {"backupS3Endpoint": "https://key:secret@s3.example.com"}, {"backupS3AccessKey": "AKIA0000000000000001", "backupS3SecretKey": "s" * 40}, ["nextcandle:backupS3Endpoint: has credentials inside the URL"]),
    ("prod", {"backupS3Endpoint": "http://s3.example.com"}, {"backupS3AccessKey": "AKIA0000000000000001", "backupS3SecretKey": "s" * 40}, ["nextcandle:backupS3Endpoint: is plain HTTP"]),
    ("platform", {"backupS3Endpoint": "http://object-storage:8333"}, {"backupS3AccessKey": "AKIA0000000000000001", "backupS3SecretKey": "s" * 40}, ["is the platform's own object store", "pulumi config rm nextcandle:backupS3Endpoint"]),
    ("platform", {"backupS3Endpoint": "http://shared_seaweedfs:8333"}, {"backupS3AccessKey": "AKIA0000000000000001", "backupS3SecretKey": "s" * 40}, ["is the platform's own object store"]),
    ("platform", {"domain": "example.com", "backupS3Endpoint": "https://s3.example.com"}, {"backupS3AccessKey": "AKIA0000000000000001", "backupS3SecretKey": "s" * 40}, ["is the platform's own object store"]),
]


def test_the_table_is_large_and_covers_every_stack() -> None:
    assert len(CASES) >= 120
    assert {stack for stack, *_ in CASES} == {"platform", "dev", "stg", "prod"}


@pytest.mark.parametrize(("stack", "config", "secrets", "expected"), CASES, ids=[f"{c[0]}-{'-'.join(c[1])}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_stops_before_any_resource_with_the_key_and_the_fix(
    stack: str, config: dict[str, str], secrets: dict[str, str], expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[object] = []
    original = RecordingMocks.new_resource
    monkeypatch.setattr(RecordingMocks, "new_resource", lambda self, args: created.append(args) or original(self, args))
    with pytest.raises(SettingsError) as raised:
        run_program(stack, config, secrets)
    message = str(raised.value)
    for fragment in expected:
        assert fragment in message, message
    assert "Fix: pulumi config " in message
    assert created == [], "nothing is declared before the configuration is valid"
