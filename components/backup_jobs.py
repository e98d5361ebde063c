"""What every backup job shares, the environments' pg_dump services (EnvDatabaseStack) and the
platform's (PlatformBackup): where backups go, their scripts mounted as configs, their schedule and
health check. components/swarm.py keeps the Swarm building blocks they are made of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.settings import CONFIGS, BackupSettings
from components.swarm import Mounted, StackScope, http_check
from names import BACKUP_METRICS_PORT, POSTGRES_PORT


@dataclass(frozen=True, kw_only=True)
class ObjectStorage:
    """An S3 service backups go to: the platform's object storage, or an off-site one."""

    endpoint: pulumi.Input[str]
    access_key: pulumi.Input[str]
    secret_key: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class BackupTarget:
    """Where a stack's backups go, and when."""

    settings: BackupSettings
    storage: ObjectStorage
    bucket: str


def backup_target(settings: BackupSettings | None, platform_storage: ObjectStorage | None, platform_bucket: str = "") -> BackupTarget | None:
    """Backups go to the configured off-site S3 service, else to the platform's object storage (into
    `platform_bucket` when given: an environment's own, which its key alone reaches)."""
    if settings is None:
        return None
    if not settings.endpoint:
        if platform_storage is None:
            raise ValueError("backups to the platform's object store need it; the caller reads it when backupS3Endpoint is unset")
        return BackupTarget(settings=settings, storage=platform_storage, bucket=platform_bucket or settings.bucket)
    if settings.access_key is None or settings.secret_key is None:
        raise ValueError("off-site backups need S3 credentials; settings validation requires them")
    return BackupTarget(
        settings=settings,
        storage=ObjectStorage(endpoint=settings.endpoint, access_key=settings.access_key, secret_key=settings.secret_key),
        bucket=settings.bucket,
    )


BACKUP_SCRIPTS_DIR = "/etc/backup"
PGDATA = "/var/lib/postgresql/data"
WAL_MOUNT = "/var/lib/postgresql/wal"
"""The WAL volume, at the same path in PostgreSQL and its backup service."""


def wal_dir(major: int) -> str:
    """One major's directory in the WAL volume (a new major's cluster starts its WAL names again):
    archive/ is what PostgreSQL archived and the backup ships, restore/ what a point-in-time restore
    fetched for it to replay."""
    return f"{WAL_MOUNT}/{major}"


WAL_SHIP_SECONDS = 10
METRICS_TEXTFILE_DIR = "/tmp/backup-metrics"


def database_backup_env(target: BackupTarget, env: str, postgres_host: str, postgres_uid: int, major: int) -> dict[str, pulumi.Input[str]]:
    """An environment's backup service's settings, which configs/backup/env.sh and the scripts read."""
    return {
        "SCHEDULE": target.settings.schedule,
        "BACKUP_KEEP_DAYS": str(target.settings.retention_days),
        "S3_BUCKET": target.bucket,
        "S3_PREFIX": env,
        "POSTGRES_HOST": postgres_host,
        "POSTGRES_PORT": str(POSTGRES_PORT),
        "S3_ENDPOINT": target.storage.endpoint,
        # Point-in-time recovery: the WAL volume, and PostgreSQL's data directory, which a restore replaces.
        "PGDATA": PGDATA,
        "PG_MAJOR": str(major),
        "WAL_DIR": wal_dir(major),
        "POSTGRES_UID": str(postgres_uid),
        "METRICS_TEXTFILE_DIR": METRICS_TEXTFILE_DIR,
        **backup_metrics_env(target),
    }
def backup_metrics_env(target: BackupTarget) -> dict[str, str]:
    """backup-cron serves its runs' metrics there; Prometheus alerts on a failed, missing or only local backup."""
    return {"METRICS_ADDR": f":{BACKUP_METRICS_PORT}", "BACKUP_OFF_SITE": "true" if target.settings.endpoint else "false"}
BACKUP_HEALTHCHECK = http_check(f"http://127.0.0.1:{BACKUP_METRICS_PORT}/metrics", start_period="10s")
"""The scheduler answers (a failed run shows in its metrics and logs, not as a dead task)."""


def backup_scripts(
    scope: StackScope, resource_prefix: str, swarm_prefix: str, scripts: Sequence[str], opts: pulumi.ResourceOptions
) -> list[Mounted]:
    """configs/backup/<script>.sh as executable configs under /etc/backup, where `ops backup|restore` runs them."""
    return [
        Mounted(
            scope.config(f"{resource_prefix}-{script}", f"{swarm_prefix}-{script}", (CONFIGS / "backup" / f"{script}.sh").read_text(), opts),
            f"{BACKUP_SCRIPTS_DIR}/{script}.sh",
            mode=0o555,
        )
        for script in scripts
    ]


def encryption_key(scope: StackScope, resource_name: str, opts: pulumi.ResourceOptions) -> tuple[Mounted, pulumi.Output[str]]:
    """The stack's backup key (configs/backup/crypt.sh): a random value, protected with the data (a new
    one would leave every backup unreadable), mounted root-only; and the value, for a stack output."""
    key = random.RandomPassword(resource_name, length=48, special=False, opts=opts)
    return Mounted(scope.secret(resource_name, key.result, opts), "backup_encryption_key", mode=0o400), pulumi.Output.secret(key.result)


def scheduled(script: str, then: Sequence[str] = (), beside: str | None = None) -> list[str]:
    """backup-cron (the backup image's scheduler) runs /etc/backup/<script>.sh on $SCHEDULE, then each
    of `then` while all before it succeeded (a failure fails the run, which the BackupFailed alert
    reports); `beside` is a script (with its arguments) started in the background for as long as it runs."""
    steps = " && ".join(f"/bin/sh {BACKUP_SCRIPTS_DIR}/{step}.sh" for step in (script, *then))
    run = f'/bin/sh -c "{steps}"' if then else steps
    background = f"/bin/sh {BACKUP_SCRIPTS_DIR}/{beside} & " if beside else ""
    return ["/bin/sh", "-c", f'{background}exec backup-cron "$SCHEDULE" {run}']
