"""Backups and the documented restore, end to end: the scripts the backup service mounts, run with
its environment and secrets against a real PostgreSQL, an S3 server (moto) and the aws CLI."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ProgramRuns
from tests.harness import MOCK_PLATFORM_S3_SECRET_KEY, ProgramRun, environment, mock_env_s3_keys
from tests.postgres import BIN, Server

BACKUP = "dev_postgres-backup"



class Backups:
    """The backup service's scripts, environment and secrets, pointed at local servers."""

    def __init__(self, run: ProgramRun, pg: Server, s3_url: str, base: Path) -> None:
        service = run.service(BACKUP)
        container = service.inputs["taskSpec"]["containerSpec"]
        self.secrets = base / "secrets"
        self.secrets.mkdir()
        for mount in container["secrets"]:
            (self.secrets / mount["fileName"]).write_text(run.mounted_secret(service, mount["fileName"]))
        scripts = [c["fileName"] for c in container["configs"] if c["fileName"].startswith("/etc/backup/")]
        assert {Path(s).name for s in scripts} == {
            "env.sh", "crypt.sh", "backup.sh", "restore.sh", "verify.sh", "wal-ship.sh", "base-backup.sh", "pitr-restore.sh"}
        for script in scripts:
            (base / Path(script).name).write_text(run.mounted_config(service, script))
        self.base, self.s3_url = base, s3_url
        self.env = {
            **os.environ,
            **environment(container),
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(pg.port),
            "S3_ENDPOINT": s3_url,
            "SECRETS_DIR": str(self.secrets),
            "PATH": f"{BIN}:{os.environ['PATH']}",
        }
        self.bucket, self.prefix = environment(container)["S3_BUCKET"], environment(container)["S3_PREFIX"]

    def script(self, name: str, *args: str, now: int | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, **({"BACKUP_NOW": str(now)} if now else {}))
        return subprocess.run(["sh", str(self.base / f"{name}.sh"), *args], env=env, capture_output=True, text=True, timeout=120)

    def aws(self, *args: str) -> str:
        env = dict(self.env, AWS_ACCESS_KEY_ID=(self.secrets / "backup_s3_access_key").read_text(),
                   AWS_SECRET_ACCESS_KEY=(self.secrets / "backup_s3_secret_key").read_text(), AWS_DEFAULT_REGION="us-east-1")
        return subprocess.run(["aws", "--endpoint-url", self.s3_url, *args], env=env, capture_output=True, text=True, check=True).stdout

    def objects(self) -> list[str]:
        listing = self.aws("s3", "ls", f"s3://{self.bucket}/{self.prefix}/")
        return sorted(line.split()[-1] for line in listing.splitlines())

    def dumps(self) -> list[str]:
        """The dumps, without the row counts recorded beside each."""
        return [o for o in self.objects() if ".dump" in o]


@pytest.fixture
def setup(s3: str, runs: ProgramRuns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Backups]]:
    run = runs("dev")
    pg = Server(tmp_path_factory.mktemp("pg-backup"), run, "dev")
    pg.start()
    backups = Backups(run, pg, s3, tmp_path_factory.mktemp("backup"))
    backups.prefix = backups.env["S3_PREFIX"] = f"dev-{uuid.uuid4().hex[:8]}"  # tests share the S3 server
    try:
        yield pg, backups
    finally:
        pg.stop()


def test_backup_service_is_scheduled_with_retention(runs: ProgramRuns) -> None:
    run = runs("dev")
    container = run.service(BACKUP).inputs["taskSpec"]["containerSpec"]
    env = environment(container)
    assert env["SCHEDULE"] == "0 3 * * *" and env["BACKUP_KEEP_DAYS"] == "14"
    assert env["S3_ENDPOINT"] == "http://object-storage:8333" and env["S3_PREFIX"] == "dev"
    assert "backup-cron" in container["commands"][-1] and "/etc/backup/backup.sh" in container["commands"][-1]
    # to the platform's object storage, into the environment's own bucket, with the keys of the identity
    # the platform made for it alone (read through the StackReference), never the administrator's
    assert env["S3_BUCKET"] == "dev-backups"
    assert run.mounted_secret(run.service(BACKUP), "backup_s3_secret_key") == mock_env_s3_keys("dev")[1]
    prod = runs("prod")
    assert prod.mounted_secret(prod.service("prod_postgres-backup"), "backup_s3_access_key") == mock_env_s3_keys("prod")[0]
    assert MOCK_PLATFORM_S3_SECRET_KEY not in {prod.mounted_secret(prod.service("prod_postgres-backup"), "backup_s3_secret_key")}


