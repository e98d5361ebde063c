"""EnvDatabaseStack: one environment's PostgreSQL (17, or 18 after an upgrade) + pgvector and Redis 7.4, with their exporters.

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

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components import images
from components.backup_jobs import (
    BACKUP_HEALTHCHECK,
    PGDATA,
    WAL_MOUNT,
    WAL_SHIP_SECONDS,
    BackupTarget,
    backup_scripts,
    database_backup_env,
    encryption_key,
    scheduled,
    wal_dir,
)
from components.certificates import seeded_tls_secrets
from components.database_configs import (
    RUN_SECRETS,
    redis_args,
    redis_auth_conf,
    render_pg_hba,
    render_postgres_conf,
)
from components.settings import CONFIGS, DatabaseSettings, Resources
from components.swarm import (
    Healthcheck,
    Mounted,
    ServiceSpec,
    StackScope,
    http_check,
    volume_mount,
)
from components.swarm_values import mebibytes
from names import (
    DATABASE_CLIENTS_LABEL,
    FIRST_POSTGRES_MAJOR,
    POSTGRES_EXPORTER_PORT,
    POSTGRES_PORT,
    REDIS_EXPORTER_PORT,
    REDIS_PORT,
    env_network,
    env_service,
    postgres_data_volume,
)

EXPORTER_RESOURCES = Resources(0.02, 0.10, 32, 64)
BACKUP_RESOURCES = Resources(0.05, 0.50, 64, 256)
PG_CONF_DIR = "/etc/postgresql"
APP_ROLE_SCRIPT = f"{PG_CONF_DIR}/app-role.sh"


@dataclass(frozen=True, kw_only=True)
class EnvDatabaseStackArgs:
    scope: StackScope
    """The environment's own: its name is the Swarm stack's."""
    settings: DatabaseSettings
    monitoring_network_id: pulumi.Input[str]
    storage_network_id: pulumi.Input[str]
    """The platform's object storage network, which the backups join."""
    client_networks: tuple[str, ...]
    """Admitted to a published PostgreSQL port, over TLS only."""
    runner_network_id: pulumi.Input[str] | None = None
    """The platform's runner network, when CI jobs may reach the databases by name."""
    backup: BackupTarget | None


@dataclass(frozen=True)
class _DatabaseSecrets:
    """The Docker secrets the environment's services mount."""

    postgres_db: docker.Secret
    postgres_user: docker.Secret
    postgres_password: docker.Secret
    redis_password: docker.Secret
    redis_auth: docker.Secret
    app_password: docker.Secret

    def postgres_login(self, with_database: bool = True) -> list[Mounted]:
        login = [Mounted(self.postgres_user, "postgres_user"), Mounted(self.postgres_password, "postgres_password")]
        return [Mounted(self.postgres_db, "postgres_db"), *login] if with_database else login


