"""EnvDatabaseStack: one environment's PostgreSQL 17 + pgvector and Redis 7.4, with their exporters.

Creates, for environment <env>:
- overlay network `<env>_internal` (attachable: the environment's applications join it);
- random database name, user and passwords, delivered as Docker secrets (`*_FILE` convention);
- PostgreSQL with the stack's configuration profile, SCRAM-only pg_hba.conf, an init script that
  creates the `vector` extension, a tmpfs /dev/shm and a persistent volume;
- Redis with AOF, maxmemory and noeviction; its password comes from a secret config file that
  redis-server includes, so it never appears in the environment or the command line;
- postgres-exporter and redis-exporter on the `monitoring` network for Prometheus.
In stg and prod (protectData) the volumes, random values and password secrets are protected and the
volumes are retained if the stack is ever destroyed.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components import images
from components.settings import CONFIGS, BackupSettings, DatabaseSettings, Resources
from components.swarm import (
    ALLOW_PUBLISHED_PORT_LABEL,
    Healthcheck,
    Mounted,
    ServiceSpec,
    data_volume,
    http_check,
    mebibytes,
    overlay_network,
    swarm_config,
    swarm_secret,
    swarm_service,
    volume_mount,
)

EXPORTER_RESOURCES = Resources(0.02, 0.10, 32, 64)
BACKUP_RESOURCES = Resources(0.05, 0.50, 64, 256)
BACKUP_DIR = "/etc/backup"


@dataclass(frozen=True, kw_only=True)
class BackupTarget:
    """Where the environment's PostgreSQL dumps go."""

    settings: BackupSettings
    access_key: pulumi.Input[str]
    secret_key: pulumi.Input[str]


def backup_target(
    settings: BackupSettings | None, owned_storage: tuple[pulumi.Input[str], pulumi.Input[str]] | None
) -> BackupTarget | None:
    """Backups go to the configured S3 credentials, else to the object storage this stack owns."""
    if settings is None:
        return None
    access_key = settings.access_key or (owned_storage[0] if owned_storage else None)
    secret_key = settings.secret_key or (owned_storage[1] if owned_storage else None)
    if access_key is None or secret_key is None:
        raise ValueError("backups need S3 credentials; settings validation requires them")
    return BackupTarget(settings=settings, access_key=access_key, secret_key=secret_key)
PG_CONF_DIR = "/etc/postgresql"


@dataclass(frozen=True, kw_only=True)
class EnvDatabaseStackArgs:
    environment: str
    settings: DatabaseSettings
    monitoring_network_id: pulumi.Input[str]
    restart_max_attempts: int
    protect_data: bool
    stateful_placement: tuple[str, ...]
    allow_published_ports: bool
    """Mark the database services so the policy pack accepts their published ports (prod)."""
    backup: BackupTarget | None


def render_postgres_conf(file_name: str, hba_file: str) -> str:
    """configs/postgres/<file_name> with its placeholders filled (a missing one raises KeyError)."""
    return string.Template((CONFIGS / "postgres" / file_name).read_text()).substitute(hba_file=hba_file)


def redis_args(settings: DatabaseSettings, auth_file: str) -> list[str]:
    """redis-server's command line: everything but the password, which is in `auth_file`."""
    args = [
        "redis-server",
        "--include", auth_file,
        "--dir", "/data",
        "--appendonly", "yes",
        "--maxmemory", f"{settings.redis_maxmemory_mb}mb",
        "--maxmemory-policy", "noeviction",
    ]
    if settings.redis_appendfsync:
        args += ["--appendfsync", settings.redis_appendfsync]
    return args


def redis_auth_conf(password: str) -> str:
    return f"requirepass {password}\n"


