"""An environment's database configuration files, rendered from templates under configs/postgres/
(postgresql.conf profiles, pg_hba.conf) or built as data (redis-server's command line and password
file), for EnvDatabaseStack to mount as content-named Swarm configs and secrets."""

from __future__ import annotations

import string

from components.settings import CONFIGS, DatabaseSettings

RUN_SECRETS = "/run/secrets"
TLS_CERT_FILE = f"{RUN_SECRETS}/postgres_tls_cert"
TLS_KEY_FILE = f"{RUN_SECRETS}/postgres_tls_key"


def render_postgres_conf(file_name: str, hba_file: str, archive_dir: str | None = None) -> str:
    """configs/postgres/<file_name> with its placeholders filled (a missing one raises KeyError); with
    `archive_dir`, continuous WAL archiving into it (configs/postgres/parts/archiving.conf)."""
    conf = string.Template((CONFIGS / "postgres" / file_name).read_text()).substitute(
        hba_file=hba_file, ssl_cert_file=TLS_CERT_FILE, ssl_key_file=TLS_KEY_FILE
    )
    if archive_dir is None:
        return conf
    return conf + string.Template((CONFIGS / "postgres" / "parts" / "archiving.conf").read_text()).substitute(archive_dir=archive_dir)


def render_pg_hba(client_networks: tuple[str, ...]) -> str:
    """configs/postgres/pg_hba.conf: the published port admits `client_networks`, over TLS only."""
    # hostssl alone does not refuse plain connections (a later line could admit them): reject first.
    rules = "\n".join(
        f"hostnossl all     all   {network:<13} reject\nhostssl all       all   {network:<13} scram-sha-256"
        for network in client_networks
    )
    return string.Template((CONFIGS / "postgres" / "pg_hba.conf").read_text()).substitute(client_rules=rules or "# (none published)")


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