class EnvDatabaseStack(pulumi.ComponentResource):
    network_name: str
    postgres_host: str
    redis_host: str
    postgres_database: pulumi.Output[str]
    postgres_user: pulumi.Output[str]
    postgres_password: pulumi.Output[str]
    redis_password: pulumi.Output[str]
    app_password: pulumi.Output[str]
    """The applications' login (APP_ROLE): least privilege, unlike postgres_user."""
    backup_encryption_key: pulumi.Output[str]
    """The key every dump is encrypted with."""

    def __init__(self, name: str, args: EnvDatabaseStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nextcandle:env_database:EnvDatabaseStack", name, None, opts)
        self._name, self._args, self._scope, self._env = name, args, args.scope, args.scope.stack
        self._child = pulumi.ResourceOptions(parent=self)
        # A replaced volume or password secret means lost data or a database nobody can log in to.
        self._data = self._scope.data_options(self)
        self._secret_opts = pulumi.ResourceOptions(parent=self, protect=self._scope.protect_data)

        self.network_name = env_network(self._env)
        internal = self._scope.network(f"{name}-internal", self.network_name, self._child)
        self.postgres_host = env_service(self._env, "postgres")
        self.redis_host = env_service(self._env, "redis")
        secrets = self._secrets()
        databases: list[pulumi.Input[str]] = [internal.id]
        if args.runner_network_id is not None:
            databases.append(args.runner_network_id)
        # Kept whether or not backups run, like the data: turning them off must not delete a protected volume.
        self._wal = self._scope.volume(f"{name}-postgres-wal", f"{self._env}_postgres_wal", self._data)
        self._release = images.POSTGRES_RELEASES[args.settings.postgres_major]
        self._data_volume = self._postgres_data_volume(args.settings.postgres_major)
        if args.settings.postgres_previous_major is not None:
            # Kept, unmounted, until the upgrade is confirmed (python -m ops upgrade-postgres --confirm).
            self._postgres_data_volume(args.settings.postgres_previous_major)
        self.postgres = self._postgres(secrets, databases)
        self.redis = self._redis(secrets, databases)
        with_monitoring = [internal.id, args.monitoring_network_id]
        self.postgres_exporter = self._postgres_exporter(secrets, with_monitoring)
        self.redis_exporter = self._redis_exporter(secrets, with_monitoring)
        # Kept whether or not backups run now: the dumps already made need it.
        self._backup_key, self.backup_encryption_key = encryption_key(self._scope, f"{name}-backup-encryption-key", self._secret_opts)
        if args.backup is not None:
            self.backup = self._backup(args.backup, secrets, [internal.id, args.storage_network_id])

        self.register_outputs(
            {
                "postgres_host": self.postgres_host,
                "postgres_database": self.postgres_database,
                "postgres_user": self.postgres_user,
                "postgres_password": self.postgres_password,
                "redis_host": self.redis_host,
                "redis_password": self.redis_password,
                "app_password": self.app_password,
            }
        )

    def _published(self, port: int, target: int) -> dict[str, Any]:
        """A database port on the host (port 0: none): host mode, so the server sees each client's
        own address, labelled with the client networks it admits (the policy pack checks them)."""
        if not port:
            return {}
        clients = ",".join(self._args.client_networks)
        return {"ports": [(port, target)], "publish_mode": "host", "labels": {DATABASE_CLIENTS_LABEL: clients}}

    def _secrets(self) -> _DatabaseSecrets:
        name, opts = self._name, self._secret_opts
        database = random.RandomString(f"{name}-postgres-db", length=10, special=False, upper=False, numeric=False, opts=opts)
        user = random.RandomString(f"{name}-postgres-user", length=10, special=False, upper=False, numeric=False, opts=opts)
        password = random.RandomPassword(f"{name}-postgres-password", length=32, special=False, opts=opts)
        redis_password = random.RandomPassword(f"{name}-redis-password", length=32, special=False, opts=opts)
        app_password = random.RandomPassword(f"{name}-app-password", length=32, special=False, opts=opts)
        self.postgres_database = database.result.apply(lambda r: f"app_{r}")
        self.postgres_user = user.result.apply(lambda r: f"u_{r}")
        # Marked secret here, not only by the provider, so no export of them can ever be plain.
        self.postgres_password = pulumi.Output.secret(password.result)
        self.redis_password = pulumi.Output.secret(redis_password.result)
        self.app_password = pulumi.Output.secret(app_password.result)
        return _DatabaseSecrets(
            postgres_db=self._scope.secret(f"{name}-postgres-db", self.postgres_database, opts),
            postgres_user=self._scope.secret(f"{name}-postgres-user", self.postgres_user, opts),
            postgres_password=self._scope.secret(f"{name}-postgres-password", password.result, opts),
            redis_password=self._scope.secret(f"{name}-redis-password", redis_password.result, opts),
            redis_auth=self._scope.secret(f"{name}-redis-auth", redis_password.result.apply(redis_auth_conf), opts),
            app_password=self._scope.secret(f"{name}-app-password", app_password.result, opts),
        )

    def _postgres_data_volume(self, major: int) -> docker.Volume:
        first = major == FIRST_POSTGRES_MAJOR  # its resource and volume names are older than upgrades
        resource = f"{self._name}-postgres-data" if first else f"{self._name}-postgres{major}-data"
        return self._scope.volume(resource, postgres_data_volume(self._env, major), self._data, adopt="postgres" if first else "")

    def _postgres(self, secrets: _DatabaseSecrets, networks: list[pulumi.Input[str]]) -> docker.Service:
        name, env, settings, child = self._name, self._env, self._args.settings, self._child
        # Continuous archiving needs the backup service, which ships and removes what PostgreSQL archives.
        wal = wal_dir(self._release.major)
        archive = None if self._args.backup is None else f"{wal}/archive"
        conf = render_postgres_conf(settings.postgres_config_file, hba_file=f"{PG_CONF_DIR}/pg_hba.conf", archive_dir=archive)
        pg_conf = self._scope.config(f"{name}-postgresql-conf", f"{env}-postgresql-conf", conf, child)
        clients = self._args.client_networks if settings.postgres_port else ()
        pg_hba = self._scope.config(f"{name}-pg-hba", f"{env}-pg-hba", render_pg_hba(clients), child)
        tls = self._tls_secrets()
        init_sql = (CONFIGS / "postgres" / "init" / "10-extensions.sql").read_text()
        init = self._scope.config(f"{name}-postgres-init", f"{env}-postgres-init", init_sql, child)
        app_role = self._scope.config(f"{name}-app-role", f"{env}-app-role", (CONFIGS / "postgres" / "app-role.sh").read_text(), child)
        return self._scope.service(
            f"{name}-postgres",
            ServiceSpec(
                name=self.postgres_host,
                image=self._release.image,
                # The image's entrypoint chowns only PGDATA; the WAL volume is made postgres's before it runs.
                # The applications' login is created or updated once the server answers (app-role.sh).
                commands=[
                    "/bin/sh", "-c",
                    f"mkdir -p {wal}/archive {wal}/restore && chown -R postgres:postgres {WAL_MOUNT} && "
                    f'{{ sh {APP_ROLE_SCRIPT} & }} && exec docker-entrypoint.sh "$@"',
                    "sh",
                ],
                args=["postgres", "-c", f"config_file={PG_CONF_DIR}/postgresql.conf"],
                env={
                    "POSTGRES_DB_FILE": f"{RUN_SECRETS}/postgres_db",
                    "POSTGRES_USER_FILE": f"{RUN_SECRETS}/postgres_user",
                    "POSTGRES_PASSWORD_FILE": f"{RUN_SECRETS}/postgres_password",
                    "POSTGRES_INITDB_ARGS": "--auth-host=scram-sha-256 --auth-local=scram-sha-256",
                    **dict(self._release.env),
                },
                healthcheck=Healthcheck(
                    [
                        "CMD-SHELL",
                        f'pg_isready -h 127.0.0.1 -U "$(cat {RUN_SECRETS}/postgres_user)" -d "$(cat {RUN_SECRETS}/postgres_db)"',
                    ],
                    interval="10s", timeout="5s", retries=5, start_period="60s",
                ),
                resources=settings.postgres_resources,
                stateful=True,
                networks=networks,
                secrets=[*secrets.postgres_login(), *tls, Mounted(secrets.app_password, "app_password")],
                configs=[
                    Mounted(pg_conf, f"{PG_CONF_DIR}/postgresql.conf"),
                    Mounted(pg_hba, f"{PG_CONF_DIR}/pg_hba.conf"),
                    Mounted(init, "/docker-entrypoint-initdb.d/10-extensions.sql"),
                    Mounted(app_role, APP_ROLE_SCRIPT),
                ],
                mounts=[
                    volume_mount(self._data_volume.name, PGDATA),
                    volume_mount(self._wal.name, WAL_MOUNT),
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
                placement=self._scope.stateful_placement,
                # Fast shutdown, the signal docker-library/postgres's Dockerfile names in STOPSIGNAL (not re-read here): on
                # SIGTERM PostgreSQL waits for every client (the exporter never leaves) until the grace
                # period ends, and the provider's delete gives up after the same time.
                stop_signal="SIGINT",
                stop_grace_period="60s",
                **self._published(settings.postgres_port, POSTGRES_PORT),
            ),
            child,
        )

    def _tls_secrets(self) -> list[Mounted]:
        """PostgreSQL's key and self-signed certificate, from a protected random seed (stable across runs)."""
        opts = self._secret_opts
        key, cert = seeded_tls_secrets(self._scope, f"{self._name}-postgres-tls", self.postgres_host, opts, opts)
        return [
            Mounted(key, "postgres_tls_key", **images.owner(self._release.image), mode=0o400),
            Mounted(cert, "postgres_tls_cert", **images.owner(self._release.image), mode=0o444),
        ]

    def _redis(self, secrets: _DatabaseSecrets, networks: list[pulumi.Input[str]]) -> docker.Service:
        name, env, settings = self._name, self._env, self._args.settings
        volume = self._scope.volume(f"{name}-redis-data", f"{env}_redis_data", self._data, adopt="redis")
        return self._scope.service(
            f"{name}-redis",
            ServiceSpec(
                name=self.redis_host,
                image=images.REDIS,
                args=redis_args(settings, f"{RUN_SECRETS}/redis_auth.conf"),
                healthcheck=Healthcheck(
                    ["CMD-SHELL", f'REDISCLI_AUTH="$(cat {RUN_SECRETS}/redis_password)" redis-cli ping | grep -q PONG'],
                    interval="10s", timeout="5s", retries=5, start_period="20s",
                ),
                resources=settings.redis_resources,
                stateful=True,
                networks=networks,
                secrets=[Mounted(secrets.redis_auth, "redis_auth.conf"), Mounted(secrets.redis_password, "redis_password")],
                mounts=[volume_mount(volume.name, "/data")],
                placement=self._scope.stateful_placement,
                stop_grace_period="30s",
                **self._published(settings.redis_port, REDIS_PORT),
            ),
            self._child,
        )

    def _postgres_exporter(self, secrets: _DatabaseSecrets, networks: list[pulumi.Input[str]]) -> docker.Service:
        return self._scope.service(
            f"{self._name}-postgres-exporter",
            ServiceSpec(
                name=env_service(self._env, "postgres-exporter"),
                image=images.POSTGRES_EXPORTER,
                env={
                    "DATA_SOURCE_URI": f"{self.postgres_host}:{POSTGRES_PORT}/postgres?sslmode=disable",
                    "DATA_SOURCE_USER_FILE": f"{RUN_SECRETS}/postgres_user",
                    "DATA_SOURCE_PASS_FILE": f"{RUN_SECRETS}/postgres_password",
                },
                healthcheck=http_check(f"http://127.0.0.1:{POSTGRES_EXPORTER_PORT}/", start_period="20s"),
                resources=EXPORTER_RESOURCES,
                networks=networks,
                secrets=secrets.postgres_login(with_database=False),
            ),
            self._child,
        )

    def _redis_exporter(self, secrets: _DatabaseSecrets, networks: list[pulumi.Input[str]]) -> docker.Service:
        return self._scope.service(
            f"{self._name}-redis-exporter",
            ServiceSpec(
                name=env_service(self._env, "redis-exporter"),
                image=images.REDIS_EXPORTER,
                # The exporter has no *_FILE variable; read the secret at start instead of storing it in env.
                commands=["/bin/sh", "-c", f'REDIS_PASSWORD="$(cat {RUN_SECRETS}/redis_password)" exec /redis_exporter'],
                env={"REDIS_ADDR": f"redis://{self.redis_host}:{REDIS_PORT}"},
                healthcheck=http_check(f"http://127.0.0.1:{REDIS_EXPORTER_PORT}/health", start_period="20s"),
                resources=EXPORTER_RESOURCES,
                networks=networks,
                secrets=[Mounted(secrets.redis_password, "redis_password")],
            ),
            self._child,
        )

    def _backup(self, target: BackupTarget, secrets: _DatabaseSecrets, networks: list[pulumi.Input[str]]) -> docker.Service:
        """Scheduled pg_dump to object storage with retention; configs/backup/restore.sh restores."""
        name, env, child = self._name, self._env, self._child
        storage = target.storage
        access_key = self._scope.secret(f"{name}-backup-s3-access-key", storage.access_key, child)
        secret_key = self._scope.secret(f"{name}-backup-s3-secret-key", storage.secret_key, child)
        scripts = backup_scripts(
            self._scope, f"{name}-backup", f"{env}-backup",
            ("env", "crypt", "backup", "restore", "verify", "wal-ship", "base-backup", "pitr-restore"), child,
        )
        release = self._release
        env_vars = database_backup_env(target, env, self.postgres_host, images.CONTRACTS[release.image].uid, release.major)
        return self._scope.service(
            f"{name}-postgres-backup",
            ServiceSpec(
                name=env_service(env, "postgres-backup"),
                image=release.backup_image,
                # Our image (images/postgres-backup): the major's PostgreSQL client tools, the aws CLI, gpg and
                # backup-cron; the scripts are configs. Every dump is followed by a base backup and the
                # dump's restore drill (verify.sh); the WAL shipper runs beside the scheduler.
                commands=scheduled("backup", then=("base-backup", "verify"), beside=f"wal-ship.sh --every {WAL_SHIP_SECONDS}"),
                env=env_vars,
                healthcheck=BACKUP_HEALTHCHECK,
                resources=BACKUP_RESOURCES,
                networks=networks,
                secrets=[*secrets.postgres_login(), Mounted(access_key, "backup_s3_access_key"), Mounted(secret_key, "backup_s3_secret_key"), self._backup_key],
                configs=scripts,
                # On PostgreSQL's node: it shares the WAL volume, and a restore writes the data volume.
                mounts=[volume_mount(self._data_volume.name, PGDATA), volume_mount(self._wal.name, WAL_MOUNT)],
                placement=self._scope.stateful_placement,
                stateful=True,
            ),
            child,
        )
