"""No change of settings in prod replaces a data volume or a database password (secret or random
value): Docker volumes and secrets are replaced whenever any input changes, so their inputs must not
depend on any setting. And all of them are protected, so even a deliberate rename cannot delete them."""

from __future__ import annotations

import pytest

from components.settings import declared_config
from tests.harness import RANDOM_PASSWORD, RANDOM_STRING, SECRET, VOLUME, ProgramRun, Resource, run_program, stack_config

# A different valid value for every setting that may change in prod.
CHANGES: dict[str, str] = {
    "domain": "nextcandle.example",
    "statefulPlacement": "node.labels.nextcandle.data==true",
    "traefikDashboardUser": "ops",
    "extraPublicHostnames": "www.nextcandle.example",
    "postgresPort": "15434",
    "postgresCpus": "0.50-2.00",
    "postgresMemory": "1G-2G",
    "postgresConfigFile": "postgresql.conf",
    "postgresShmSizeMb": "1024",
    "redisPort": "16381",
    "redisCpus": "0.20-1.00",
    "redisMemory": "256M-1G",
    "redisMaxmemoryMb": "200",
    "redisAppendfsync": "always",
    "restartMaxAttempts": "9",
    "monitoredEnvironments": "prod",
    "appScrapeTargets": "prod_api:9000",
    "prometheusRetention": "30d",
    "scrapeInterval": "30s",
    "lokiRetentionHours": "336",
    "timezone": "UTC",
    "backupSchedule": "0 */6 * * *",
    "backupRetentionDays": "30",
    "backupS3Endpoint": "https://s3.nextcandle.example",
    "backupBucket": "prod-backups",
    "runnerReplicas": "5",
    "runnerScope": "repo",
    "runnerLabels": "self-hosted,prod",
    "rateLimitAverage": "10",
    "rateLimitBurst": "20",
}
BOOLEAN_FLIPS = {"localAliases", "traefikPublishPorts", "allowPublishedDatabasePorts", "backupEnabled", "runnerEphemeral", "ownShared"}
# Not "settings that change": which environment a stack is, what it owns, and the deliberate
# switches that unprotect data (they are the documented way to let data go).
EXCLUDED = {"environment", "ownCore", "ownRunner", "protectData", "protectSharedData", "tunnelMode",
            "cloudflareAccountId", "cloudflareZoneId", "runnerOwner"}


def data_resources(run: ProgramRun) -> dict[tuple[str, str], Resource]:
    env = run.stack
    names = {f"{env}-postgres-password", f"{env}-redis-password", f"{env}-postgres-db", f"{env}-postgres-user", f"{env}-redis-auth"}
    found = {
        (r.typ, r.name): r
        for r in run.resources
        if (r.typ == VOLUME and r.inputs["name"].startswith(f"{env}_"))
        or (r.typ in (SECRET, RANDOM_PASSWORD, RANDOM_STRING) and r.name in names)
    }
    assert len([k for k in found if k[0] == VOLUME]) == 2 and len(found) == 2 + 5 * 2 - 1
    return found


def test_every_setting_is_covered() -> None:
    declared = set(declared_config())
    assert declared == set(CHANGES) | BOOLEAN_FLIPS | EXCLUDED, "classify the new setting here"


def test_data_is_protected_in_prod() -> None:
    for resource in data_resources(run_program("prod")).values():
        assert resource.protect, f"{resource.typ} {resource.name}"
        if resource.typ == VOLUME:
            assert resource.retain_on_delete


@pytest.mark.parametrize("key", sorted([*CHANGES, *BOOLEAN_FLIPS]))
def test_no_setting_replaces_prod_data(key: str) -> None:
    baseline = run_program("prod")
    if key in BOOLEAN_FLIPS:
        current = stack_config("prod").get(key, str(declared_config()[key]["default"]).lower())
        value = "false" if current == "true" else "true"
    else:
        value = CHANGES[key]
    changed = run_program("prod", {key: value})
    before, after = data_resources(baseline), data_resources(changed)
    assert before.keys() == after.keys()
    for identity, resource in before.items():
        assert after[identity].inputs == resource.inputs, f"{key}={value} would replace {identity}"
        assert after[identity].protect
