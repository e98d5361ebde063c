"""PostgreSQL booted with each generated configuration profile (see tests/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator

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
