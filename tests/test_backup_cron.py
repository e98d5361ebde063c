"""backup-cron, the backup image's scheduler (images/postgres-backup/scheduler), built and run: what
its metrics say after failed and successful runs, in the format Prometheus reads."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.harness import ROOT
from tests.tiers import require_tool

pytestmark = pytest.mark.tools
go = require_tool("go")
promtool = require_tool("promtool")


@pytest.fixture(scope="module")
def backup_cron(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("backup-cron") / "backup-cron"
    subprocess.run([go(), "build", "-o", str(binary), "."], cwd=ROOT / "images/postgres-backup/scheduler", check=True,
                   env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}, timeout=600)
    return binary


def metrics_after_runs(binary: Path, command: list[str], port: int, textfiles: Path | None = None) -> str:
    """Runs every second (a robfig/cron descriptor; the settings only allow five fields) and scrapes after two."""
    env = {"METRICS_ADDR": f"127.0.0.1:{port}", "PATH": "/usr/bin:/bin", **({"METRICS_TEXTFILE_DIR": str(textfiles)} if textfiles else {})}
    process = subprocess.Popen([str(binary), "@every 1s", *command], env=env)
    try:
        time.sleep(2.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()
    finally:
        process.terminate()
        assert process.wait(10) == 0, "it stops cleanly on SIGTERM"


def value(metrics: str, name: str) -> float:
    (line,) = [line for line in metrics.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


def test_a_failing_backup_shows_as_failed_with_no_success(backup_cron: Path) -> None:
    metrics = metrics_after_runs(backup_cron, ["/bin/sh", "-c", "exit 3"], 19291)
    assert value(metrics, "nextcandle_backup_last_run_success") == 0
    assert value(metrics, "nextcandle_backup_last_success_timestamp_seconds") == 0
    assert value(metrics, "nextcandle_backup_last_run_timestamp_seconds") > value(metrics, "nextcandle_backup_scheduler_start_timestamp_seconds")
    assert 'nextcandle_backup_runs_total{result="failure"} ' in metrics
    checked = subprocess.run([promtool(), "check", "metrics"], input=metrics, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_successful_backup_shows_its_time(backup_cron: Path) -> None:
    before = time.time()
    metrics = metrics_after_runs(backup_cron, ["/bin/true"], 19292)
    assert value(metrics, "nextcandle_backup_last_run_success") == 1
    assert value(metrics, "nextcandle_backup_last_success_timestamp_seconds") >= before


def test_what_other_jobs_write_is_served_beside_the_scheduler_metrics(backup_cron: Path, tmp_path: Path) -> None:
    """The WAL shipper writes wal.prom (configs/backup/wal-ship.sh); a half-written file is never served."""
    (tmp_path / "wal.prom").write_text("# HELP nextcandle_wal_oldest_waiting_timestamp_seconds When.\n# TYPE nextcandle_wal_oldest_waiting_timestamp_seconds gauge\nnextcandle_wal_oldest_waiting_timestamp_seconds 0\n")
    (tmp_path / ".wal.prom").write_text("half-written")
    metrics = metrics_after_runs(backup_cron, ["/bin/true"], 19293, textfiles=tmp_path)
    assert value(metrics, "nextcandle_wal_oldest_waiting_timestamp_seconds") == 0
    assert "half-written" not in metrics
    checked = subprocess.run([promtool(), "check", "metrics"], input=metrics, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
