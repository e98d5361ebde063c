"""The platform's backups end to end: Grafana's and n8n's databases and the object store's buckets.

The scripts shared_backup mounts run with its environment and secrets against real SQLite databases,
real S3 APIs (moto: one for the object store, one off-site) and the aws CLI, as in the container."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from names import GRAFANA, N8N, PLATFORM_BACKUP
from tests.conftest import ProgramRuns
from tests.harness import ProgramRun, environment

OFF_SITE = {"backupS3Endpoint": "https://s3.eu-central-1.amazonaws.com"}
OFF_SITE_KEYS = {"backupS3AccessKey": "OFFSITEACCESSKEY0001", "backupS3SecretKey": "off-site-secret-key-0123456789"}


def container(run: ProgramRun) -> dict:
    spec: dict = run.service(PLATFORM_BACKUP).inputs["taskSpec"]["containerSpec"]
    return spec


class PlatformBackups:
    """shared_backup's scripts, environment and secrets, pointed at local files and S3 servers."""

    def __init__(self, run: ProgramRun, base: Path, target_url: str, storage_url: str | None) -> None:
        service, spec = run.service(PLATFORM_BACKUP), container(run)
        self.secrets = base / "secrets"
        self.secrets.mkdir()
        for mount in spec["secrets"]:
            (self.secrets / mount["fileName"]).write_text(run.mounted_secret(service, mount["fileName"]))
        for mount in spec["configs"]:
            (base / Path(mount["fileName"]).name).write_text(run.mounted_config(service, mount["fileName"]))
        self.base, self.target_url, self.storage_url = base, target_url, storage_url
        self.grafana_db, self.n8n_db = base / "grafana.db", base / "database.sqlite"
        self.env = {
            **os.environ,
            **environment(spec),
            "S3_ENDPOINT": target_url,
            "S3_PREFIX": f"platform-{uuid.uuid4().hex[:8]}",  # tests share the S3 servers
            "GRAFANA_DB": str(self.grafana_db),
            "N8N_DB": str(self.n8n_db),
            "SECRETS_DIR": str(self.secrets),
        }
        if storage_url:
            assert environment(spec)["STORAGE_ENDPOINT"] == "http://object-storage:8333"
            self.env["STORAGE_ENDPOINT"] = storage_url
        self.copies = base / "object-copies"
        self.env["OBJECT_COPIES"] = str(self.copies)
        self.bucket, self.prefix = self.env["S3_BUCKET"], self.env["S3_PREFIX"]

    def script(self, name: str, *args: str, now: int | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, **({"BACKUP_NOW": str(now)} if now else {}))
        return subprocess.run(["sh", str(self.base / f"platform-{name}.sh"), *args], env=env, capture_output=True, text=True, timeout=180)

    def aws(self, url: str, *args: str, keys: str = "backup") -> str:
        env = dict(self.env, AWS_ACCESS_KEY_ID=(self.secrets / f"{keys}_s3_access_key").read_text(),
                   AWS_SECRET_ACCESS_KEY=(self.secrets / f"{keys}_s3_secret_key").read_text(), AWS_DEFAULT_REGION="us-east-1")
        return subprocess.run(["aws", "--endpoint-url", url, *args], env=env, capture_output=True, text=True, check=True).stdout

    def archives(self, kind: str) -> list[str]:
        listing = self.aws(self.target_url, "s3", "ls", f"s3://{self.bucket}/{self.prefix}/{kind}/")
        return sorted(line.split()[-1] for line in listing.splitlines())