def test_each_environment_s_identity_reaches_only_its_own_bucket(runs: ProgramRuns) -> None:
    import json

    run = runs("platform")
    identities = json.loads(run.mounted_secret(run.service("shared_seaweedfs"), "s3_identities.json"))["identities"]
    actions = {identity["name"]: identity["actions"] for identity in identities}
    assert actions == {"root": ["Admin", "Read", "List", "Tagging", "Write"], **{env: [f"Admin:{env}-backups"] for env in ("dev", "stg", "prod")}}
    keys = {identity["name"]: identity["credentials"][0]["accessKey"] for identity in identities}
    assert len(set(keys.values())) == 4
    for env in ("dev", "stg", "prod"):
        exported, is_secret = run.outputs[f"s3_{env}_access_key"]
        assert exported == keys[env] and is_secret, "what the environment's stack reads, as a secret"


def test_off_site_backups_use_their_own_endpoint_and_keys(runs: ProgramRuns) -> None:
    secrets = {"backupS3AccessKey": "OFFSITEACCESSKEY0001", "backupS3SecretKey": "off-site-secret-key-0123456789"}
    prod = runs("prod", {"backupS3Endpoint": "https://s3.eu-central-1.amazonaws.com"}, secrets)
    backup = prod.service("prod_postgres-backup")
    assert environment(backup.inputs["taskSpec"]["containerSpec"])["S3_ENDPOINT"] == "https://s3.eu-central-1.amazonaws.com"
    assert prod.mounted_secret(backup, "backup_s3_access_key") == "OFFSITEACCESSKEY0001"


def test_backup_then_restore_brings_the_data_back(setup: tuple[Server, Backups]) -> None:
    pg, backups = setup
    pg.psql(pg.database, "CREATE TABLE items (id int PRIMARY KEY, embedding vector(3)); "
            "INSERT INTO items VALUES (1, '[1,2,3]'), (2, '[4,5,6]')")
    made = backups.script("backup")
    assert made.returncode == 0, made.stderr
    (dump,) = backups.dumps()
    assert dump.startswith(f"{pg.database}-") and dump.endswith(".dump.gpg")
    backups.aws("s3", "cp", f"s3://{backups.bucket}/{backups.prefix}/{dump}", str(backups.base / "stored"))
    stored = (backups.base / "stored").read_bytes()
    assert not stored.startswith(b"PGDMP") and b"embedding" not in stored, "encrypted before it leaves the container"

    pg.psql(pg.database, "DELETE FROM items WHERE id = 1; UPDATE items SET embedding = '[0,0,0]'")
    restored = backups.script("restore")
    assert restored.returncode == 0, restored.stderr
    assert f"restore: {dump} restored into {pg.database}" in restored.stdout
    assert pg.value("SELECT string_agg(id || '=' || embedding::text, ' ' ORDER BY id) FROM items") == "1=[1,2,3] 2=[4,5,6]"


def test_restore_of_a_chosen_dump_and_into_an_emptied_database(setup: tuple[Server, Backups]) -> None:
    pg, backups = setup
    pg.psql(pg.database, "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('first')")
    now = int(time.time())
    assert backups.script("backup", now=now - 3600).returncode == 0
    pg.psql(pg.database, "INSERT INTO notes VALUES ('second')")
    assert backups.script("backup", now=now).returncode == 0
    older, newer = backups.dumps()[-2:]
    pg.psql(pg.database, "DROP TABLE notes")
    assert backups.script("restore", older).returncode == 0
    assert pg.value("SELECT string_agg(body, ',') FROM notes") == "first"
    assert backups.script("restore").returncode == 0, "newest by default"
    assert pg.value("SELECT string_agg(body, ',' ORDER BY body) FROM notes") == "first,second"
    assert newer > older


def test_retention_deletes_old_dumps_but_keeps_recent_ones(setup: tuple[Server, Backups]) -> None:
    pg, backups = setup
    now = int(time.time())
    keep_days = int(backups.env["BACKUP_KEEP_DAYS"])
    assert backups.script("backup", now=now - (keep_days + 5) * 86400).returncode == 0
    (expired,) = backups.dumps()
    yesterday = backups.script("backup", now=now - 86400)
    assert yesterday.returncode == 0, yesterday.stderr
    assert f"deleted {expired}" in yesterday.stdout
    (recent,) = backups.dumps()
    assert backups.script("backup", now=now).returncode == 0
    assert len(backups.dumps()) == 2 and recent in backups.dumps(), "dumps within retention stay"
    assert len(backups.objects()) == 4, "each with its row counts, and the expired one's counts went with it"


