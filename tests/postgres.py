"""A real PostgreSQL (pgserver's build, 16, with pgvector) set up the way the image's entrypoint does
it, from what the program generates: superuser and password from the Docker secrets, our
postgresql.conf and pg_hba.conf, then the init SQL over a password-authenticated TCP connection."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import ProgramRun, free_port
from tests.tiers import needs_tool

pgserver = pytest.importorskip("pgserver", reason="pip install pgserver (requirements-dev.txt)")
BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
DEBIAN_BIN = Path("/usr/lib/postgresql/15/bin")
"""Debian's PostgreSQL 15, built with OpenSSL (pgserver's build has no TLS, and Debian's no pgvector)."""
RUN_AS = "pgserver"  # PostgreSQL refuses to run as root; pgserver's own unprivileged user.
SECRETS = "/run/secrets/"
WAL_VOLUME = "/var/lib/postgresql/wal"



class Server:
    def __init__(self, base: Path, run: ProgramRun, env: str, bin_dir: Path = BIN, wal_dir: Path | None = None) -> None:
        needs_tool("PostgreSQL")
        postgres = run.service(f"{env}_postgres")
        self.bin = bin_dir
        self.user = run.mounted_secret(postgres, "postgres_user")
        self.password = run.mounted_secret(postgres, "postgres_password")
        self.database = run.mounted_secret(postgres, "postgres_db")
        self.init_sql = run.mounted_config(postgres, "/docker-entrypoint-initdb.d/10-extensions.sql")
        conf = run.mounted_config(postgres, "/etc/postgresql/postgresql.conf")
        hba = run.mounted_config(postgres, "/etc/postgresql/pg_hba.conf")
        self.base, self.data, self.port = base, base / "data", free_port()
        (base / "pg_hba.conf").write_text(hba)
        if bin_dir == BIN:  # no TLS in pgserver's build: drop the TLS settings (tests/test_real_postgres_tls.py boots them)
            conf = "\n".join(line for line in conf.splitlines() if not line.startswith("ssl"))
        else:
            for name in ("postgres_tls_cert", "postgres_tls_key"):
                (base / name).write_text(run.mounted_secret(postgres, name))
                (base / name).chmod(0o600)
        conf = conf.replace("/etc/postgresql/pg_hba.conf", str(base / "pg_hba.conf")).replace(SECRETS, f"{base}/")
        # The WAL volume (continuous archiving) at a local directory, or archiving off.
        self.wal_dir = wal_dir
        if wal_dir is None:
            conf = conf.replace("archive_mode = on", "archive_mode = off")
        else:
            (wal_dir / "archive").mkdir(parents=True)
            conf = re.sub(rf"{WAL_VOLUME}/[0-9]+", str(wal_dir), conf)  # the major's directory in the WAL volume
        (base / "postgresql.conf").write_text(conf)
        (base / "pwfile").write_text(self.password)
        self.kwargs: dict[str, object] = {}
        if os.geteuid() == 0:
            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(RUN_AS)
            ensure_prefix_permissions(base)
            if bin_dir == BIN:
                ensure_prefix_permissions(BIN)
                ensure_folder_permissions(BIN, 0o055)
            entry = pwd.getpwnam(RUN_AS)
            shutil.chown(base, entry.pw_uid, entry.pw_gid)
            for child in base.iterdir():
                shutil.chown(child, entry.pw_uid, entry.pw_gid)
            for path in [wal_dir, *wal_dir.rglob("*")] if wal_dir else []:
                shutil.chown(path, entry.pw_uid, entry.pw_gid)
            self.kwargs["user"] = RUN_AS

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True, text=True, check=check, timeout=120, env={**os.environ, **(env or {})}, **self.kwargs,  # type: ignore[arg-type]
        )

    def start(self) -> None:
        # What the image runs: initdb with a SCRAM superuser named by the secrets, then our config file.
        self.run("initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={self.base / 'pwfile'}",
                 "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--encoding=UTF8")
        self.start_existing()
        self.psql("postgres", f'CREATE DATABASE "{self.database}"')
        self.psql(self.database, self.init_sql)

    def start_existing(self) -> None:
        """Start the server on the data directory as it is (e.g. after a restore replaced it)."""
        options = f"-c config_file={self.base / 'postgresql.conf'} -c port={self.port} -c unix_socket_directories={self.base}"
        started = self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "start", check=False)
        assert started.returncode == 0, (self.base / "log").read_text() if (self.base / "log").exists() else started.stderr

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def psql(
        self, database: str, sql: str, password: str | None = None, check: bool = True, sslmode: str = "prefer"
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database,
            "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql,
            env={"PGPASSWORD": password or self.password, "PGSSLMODE": sslmode}, check=check,
        )

    def value(self, sql: str) -> str:
        return self.psql(self.database, sql).stdout.strip()
