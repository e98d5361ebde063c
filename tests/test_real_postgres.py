"""PostgreSQL booted with each generated configuration profile (see tests/postgres.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ProgramRuns
from tests.postgres import Server

pytestmark = pytest.mark.tools  # a real server


@pytest.fixture(params=["dev", "prod"])
def server(request: pytest.FixtureRequest, runs: ProgramRuns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server]]:
    stack = request.param
    base = tmp_path_factory.mktemp(f"pg-{stack}")
    pg = Server(base, runs(stack), stack)
    pg.start()
    try:
        yield stack, pg
    finally:
        pg.stop()


def test_init_sql_creates_pgvector_and_it_works(server: tuple[str, Server]) -> None:
    _, pg = server
    assert pg.value("SELECT extname FROM pg_extension WHERE extname = 'vector'") == "vector"
    assert pg.value("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector") == "2"


def test_passwords_are_scram_and_required(server: tuple[str, Server]) -> None:
    _, pg = server
    assert pg.value("SHOW password_encryption") == "scram-sha-256"
    assert pg.value(f"SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = '{pg.user}'") == "t"
    wrong = pg.psql(pg.database, "SELECT 1", password="wrong-password", check=False)
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    assert pg.value("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method NOT IN ('scram-sha-256', 'reject')") == "0"


def test_each_profile_is_the_one_the_stack_chose(server: tuple[str, Server]) -> None:
    stack, pg = server
    expected = {"dev": ("128MB", "0", "0"), "prod": ("256MB", "2", "4")}[stack]
    assert (pg.value("SHOW shared_buffers"), pg.value("SHOW max_parallel_workers_per_gather"), pg.value("SHOW max_parallel_workers")) == expected


def test_the_app_login_has_least_privilege_and_follows_its_password(
    server: tuple[str, Server], runs: ProgramRuns, tmp_path: Path
) -> None:
    """configs/postgres/app-role.sh, as the PostgreSQL service runs it at every start."""
    stack, pg = server
    run = runs(stack)
    postgres = run.service(f"{stack}_postgres")
    script = tmp_path / "app-role.sh"
    script.write_text(run.mounted_config(postgres, "/etc/postgresql/app-role.sh"))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, value in (("postgres_user", pg.user), ("postgres_password", pg.password), ("postgres_db", pg.database),
                        ("app_password", run.mounted_secret(postgres, "app_password"))):
        (secrets / name).write_text(value)
    env = {**os.environ, "SECRETS_DIR": str(secrets), "PGPORT": str(pg.port), "PATH": f"{pg.bin}:{os.environ['PATH']}"}

    def app(sql: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
        return pg.run("psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "app", "-d", pg.database, "-v", "ON_ERROR_STOP=1",
                      "-tA", "-c", sql, env={"PGPASSWORD": password or (secrets / "app_password").read_text()}, check=False)

    pg.psql(pg.database, "CREATE TABLE before_app (id int); INSERT INTO before_app VALUES (1)")
    made = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0 and "is ready" in made.stdout, made.stderr
    assert app("SELECT id FROM before_app").stdout.strip() == "1", "tables made before it"
    assert app("CREATE TABLE by_app (v vector(3)); INSERT INTO by_app VALUES ('[1,2,3]')").returncode == 0, "migrations"
    pg.psql(pg.database, "CREATE TABLE after_app (id serial); INSERT INTO after_app DEFAULT VALUES")
    assert app("INSERT INTO after_app DEFAULT VALUES").returncode == 0, "and those made after, sequences included"
    assert app("SELECT count(*) FROM after_app").stdout.strip() == "2"
    assert app("SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication FROM pg_roles WHERE rolname = 'app'").stdout.strip() == "f"
    for refused in ("CREATE ROLE intruder", "CREATE DATABASE other", "ALTER SYSTEM SET work_mem = '1GB'", "COPY before_app TO PROGRAM 'id'"):
        assert app(refused).returncode != 0, refused

    old = (secrets / "app_password").read_text()
    (secrets / "app_password").write_text("rotated-app-password-0123456789")
    again = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert app("SELECT 1").returncode == 0 and app("SELECT 1", password=old).returncode != 0, "a rotated password takes over"
