"""PlatformBackup: the platform's data besides the environments' databases, backed up on a schedule.

One service, `shared_backup`, runs configs/backup/platform-backup.sh under backup-cron:
- Grafana's and n8n's SQLite databases, snapshotted with SQLite's online backup API (consistent while
  they run) and checked, n8n's together with its encryption key, without which its credentials are lost;
- with an off-site target (backupS3Endpoint), every bucket of the object store, copied there.
configs/backup/platform-restore.sh restores each kind; `python -m ops restore grafana|n8n|objects`
stops the service it restores into first.
It mounts Grafana's and n8n's volumes, so it runs where they run (statefulPlacement).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import images
from components.backup_jobs import (
    BACKUP_HEALTHCHECK,
    BackupTarget,
    ObjectStorage,
    backup_metrics_env,
    backup_scripts,
    encryption_key,
    scheduled,
)
from components.settings import Resources
from components.swarm import (
    Mounted,
    ServiceSpec,
    SharedPlatform,
    StackScope,
    volume_mount,
)
from names import PLATFORM, PLATFORM_BACKUP, SHARED

BACKUP_RESOURCES = Resources(0.05, 0.50, 64, 512)
GRAFANA_DATA = "/data/grafana"
N8N_DATA = "/data/n8n"
OBJECT_COPIES = "/data/object-copies"
"""Without an off-site target, the second copy of every bucket: a volume of its own."""


@dataclass(frozen=True, kw_only=True)
class PlatformBackupArgs:
    platform: SharedPlatform
    scope: StackScope
    target: BackupTarget | None
    """None: backups are off (the key stays, for the archives made before)."""
    object_storage: ObjectStorage | None
    """The object store whose buckets are copied: to an off-site target, else into a volume of their own."""
    grafana_volume: pulumi.Input[str]
    n8n_volume: pulumi.Input[str]
    n8n_encryption_key: pulumi.Input[str]


class PlatformBackup(pulumi.ComponentResource):
    encryption_key: pulumi.Output[str]
    """The key Grafana's and n8n's archives are encrypted with."""

    def __init__(self, name: str, args: PlatformBackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nextcandle:backup:PlatformBackup", name, None, opts)
        scope = args.scope.of(SHARED)
        # Kept whether or not backups run now: the archives already made need it.
        key, self.encryption_key = encryption_key(scope, f"{name}-encryption-key", scope.data_options(self))
        # Kept too: switching to an off-site target must not delete the copies made before.
        copies = scope.volume(f"{name}-object-copies", f"{SHARED}_object_copies", scope.data_options(self))
        self.service = self._service(name, args, args.target, key, copies, scope) if args.target is not None else None
        self.register_outputs({"service": self.service.name if self.service is not None else None})

    def _service(
        self, name: str, args: PlatformBackupArgs, target: BackupTarget, key: Mounted, copies: docker.Volume, scope: StackScope
    ) -> docker.Service:
        child = pulumi.ResourceOptions(parent=self)
        platform = args.platform
        secrets = [
            key,
            Mounted(scope.secret(f"{name}-target-access-key", target.storage.access_key, child), "backup_s3_access_key"),
            Mounted(scope.secret(f"{name}-target-secret-key", target.storage.secret_key, child), "backup_s3_secret_key"),
            Mounted(scope.secret(f"{name}-n8n-encryption-key", args.n8n_encryption_key, child), "n8n_encryption_key"),
        ]
        env: dict[str, pulumi.Input[str]] = {
            "SCHEDULE": target.settings.schedule,
            "BACKUP_KEEP_DAYS": str(target.settings.retention_days),
            "S3_ENDPOINT": target.storage.endpoint,
            "S3_BUCKET": target.bucket,
            "S3_PREFIX": PLATFORM,
            "GRAFANA_DB": f"{GRAFANA_DATA}/grafana.db",
            "N8N_DB": f"{N8N_DATA}/database.sqlite",
            **backup_metrics_env(target),
        }
        if args.object_storage is not None:
            env["STORAGE_ENDPOINT"] = args.object_storage.endpoint
            env["OBJECT_COPIES"] = OBJECT_COPIES
            secrets += [
                Mounted(scope.secret(f"{name}-storage-access-key", args.object_storage.access_key, child), "storage_s3_access_key"),
                Mounted(scope.secret(f"{name}-storage-secret-key", args.object_storage.secret_key, child), "storage_s3_secret_key"),
            ]
        scripts = backup_scripts(scope, name, f"{SHARED}-backup", ("platform-env", "crypt", "platform-backup", "platform-restore"), child)
        return scope.service(
            name,
            ServiceSpec(
                name=PLATFORM_BACKUP,
                image=images.POSTGRES_BACKUP,
                commands=scheduled("platform-backup"),
                env=env,
                healthcheck=BACKUP_HEALTHCHECK,
                resources=BACKUP_RESOURCES,
                stateful=True,
                placement=scope.stateful_placement,
                networks=[platform.storage_network_id],
                secrets=secrets,
                configs=scripts,
                mounts=[
                    volume_mount(args.grafana_volume, GRAFANA_DATA),
                    volume_mount(args.n8n_volume, N8N_DATA),
                    volume_mount(copies.name, OBJECT_COPIES),
                ],
            ),
            child,
        )
