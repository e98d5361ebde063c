"""`ops upgrade-postgres`: what it refuses before touching anything, and the volumes a stack keeps
while an upgrade is unconfirmed (tests/test_engine.py runs it from 17 to 18 on the test swarm)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ops import upgrade
from ops.backend import Backend, OpsError
from tests.conftest import ProgramRuns
from tests.harness import environment

DUMP_REPORT = (
    "backup: s3://backups/dev/app_x-2026-12-03T01-00-00Z.dump.gpg (2048 bytes, encrypted; 3 tables counted)\n"
    "base-backup: s3://backups/dev/pg17/base/2026-12-03T01-00-01Z_000000010000000000000003.tar.gpg\n"
)


class FakeStack:
    def __init__(self, config: dict[str, str]) -> None:
        self.config = config

    def get_all_config(self) -> dict[str, Any]:
        return {key: SimpleNamespace(value=value) for key, value in self.config.items()}


def test_the_dump_to_restore_is_the_one_the_backup_reported() -> None:
    assert upgrade.dump_object(DUMP_REPORT) == "app_x-2026-12-03T01-00-00Z.dump.gpg"
    with pytest.raises(OpsError, match="did not report its dump"):
        upgrade.dump_object("backup: the counting session ended early")


@pytest.mark.parametrize(("config", "to", "problem"), [
    ({}, 17, "runs PostgreSQL 17; it can move to 18, not 17"),
    ({}, 16, "not 16"),
    ({upgrade.MAJOR_KEY: "18"}, 19, "no newer pinned major"),
    ({upgrade.MAJOR_KEY: "18", upgrade.PREVIOUS_KEY: "17"}, 18, "from PostgreSQL 17 is not confirmed yet"),
])
def test_refused_before_anything_changes(monkeypatch: pytest.MonkeyPatch, config: dict[str, str], to: int, problem: str) -> None:
    monkeypatch.setattr(upgrade, "select_stack", lambda _name, _backend: FakeStack(config))
    with pytest.raises(OpsError, match=problem):
        upgrade.upgrade(None, "dev", to, Backend("file:///nonexistent"))


def test_undo_and_confirm_need_an_upgrade_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upgrade, "select_stack", lambda _name, _backend: FakeStack({}))
    with pytest.raises(OpsError, match="no upgrade to undo"):
        upgrade.undo("dev", Backend("file:///nonexistent"))
    with pytest.raises(OpsError, match="no upgrade to confirm"):
        upgrade.confirm(None, "dev", Backend("file:///nonexistent"))


def test_an_unconfirmed_upgrade_keeps_the_old_volume_unmounted_and_protected(runs: ProgramRuns) -> None:
    run = runs("stg", {"postgresMajorVersion": "18", "postgresPreviousMajorVersion": "17"})
    volumes = {v.inputs["name"]: v for v in run.of_type("docker:index/volume:Volume")}
    assert {"stg_postgres_data", "stg_postgres18_data"} <= set(volumes)
    assert all(volumes[name].protect and volumes[name].retain_on_delete for name in ("stg_postgres_data", "stg_postgres18_data"))
    postgres = run.service("stg_postgres")
    spec = postgres.inputs["taskSpec"]["containerSpec"]
    assert spec["image"].endswith("-pg18-bookworm")
    assert {m["source"] for m in spec["mounts"] if m["type"] == "volume"} == {"stg_postgres18_data", "stg_postgres_wal"}
    backup = run.service("stg_postgres-backup").inputs["taskSpec"]["containerSpec"]
    assert backup["image"].split(":")[1].startswith("18.") and environment(backup)["PG_MAJOR"] == "18"


@pytest.mark.parametrize(("settings", "key"), [
    ({"postgresMajorVersion": "16"}, "postgresMajorVersion"),
    ({"postgresPreviousMajorVersion": "17"}, "postgresPreviousMajorVersion"),
    ({"postgresMajorVersion": "18", "postgresPreviousMajorVersion": "15"}, "postgresPreviousMajorVersion"),
])
def test_majors_without_an_image_or_the_same_twice_are_refused(runs: ProgramRuns, settings: dict[str, str], key: str) -> None:
    with pytest.raises(Exception, match=f"nextcandle:{key}"):
        runs("dev", settings)