def test_restore_without_any_dump_fails_clearly(setup: tuple[Server, Backups]) -> None:
    _, backups = setup
    backups.env["S3_PREFIX"] = "nothing-here"
    result = backups.script("restore")
    assert result.returncode == 1 and "restore: no dump of" in result.stderr


def test_a_dump_restores_only_with_its_stacks_key(setup: tuple[Server, Backups]) -> None:
    pg, backups = setup
    pg.psql(pg.database, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
    assert backups.script("backup").returncode == 0
    key = backups.secrets / "backup_encryption_key"
    right = key.read_text()
    key.write_text("another stack's key, or a new one")
    pg.psql(pg.database, "UPDATE kept SET v = 8")
    refused = backups.script("restore")
    assert refused.returncode == 1 and "cannot decrypt" in refused.stderr and "nothing was restored" in refused.stderr
    assert pg.value("SELECT v FROM kept") == "8", "a refused restore changes nothing"
    key.write_text(right)
    assert backups.script("restore").returncode == 0 and pg.value("SELECT v FROM kept") == "7"


def test_dumps_from_before_encryption_still_restore(setup: tuple[Server, Backups]) -> None:
    pg, backups = setup
    pg.psql(pg.database, "CREATE TABLE old (v int); INSERT INTO old VALUES (1)")
    plain = backups.base / "old.dump"
    subprocess.run([f"{BIN}/pg_dump", "--format=custom", "--no-owner", "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user, "-d", pg.database,
                    "-f", str(plain)], env={**backups.env, "PGPASSWORD": pg.password}, check=True)
    backups.aws("s3", "cp", str(plain), f"s3://{backups.bucket}/{backups.prefix}/{pg.database}-2026-01-01T03-00-00Z.dump")
    pg.psql(pg.database, "DROP TABLE old")
    restored = backups.script("restore", f"{pg.database}-2026-01-01T03-00-00Z.dump")
    assert restored.returncode == 0, restored.stderr
    assert pg.value("SELECT v FROM old") == "1"


def test_the_restore_drill_restores_the_newest_dump_into_a_scratch_database(setup: tuple[Server, Backups]) -> None:
    pg, backups = setup
    pg.psql(pg.database, "CREATE TABLE items (id int, embedding vector(3)); INSERT INTO items VALUES (1, '[1,2,3]'), (2, '[4,5,6]')")
    assert backups.script("backup").returncode == 0
    drill = backups.script("verify")
    assert drill.returncode == 0, drill.stderr
    assert "verify: public.items 2 rows (as dumped)" in drill.stdout and "1 tables, vector present" in drill.stdout
    assert pg.value("SELECT count(*) FROM pg_database WHERE datname LIKE 'verify_%'") == "0", "the scratch database is dropped"
    (backups.secrets / "backup_encryption_key").write_text("not this stack's key")
    assert backups.script("verify").returncode == 1


def test_the_drill_fails_a_dump_that_lacks_rows_the_database_had_when_it_was_dumped(setup: tuple[Server, Backups]) -> None:
    """The counts come from the dump's own snapshot; here the recorded count is made to disagree."""
    pg, backups = setup
    pg.psql(pg.database, "CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 5)")
    done = backups.script("backup")
    assert done.returncode == 0 and "1 tables counted" in done.stdout, done.stderr
    (dump,) = backups.dumps()
    counts = dump.removesuffix(".dump.gpg") + ".counts.gpg"
    assert counts in backups.objects()
    key = (backups.secrets / "backup_encryption_key").read_text()
    (backups.base / "counts").write_text("public.items 6\n")
    subprocess.run(["gpg", "--batch", "--yes", "--quiet", "--homedir", str(backups.base), "--pinentry-mode", "loopback", "--passphrase", key,
                    "--symmetric", "--cipher-algo", "AES256", "--output", str(backups.base / "counts.gpg"), str(backups.base / "counts")], check=True)
    backups.aws("s3", "cp", str(backups.base / "counts.gpg"), f"s3://{backups.bucket}/{backups.prefix}/{counts}")
    drill = backups.script("verify")
    assert drill.returncode == 1 and "with 5 rows, but it had 6 when it was dumped" in drill.stderr


def test_every_scheduled_backup_is_followed_by_a_base_backup_and_its_drill(runs: ProgramRuns) -> None:
    container = runs("dev").service(BACKUP).inputs["taskSpec"]["containerSpec"]
    assert "/etc/backup/backup.sh && /bin/sh /etc/backup/base-backup.sh && /bin/sh /etc/backup/verify.sh" in container["commands"][-1]
    assert container["commands"][-1].startswith("/bin/sh /etc/backup/wal-ship.sh --every 10 & exec backup-cron")
