"""Point-in-time recovery end to end on a real PostgreSQL with real WAL: the program's archive_command
archives into a local WAL directory, and the backup service's scripts (wal-ship.sh, base-backup.sh,
pitr-restore.sh) ship, back up and restore through an S3 server (moto) with the aws CLI."""

from __future__ import annotations

import io
import os
import pwd
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ops.backend import OpsError
from ops.backups import pitr_arguments, recovery_target
from tests.conftest import ProgramRuns
from tests.postgres import RUN_AS, Server
from tests.test_backup_restore import Backups


@pytest.fixture
def archived(s3: str, runs: ProgramRuns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Backups]]:
    run = runs("dev")
    base = tmp_path_factory.mktemp("pitr")
    (base / "pg").mkdir()
    pg = Server(base / "pg", run, "dev", wal_dir=base / "wal")
    pg.start()
    backups = Backups(run, pg, s3, tmp_path_factory.mktemp("pitr-scripts"))
    backups.prefix = backups.env["S3_PREFIX"] = f"dev-{uuid.uuid4().hex[:8]}"
    owner = str(pwd.getpwnam(RUN_AS).pw_uid) if os.geteuid() == 0 else str(os.geteuid())
    backups.env.update(PGDATA=str(pg.data), WAL_DIR=str(base / "wal"), POSTGRES_UID=owner, METRICS_TEXTFILE_DIR=str(base / "metrics"))
    try:
        yield pg, backups
    finally:
        pg.stop()


def listed(backups: Backups, folder: str) -> list[str]:
    """The object names under the environment's prefix/<folder>/ (aws s3 ls fails on an empty one)."""
    try:
        listing = backups.aws("s3", "ls", f"s3://{backups.bucket}/{backups.prefix}/pg{backups.env['PG_MAJOR']}/{folder}/")
    except subprocess.CalledProcessError:
        return []
    return [line.split()[-1] for line in listing.splitlines()]


def rows(pg: Server) -> list[str]:
    return pg.value("SELECT string_agg(note, ',' ORDER BY id) FROM notes").split(",")


def test_a_restore_to_a_noted_time_brings_back_only_what_was_written_before_it(archived: tuple[Server, Backups]) -> None:
    pg, backups = archived
    pg.value("CREATE TABLE notes (id serial PRIMARY KEY, note text); INSERT INTO notes (note) VALUES ('in-base')")
    done = backups.script("base-backup")
    assert done.returncode == 0, done.stderr
    time.sleep(1.2)  # base backups are named by the second they finished
    pg.value("INSERT INTO notes (note) VALUES ('before-1'); INSERT INTO notes (note) VALUES ('before-2')")
    noted = datetime.fromisoformat(pg.value("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00'"))
    time.sleep(1.2)
    pg.value("INSERT INTO notes (note) VALUES ('after'); DELETE FROM notes WHERE note = 'before-1'")
    shipped = backups.script("wal-ship", "--switch")
    assert shipped.returncode == 0, shipped.stderr
    assert not [f for f in (Path(backups.env["WAL_DIR"]) / "archive").iterdir()], "shipped segments stay in the WAL volume"
    assert any(w.endswith(".gpg") and w.startswith("00000001") for w in listed(backups, "wal"))

    pg.stop()
    stamp, target = pitr_arguments(noted)
    restored = backups.script("pitr-restore", stamp, target)
    assert restored.returncode == 0, restored.stderr
    pg.start_existing()
    finished = backups.script("pitr-restore", "--finish")
    assert finished.returncode == 0, finished.stderr + (pg.base / "log").read_text()
    assert rows(pg) == ["in-base", "before-1", "before-2"]
    assert "timeline 2" in finished.stdout
    # The recovery settings are gone from the files (a restart would not recover again), and the
    # restored server archives its new timeline.
    assert pg.value("SELECT count(*) FROM pg_file_settings WHERE name IN ('restore_command', 'recovery_target_time')") == "0"
    assert backups.script("wal-ship", "--switch").returncode == 0
    assert "00000002.history.gpg" in listed(backups, "wal")