def sqlite(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        rows = db.execute(sql).fetchall() if sql.lstrip().upper().startswith("SELECT") else (db.executescript(sql), [])[1]
    db.close()
    return rows


@pytest.fixture
def local(runs: ProgramRuns, s3: str, tmp_path: Path) -> PlatformBackups:
    """Backups to the platform's own object store (no off-site target): buckets get a second copy in a volume."""
    return PlatformBackups(runs("platform"), tmp_path, s3, s3)


@pytest.fixture
def off_site(runs: ProgramRuns, s3: str, off_site_s3: str, tmp_path: Path) -> PlatformBackups:
    return PlatformBackups(runs("platform", OFF_SITE, OFF_SITE_KEYS), tmp_path, off_site_s3, s3)


def test_the_backup_service_mounts_what_it_backs_up_and_runs_where_it_is(runs: ProgramRuns) -> None:
    run = runs("platform")
    backup, grafana, n8n = run.service(PLATFORM_BACKUP), run.service(GRAFANA), run.service(N8N)
    spec = container(run)
    volumes = {m["target"]: m["source"] for m in spec["mounts"]}
    assert volumes == {"/data/grafana": "shared_grafana_data", "/data/n8n": "shared_n8n_data", "/data/object-copies": "shared_object_copies"}
    assert {m["source"] for m in grafana.inputs["taskSpec"]["containerSpec"]["mounts"]} >= {"shared_grafana_data"}
    assert {m["source"] for m in n8n.inputs["taskSpec"]["containerSpec"]["mounts"]} >= {"shared_n8n_data"}
    placed = runs("platform", {"statefulPlacement": "node.labels.nextcandle.data==true"})
    placements = [placed.service(name).inputs["taskSpec"]["placement"]["constraints"] for name in (PLATFORM_BACKUP, GRAFANA, N8N)]
    assert placements[0] == placements[1] == placements[2] == ["node.labels.nextcandle.data==true"], "local volumes: one node"
    assert environment(spec)["S3_ENDPOINT"] == environment(spec)["STORAGE_ENDPOINT"] == "http://object-storage:8333"
    identities = run.mounted_secret(run.service("shared_seaweedfs"), "s3_identities.json")
    assert run.mounted_secret(backup, "backup_s3_secret_key") in identities, "the object store's own keys"
    assert run.mounted_secret(backup, "n8n_encryption_key") == run.mounted_secret(n8n, "n8n_encryption_key")
    assert "backup-cron" in spec["commands"][-1] and environment(spec)["SCHEDULE"] == "0 3 * * *"
    assert not any(s.swarm_name == PLATFORM_BACKUP for s in runs("platform", {"backupEnabled": "false"}).services)


def test_off_site_target_takes_its_endpoint_and_keys_and_reads_the_object_store(runs: ProgramRuns) -> None:
    run = runs("platform", OFF_SITE, OFF_SITE_KEYS)
    backup, spec = run.service(PLATFORM_BACKUP), container(run)
    assert environment(spec)["S3_ENDPOINT"] == OFF_SITE["backupS3Endpoint"]
    assert run.mounted_secret(backup, "backup_s3_access_key") == OFF_SITE_KEYS["backupS3AccessKey"]
    assert run.mounted_secret(backup, "storage_s3_access_key") != OFF_SITE_KEYS["backupS3AccessKey"]


def test_grafana_backup_then_restore_brings_dashboards_and_users_back(local: PlatformBackups) -> None:
    sqlite(local.grafana_db, "CREATE TABLE dashboard (id INTEGER PRIMARY KEY, title TEXT); "
           "INSERT INTO dashboard (title) VALUES ('Overview'), ('Databases'); CREATE TABLE user (login TEXT)")
    made = local.script("backup", "grafana")
    assert made.returncode == 0, made.stderr
    (archive,) = local.archives("grafana")
    assert archive.startswith("grafana-") and archive.endswith(".db.gz.gpg")

    sqlite(local.grafana_db, "DELETE FROM dashboard WHERE title = 'Overview'; INSERT INTO user VALUES ('mallory')")
    restored = local.script("restore", "grafana")
    assert restored.returncode == 0, restored.stderr
    assert f"restore: {archive} restored" in restored.stdout
    assert sqlite(local.grafana_db, "SELECT title FROM dashboard ORDER BY id") == [("Overview",), ("Databases",)]
    assert sqlite(local.grafana_db, "SELECT login FROM user") == []


def test_a_snapshot_taken_while_the_database_is_written_is_consistent(local: PlatformBackups) -> None:
    sqlite(local.grafana_db, "PRAGMA journal_mode=WAL; CREATE TABLE annotation (id INTEGER PRIMARY KEY, text TEXT)")
    writer = sqlite3.connect(local.grafana_db)
    writer.execute("BEGIN")
    writer.execute("INSERT INTO annotation (text) VALUES ('uncommitted')")
    try:
        made = local.script("backup", "grafana")  # a writer holds a transaction open: the snapshot waits for no one
        assert made.returncode == 0, made.stderr
    finally:
        writer.rollback()
        writer.close()
    sqlite(local.grafana_db, "INSERT INTO annotation (text) VALUES ('later')")
    assert local.script("restore", "grafana").returncode == 0
    assert sqlite(local.grafana_db, "SELECT count(*) FROM annotation") == [(0,)], "only what was committed at the snapshot"


def test_n8n_archive_holds_workflows_credentials_and_their_key(local: PlatformBackups, tmp_path: Path) -> None:
    sqlite(local.n8n_db, "CREATE TABLE workflow_entity (id TEXT, name TEXT); CREATE TABLE credentials_entity (id TEXT, data TEXT); "
           "INSERT INTO workflow_entity VALUES ('w1', 'Nightly report'); INSERT INTO credentials_entity VALUES ('c1', 'U2FsdGVkX1+encrypted')")
    made = local.script("backup", "n8n")
    assert made.returncode == 0, made.stderr
    (archive,) = local.archives("n8n")
    # The archive holds n8n's key: encrypted with the stack's backup key before it leaves the container.
    local.aws(local.target_url, "s3", "cp", f"s3://{local.bucket}/{local.prefix}/n8n/{archive}", str(tmp_path / "n8n.tar.gz.gpg"))
    assert archive.endswith(".tar.gz.gpg") and not tarfile.is_tarfile(tmp_path / "n8n.tar.gz.gpg")
    subprocess.run(["gpg", "--homedir", str(tmp_path), "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase-file",
                    str(local.secrets / "backup_encryption_key"), "--decrypt", "--output", str(tmp_path / "n8n.tar.gz"),
                    str(tmp_path / "n8n.tar.gz.gpg")], check=True)
    with tarfile.open(tmp_path / "n8n.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["database.sqlite", "encryption_key"]
        key = tar.extractfile("encryption_key")
        assert key is not None and key.read().decode() == (local.secrets / "n8n_encryption_key").read_text()

    sqlite(local.n8n_db, "DELETE FROM workflow_entity; DELETE FROM credentials_entity")
    restored = local.script("restore", "n8n")
    assert restored.returncode == 0, restored.stderr
    assert sqlite(local.n8n_db, "SELECT name FROM workflow_entity") == [("Nightly report",)]
    assert sqlite(local.n8n_db, "SELECT data FROM credentials_entity") == [("U2FsdGVkX1+encrypted",)]


def test_n8n_restore_refuses_an_archive_made_with_another_key(local: PlatformBackups) -> None:
    sqlite(local.n8n_db, "CREATE TABLE workflow_entity (id TEXT, name TEXT); INSERT INTO workflow_entity VALUES ('w1', 'old')")
    assert local.script("backup", "n8n").returncode == 0
    sqlite(local.n8n_db, "UPDATE workflow_entity SET name = 'current'")
    (local.secrets / "n8n_encryption_key").write_text("a-different-key-after-a-rebuild")
    refused = local.script("restore", "n8n")
    assert refused.returncode == 1 and "another n8n encryption key" in refused.stderr
    assert sqlite(local.n8n_db, "SELECT name FROM workflow_entity") == [("current",)], "nothing restored"


def test_retention_and_a_chosen_archive(local: PlatformBackups) -> None:
    sqlite(local.grafana_db, "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('old')")
    now = int(time.time())
    keep = int(local.env["BACKUP_KEEP_DAYS"])
    assert local.script("backup", "grafana", now=now - (keep + 2) * 86400).returncode == 0
    (expired,) = local.archives("grafana")
    sqlite(local.grafana_db, "UPDATE t SET v = 'recent'")
    recent = local.script("backup", "grafana", now=now - 86400)
    assert f"deleted {expired}" in recent.stdout
    assert local.script("backup", "grafana", now=now).returncode == 0
    older, newest = local.archives("grafana")
    sqlite(local.grafana_db, "UPDATE t SET v = 'changed'")
    assert local.script("restore", "grafana", older).returncode == 0
    assert sqlite(local.grafana_db, "SELECT v FROM t") == [("recent",)]
    assert newest > older


def test_buckets_are_copied_off_site_and_restored(off_site: PlatformBackups) -> None:
    bucket = f"uploads-{uuid.uuid4().hex[:6]}"
    files = off_site.base / "files"
    files.mkdir()
    (files / "a.txt").write_text("alpha")
    (files / "b.txt").write_text("beta")
    off_site.aws(off_site.storage_url or "", "s3", "mb", f"s3://{bucket}", keys="storage")
    off_site.aws(off_site.storage_url or "", "s3", "cp", "--recursive", str(files), f"s3://{bucket}/docs/", keys="storage")
    sqlite(off_site.grafana_db, "CREATE TABLE t (v TEXT)")
    sqlite(off_site.n8n_db, "CREATE TABLE t (v TEXT)")

    now = int(time.time())
    made = off_site.script("backup", now=now)  # all three kinds, as backup-cron runs it
    assert made.returncode == 0, made.stderr
    assert bucket in made.stdout and "copied off-site" in made.stdout
    [archive] = off_site.archives("objects")
    assert archive.startswith("objects-") and archive.endswith(".tar.gz.gpg"), archive
    stored = off_site.base / "stored"
    off_site.aws(off_site.target_url, "s3", "cp", f"s3://{off_site.bucket}/{off_site.prefix}/objects/{archive}", str(stored))
    assert not stored.read_bytes().startswith(b"\x1f\x8b"), "encrypted, not a plain gzip"
    assert off_site.archives("grafana") and off_site.archives("n8n"), "Grafana and n8n go off-site too"

    off_site.aws(off_site.storage_url or "", "s3", "rm", f"s3://{bucket}/docs/a.txt", keys="storage")
    off_site.aws(off_site.storage_url or "", "s3", "rm", f"s3://{bucket}/docs/b.txt", keys="storage")
    assert off_site.script("backup", "objects", now=now + 60).returncode == 0
    restored = off_site.script("restore", "objects", archive)
    assert restored.returncode == 0, restored.stderr
    back = off_site.aws(off_site.storage_url or "", "s3", "cp", f"s3://{bucket}/docs/a.txt", "-", keys="storage")
    assert back == "alpha", "an object deleted at the source comes back from the archive made before"

    (off_site.secrets / "backup_encryption_key").write_text("not-the-key")
    refused = off_site.script("restore", "objects", bucket)
    assert refused.returncode == 1 and "cannot decrypt" in refused.stderr, "a wrong key is refused, clearly"


def test_without_an_off_site_target_buckets_get_a_second_copy_in_their_own_volume(local: PlatformBackups) -> None:
    bucket = f"uploads-{uuid.uuid4().hex[:6]}"
    local.aws(local.target_url, "s3", "mb", f"s3://{bucket}", keys="storage")
    (local.base / "a.txt").write_text("alpha")
    local.aws(local.target_url, "s3", "cp", str(local.base / "a.txt"), f"s3://{bucket}/docs/a.txt", keys="storage")
    made = local.script("backup", "objects")
    assert made.returncode == 0 and f"bucket {bucket} copied to {local.copies}/{bucket}" in made.stdout, made.stderr
    assert (local.copies / bucket / "docs" / "a.txt").read_text() == "alpha"
    local.aws(local.target_url, "s3", "rm", f"s3://{bucket}/docs/a.txt", keys="storage")
    restored = local.script("restore", "objects", bucket)
    assert restored.returncode == 0, restored.stderr
    assert local.aws(local.target_url, "s3", "cp", f"s3://{bucket}/docs/a.txt", "-", keys="storage") == "alpha"
    assert local.script("restore", "grafana").returncode == 1, "nothing to restore yet"


def test_a_sealed_state_is_stored_as_it_is_kept_for_its_days_and_fetched_back(local: PlatformBackups, tmp_path: Path) -> None:
    """`ops backup state` seals the Pulumi state itself (ops/state_backup.py); the script only stores and fetches."""
    now = int(time.time())
    keep = int(local.env["BACKUP_KEEP_DAYS"])
    for age_days, content in ((keep + 2, b"expired"), (0, b"sealed-state")):
        (tmp_path / "state.sealed").write_bytes(content)
        assert local.script("backup", "state", str(tmp_path / "state.sealed"), now=now - age_days * 86400).returncode == 0
    (newest,) = local.archives("state")
    assert newest.startswith("state-") and newest.endswith(".tar.gz.sealed")
    fetched = subprocess.run(["sh", str(local.base / "platform-restore.sh"), "state"], env=dict(local.env, STATE_FILE=str(tmp_path / "out")),
                             capture_output=True, text=True, timeout=120)
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "out").read_bytes() == b"sealed-state"