class EnvDatabaseStack(pulumi.ComponentResource):
    network_name: str
    postgres_host: str
    redis_host: str
    postgres_database: pulumi.Output[str]
    postgres_user: pulumi.Output[str]
    postgres_password: pulumi.Output[str]
    redis_password: pulumi.Output[str]

    def __init__(self, name: str, args: EnvDatabaseStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nextcandle:env_database:EnvDatabaseStack", name, None, opts)
        env, settings = args.environment, args.settings
        child = pulumi.ResourceOptions(parent=self)
        # A replaced volume or password secret means lost data or a database nobody can log in to.
        data = pulumi.ResourceOptions(parent=self, protect=args.protect_data, retain_on_delete=args.protect_data)
        secret_opts = pulumi.ResourceOptions(parent=self, protect=args.protect_data)

        self.network_name = f"{env}_internal"
        internal = overlay_network(f"{name}-internal", self.network_name, env, child)

        database = random.RandomString(f"{name}-postgres-db", length=10, special=False, upper=False, numeric=False, opts=secret_opts)
        user = random.RandomString(f"{name}-postgres-user", length=10, special=False, upper=False, numeric=False, opts=secret_opts)
        password = random.RandomPassword(f"{name}-postgres-password", length=32, special=False, opts=secret_opts)
        redis_password = random.RandomPassword(f"{name}-redis-password", length=32, special=False, opts=secret_opts)
        self.postgres_database = database.result.apply(lambda r: f"app_{r}")
        self.postgres_user = user.result.apply(lambda r: f"u_{r}")
        # Marked secret here, not only by the provider, so no export of them can ever be plain.
        self.postgres_password = pulumi.Output.secret(password.result)
        self.redis_password = pulumi.Output.secret(redis_password.result)

        db_secret = swarm_secret(f"{name}-postgres-db", self.postgres_database, env, secret_opts)
        user_secret = swarm_secret(f"{name}-postgres-user", self.postgres_user, env, secret_opts)
        password_secret = swarm_secret(f"{name}-postgres-password", password.result, env, secret_opts)
        redis_password_secret = swarm_secret(f"{name}-redis-password", redis_password.result, env, secret_opts)
        redis_auth_secret = swarm_secret(
            f"{name}-redis-auth", redis_password.result.apply(redis_auth_conf), env, secret_opts
        )

        pg_conf = swarm_config(
            f"{name}-postgresql-conf",
            f"{env}-postgresql-conf",
            render_postgres_conf(settings.postgres_config_file, hba_file=f"{PG_CONF_DIR}/pg_hba.conf"),
            env,
            child,
        )
        pg_hba = swarm_config(f"{name}-pg-hba", f"{env}-pg-hba", (CONFIGS / "postgres" / "pg_hba.conf").read_text(), env, child)
        init_sql = swarm_config(
            f"{name}-postgres-init", f"{env}-postgres-init", (CONFIGS / "postgres" / "init" / "10-extensions.sql").read_text(), env, child
        )
        postgres_volume = data_volume(f"{name}-postgres-data", f"{env}_postgres_data", env, data)
        redis_volume = data_volume(f"{name}-redis-data", f"{env}_redis_data", env, data)

        exception = {ALLOW_PUBLISHED_PORT_LABEL: "true"} if args.allow_published_ports else {}
        self.postgres_host = f"{env}_postgres"
        self.redis_host = f"{env}_redis"
        run_secrets = "/run/secrets"
        self.postgres = swarm_service(
            f"{name}-postgres",
            ServiceSpec(
                name=self.postgres_host,
                stack=env,
                image=images.POSTGRES,
                args=["postgres", "-c", f"config_file={PG_CONF_DIR}/postgresql.conf"],
                env={
                    "POSTGRES_DB_FILE": f"{run_secrets}/postgres_db",
                    "POSTGRES_USER_FILE": f"{run_secrets}/postgres_user",
                    "POSTGRES_PASSWORD_FILE": f"{run_secrets}/postgres_password",
                    "POSTGRES_INITDB_ARGS": "--auth-host=scram-sha-256 --auth-local=scram-sha-256",
                },
                healthcheck=Healthcheck(
                    [
                        "CMD-SHELL",
                        f'pg_isready -h 127.0.0.1 -U "$(cat {run_secrets}/postgres_user)" -d "$(cat {run_secrets}/postgres_db)"',
                    ],
                    interval="10s", timeout="5s", retries=5, start_period="60s",
                ),
                resources=settings.postgres_resources,
                restart_max_attempts=args.restart_max_attempts,
                stateful=True,
                networks=[internal.id],
                secrets=[
                    Mounted(db_secret, "postgres_db"),
                    Mounted(user_secret, "postgres_user"),
                    Mounted(password_secret, "postgres_password"),
                ],
                configs=[
                    Mounted(pg_conf, f"{PG_CONF_DIR}/postgresql.conf"),
                    Mounted(pg_hba, f"{PG_CONF_DIR}/pg_hba.conf"),
                    Mounted(init_sql, "/docker-entrypoint-initdb.d/10-extensions.sql"),
                ],
                mounts=[
                    volume_mount(postgres_volume.name, "/var/lib/postgresql/data"),
                    # Swarm has no shm_size; parallel workers need more than Docker's 64 MB /dev/shm.
                    # Mode 0o777, not 0o1777: the provider reads the mode back without the sticky
                    # bit (Perm()), which would show as a change in every preview; only the
                    # postgres user writes here.
                    docker.ServiceTaskSpecContainerSpecMountArgs(
                        type="tmpfs",
                        target="/dev/shm",
                        tmpfs_options=docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(
                            size_bytes=mebibytes(settings.postgres_shm_size_mb), mode=0o777
                        ),
                    ),
                ],
                ports=[(settings.postgres_port, 5432)] if settings.postgres_port else [],
                placement=args.stateful_placement,
                labels=exception if settings.postgres_port else {},
                stop_grace_period="60s",
            ),
            child,
        )

        self.redis = swarm_service(
            f"{name}-redis",
            ServiceSpec(
                name=self.redis_host,
                stack=env,
                image=images.REDIS,
                args=redis_args(settings, f"{run_secrets}/redis_auth.conf"),
                healthcheck=Healthcheck(
                    ["CMD-SHELL", f'REDISCLI_AUTH="$(cat {run_secrets}/redis_password)" redis-cli ping | grep -q PONG'],
                    interval="10s", timeout="5s", retries=5, start_period="20s",
                ),
                resources=settings.redis_resources,
                restart_max_attempts=args.restart_max_attempts,
                stateful=True,
                networks=[internal.id],
                secrets=[Mounted(redis_auth_secret, "redis_auth.conf"), Mounted(redis_password_secret, "redis_password")],
                mounts=[volume_mount(redis_volume.name, "/data")],
                ports=[(settings.redis_port, 6379)] if settings.redis_port else [],
                placement=args.stateful_placement,
                labels=exception if settings.redis_port else {},
                stop_grace_period="30s",
            ),
            child,
        )

        exporter_networks = [internal.id, args.monitoring_network_id]
        self.postgres_exporter = swarm_service(
            f"{name}-postgres-exporter",
            ServiceSpec(
                name=f"{env}_postgres-exporter",
                stack=env,
                image=images.POSTGRES_EXPORTER,
                env={
                    "DATA_SOURCE_URI": f"{self.postgres_host}:5432/postgres?sslmode=disable",
                    "DATA_SOURCE_USER_FILE": f"{run_secrets}/postgres_user",
                    "DATA_SOURCE_PASS_FILE": f"{run_secrets}/postgres_password",
                },
                healthcheck=http_check("http://127.0.0.1:9187/", start_period="20s"),
                resources=EXPORTER_RESOURCES,
                restart_max_attempts=args.restart_max_attempts,
                networks=exporter_networks,
                secrets=[Mounted(user_secret, "postgres_user"), Mounted(password_secret, "postgres_password")],
            ),
            child,
        )
        self.redis_exporter = swarm_service(
            f"{name}-redis-exporter",
            ServiceSpec(
                name=f"{env}_redis-exporter",
                stack=env,
                image=images.REDIS_EXPORTER,
                # The exporter has no *_FILE variable; read the secret at start instead of storing it in env.
                commands=["/bin/sh", "-c", f'REDIS_PASSWORD="$(cat {run_secrets}/redis_password)" exec /redis_exporter'],
                env={"REDIS_ADDR": f"redis://{self.redis_host}:6379"},
                healthcheck=http_check("http://127.0.0.1:9121/health", start_period="20s"),
                resources=EXPORTER_RESOURCES,
                restart_max_attempts=args.restart_max_attempts,
                networks=exporter_networks,
                secrets=[Mounted(redis_password_secret, "redis_password")],
            ),
            child,
        )

        if args.backup is not None:
            self._backup(name, env, args.backup, [internal.id, args.monitoring_network_id], args.restart_max_attempts,
                         [Mounted(db_secret, "postgres_db"), Mounted(user_secret, "postgres_user"),
                          Mounted(password_secret, "postgres_password")])

        self.register_outputs(
            {
                "postgres_host": self.postgres_host,
                "postgres_database": self.postgres_database,
                "postgres_user": self.postgres_user,
                "postgres_password": self.postgres_password,
                "redis_host": self.redis_host,
                "redis_password": self.redis_password,
            }
        )

    def _backup(
        self,
        name: str,
        env: str,
        target: BackupTarget,
        networks: list[pulumi.Input[str]],
        restart_max_attempts: int,
        database_secrets: list[Mounted],
    ) -> None:
        """Scheduled pg_dump to object storage with retention; configs/backup/restore.sh restores."""
        child = pulumi.ResourceOptions(parent=self)
        backup = target.settings
        access_key = swarm_secret(f"{name}-backup-s3-access-key", target.access_key, env, child)
        secret_key = swarm_secret(f"{name}-backup-s3-secret-key", target.secret_key, env, child)
        scripts = [
            Mounted(swarm_config(f"{name}-backup-{script}", f"{env}-backup-{script}", (CONFIGS / "backup" / f"{script}.sh").read_text(), env, child),
                    f"{BACKUP_DIR}/{script}.sh", mode=0o555)
            for script in ("env", "backup", "restore")
        ]
        env_vars = {
            "SCHEDULE": backup.schedule,
            "BACKUP_KEEP_DAYS": str(backup.retention_days),
            "S3_BUCKET": backup.bucket,
            "S3_PREFIX": env,
            "POSTGRES_HOST": self.postgres_host,
            "POSTGRES_PORT": "5432",
        }
        if backup.endpoint:
            env_vars["S3_ENDPOINT"] = backup.endpoint
        self.backup = swarm_service(
            f"{name}-postgres-backup",
            ServiceSpec(
                name=f"{env}_postgres-backup",
                stack=env,
                image=images.POSTGRES_BACKUP,
                # The image brings pg_dump 17, the aws CLI and go-cron; the scripts are ours.
                commands=["/bin/sh", "-c", f'exec go-cron "$SCHEDULE" /bin/sh {BACKUP_DIR}/backup.sh'],
                env=env_vars,
                healthcheck=Healthcheck(["CMD-SHELL", "pgrep go-cron >/dev/null"], start_period="10s"),
                resources=BACKUP_RESOURCES,
                restart_max_attempts=restart_max_attempts,
                networks=networks,
                secrets=[*database_secrets, Mounted(access_key, "backup_s3_access_key"), Mounted(secret_key, "backup_s3_secret_key")],
                configs=scripts,
            ),
            child,
        )