def test_a_time_before_every_base_backup_changes_nothing(archived: tuple[Server, Backups]) -> None:
    pg, backups = archived
    pg.value("CREATE TABLE notes (id serial PRIMARY KEY, note text); INSERT INTO notes (note) VALUES ('kept')")
    assert backups.script("base-backup").returncode == 0
    pg.stop()
    refused = backups.script("pitr-restore", "2000-01-01T00-00-00Z", "2000-01-01 00:00:00+00")
    assert refused.returncode == 1 and "no base backup" in refused.stderr and "nothing was changed" in refused.stderr
    pg.start_existing()
    assert rows(pg) == ["kept"]


def test_a_running_server_is_never_replaced(archived: tuple[Server, Backups]) -> None:
    pg, backups = archived
    assert backups.script("base-backup").returncode == 0
    refused = backups.script("pitr-restore", "2999-01-01T00-00-00Z", "2999-01-01 00:00:00+00")
    assert refused.returncode == 1 and "still runs" in refused.stderr


def test_base_backup_retention_deletes_old_base_backups_and_the_wal_only_they_needed(archived: tuple[Server, Backups]) -> None:
    pg, backups = archived
    now = int(time.time())
    assert backups.script("base-backup", now=now - 20 * 86400).returncode == 0
    pg.value("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    assert backups.script("wal-ship", "--switch").returncode == 0
    shipped = listed(backups, "wal")
    kept = backups.script("base-backup", now=now)
    assert kept.returncode == 0, kept.stderr
    bases = listed(backups, "base")
    assert len(bases) == 1 and bases[0].startswith(datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H-%M-%SZ"))
    first_needed = bases[0].split("_")[1].removesuffix(".tar.gpg")
    left = listed(backups, "wal")
    assert left == [w for w in shipped if w.removesuffix(".gpg") >= first_needed] and len(left) < len(shipped)


def test_the_wal_shipper_reports_for_prometheus(archived: tuple[Server, Backups]) -> None:
    _, backups = archived
    assert backups.script("wal-ship").returncode == 0
    metrics = (Path(backups.env["METRICS_TEXTFILE_DIR"]) / "wal.prom").read_text()
    assert "nextcandle_wal_oldest_waiting_timestamp_seconds 0" in metrics
    assert "nextcandle_wal_ship_last_pass_timestamp_seconds " in metrics


@pytest.mark.parametrize(
    ("text", "problem"),
    [("2026-12-01 10:00:00", "no UTC offset"), ("yesterday", "not a time"), ("2027-01-01 00:00:00+00", "not in the past")],
)
def test_a_recovery_target_needs_an_offset_and_the_past(text: str, problem: str) -> None:
    with pytest.raises(OpsError, match=problem):
        recovery_target(text, now=datetime(2026, 12, 2, tzinfo=UTC))
    assert recovery_target("2026-12-01 10:00:00+09", now=datetime(2026, 12, 2, tzinfo=UTC)) == datetime(2026, 12, 1, 1, tzinfo=UTC)


class _Service:
    """A service whose one task keeps running for two polls after it was told to shut down."""

    def __init__(self) -> None:
        self.attrs = {"Spec": {"Mode": {"Replicated": {"Replicas": 1}}}}
        self.polls = 0

    def scale(self, replicas: int) -> None:
        self.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] = replicas

    def tasks(self) -> list[dict]:
        self.polls += 1
        state = "running" if self.polls <= 2 else "shutdown"
        return [{"Status": {"State": state}, "DesiredState": "shutdown"}]


def test_a_stop_waits_until_the_container_has_exited(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore must not touch the data directory while PostgreSQL still shuts down."""
    from types import SimpleNamespace

    from ops import backups

    service = _Service()
    client = SimpleNamespace(services=SimpleNamespace(get=lambda name: service))
    monkeypatch.setattr(backups.time, "sleep", lambda seconds: None)
    assert backups._scale(client, "dev_postgres", 0, io.StringIO()) == 1
    assert service.polls == 3


def test_the_recovery_target_keeps_its_microseconds() -> None:
    """Truncated to the second, a restore to a moment would lose what was committed earlier in that second."""
    moment = datetime(2026, 12, 1, 10, 0, 5, 383307, tzinfo=timezone(timedelta(hours=9)))
    assert pitr_arguments(moment) == ("2026-12-01T01-00-05Z", "2026-12-01 01:00:05.383307+00")
