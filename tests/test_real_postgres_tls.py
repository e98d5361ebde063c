"""PostgreSQL's TLS and client networks, checked by a real PostgreSQL built with OpenSSL (Debian's 15):
our postgresql.conf, pg_hba.conf and the self-signed certificate the program derives. A client in
databaseClientNetworks gets in over TLS only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import run_program
from tests.postgres import DEBIAN_BIN, Server

pytestmark = pytest.mark.tools


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    if not (DEBIAN_BIN / "postgres").exists():
        pytest.fail("Debian's postgresql-15 is not installed; scripts/run-tests.sh installs it")
    # The published port admits the loopback network here, so this client must use TLS.
    run = run_program("dev", {"databaseClientNetworks": "127.0.0.1/32"})
    pg = Server(tmp_path, run, "dev", bin_dir=DEBIAN_BIN)
    pg.init_sql = "SELECT 1"  # Debian's build has no pgvector (test_real_postgres.py checks the extension)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def test_a_client_network_gets_in_over_tls_only(server: Server) -> None:
    assert server.psql(server.database, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", sslmode="require").stdout.strip() == "t"
    refused = server.psql(server.database, "SELECT 1", sslmode="disable", check=False)
    assert refused.returncode != 0 and "no encryption" in refused.stderr, refused.stderr


def test_the_certificate_is_the_programs_and_stable(server: Server) -> None:
    assert server.psql("postgres", "SHOW ssl", sslmode="require").stdout.strip() == "on"
    first, second = run_program("dev"), run_program("dev")
    postgres = first.service("dev_postgres")
    assert first.mounted_secret(postgres, "postgres_tls_cert") == second.mounted_secret(second.service("dev_postgres"), "postgres_tls_cert")
    assert "BEGIN CERTIFICATE" in first.mounted_secret(postgres, "postgres_tls_cert")
    key = next(s for s in postgres.inputs["taskSpec"]["containerSpec"]["secrets"] if s["fileName"] == "postgres_tls_key")
    assert (key["fileUid"], key["fileMode"]) == ("999", 0o400), "PostgreSQL reads a key only its own user can read"
