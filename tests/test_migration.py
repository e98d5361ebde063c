"""An existing deployment of the old layout (the dev stack owned the platform; stg and prod held backup
keys copied by hand) moves to the platform stack on the real engine and swarm, with no volume,
secret or stateful service re-created.

The old layout is the program as it was at OLD_LAYOUT, taken from this repository's history."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.dockerd import ensure_swarm, remove_everything
from tests.engine import Operator, make_operator, steps
from tests.harness import ROOT

OLD_LAYOUT = "b10eea1d93a04501728ec450a0d15a6471c88da0"
"""The last commit of the three-stack layout."""
DATA_TYPES = {"Volume", "Secret", "RandomPassword", "RandomString"}
STATEFUL = ("dev_postgres", "dev_redis", "stg_postgres", "shared_seaweedfs", "shared_n8n", "shared_grafana")


@pytest.fixture(scope="module")
def old_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_LAYOUT], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"the old layout's commit {OLD_LAYOUT[:7]} is not in this clone's history (shallow clone?)")
    target = tmp_path_factory.mktemp("old-layout")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def _deploy_old_layout(old: Operator) -> None:
    old.pulumi("stack", "init", "dev", "--secrets-provider", "passphrase")
    for key, value in {"ownRunner": "true", "runnerOwner": "nextcandle", "tunnelMode": "token"}.items():
        old.set_config("dev", key, value)
    for key, value in {"runnerAccessToken": "ghp_oldlayout0123456789", "cloudflareTunnelToken": "eyJvbGQiOiJsYXlvdXQifQ"}.items():
        old.set_config("dev", key, value, secret=True)
    old.ops("up", "dev")
    old.pulumi("stack", "init", "stg", "--secrets-provider", "passphrase")
    old.set_config("stg", "backupS3AccessKey", old.output("dev", "s3_access_key"), secret=True)
    old.set_config("stg", "backupS3SecretKey", old.output("dev", "s3_secret_key"), secret=True)
    old.ops("up", "stg")


def test_an_old_deployment_moves_to_the_platform_stack_without_losing_data(
    engine_bin: Path, swarm: Any, old_checkout: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    remove_everything(swarm)
    ensure_swarm(swarm)
    old = make_operator(engine_bin, swarm.docker_host, tmp_path_factory.mktemp("migration"), source=old_checkout)
    old.program = old_checkout
    try:
        _deploy_old_layout(old)
        volumes = {v.name: v.attrs["CreatedAt"] for v in swarm.volumes.list()}
        secrets = {s.id for s in swarm.secrets.list()}
        services = {name: swarm.services.get(name).id for name in STATEFUL}

        # The operator pulls this version: the program changes; their stack files (salt, secrets) stay.
        for settings_file in ("Pulumi.yaml", "Pulumi.platform.yaml"):
            shutil.copy(ROOT / settings_file, old.project)
        new = Operator(old.project, old.env)
        moved = new.ops("migrate", "--from", "dev").stdout
        assert "moved 4 platform components" in moved, moved
        assert "stg: backupS3AccessKey removed" in moved, moved

        planned = steps(new.ops("preview", "platform").stdout)
        assert not [step for step in planned if step[1] in DATA_TYPES], sorted(planned)
        assert not [step for step in planned if step[0] != "update"], sorted(planned)
        for stack in ("platform", "dev", "stg"):
            new.ops("up", stack)
            new.ops("preview", stack, "--expect-no-changes")

        assert {v.name: v.attrs["CreatedAt"] for v in swarm.volumes.list()} == volumes
        assert {s.id for s in swarm.secrets.list()} == secrets
        assert {name: swarm.services.get(name).id for name in STATEFUL} == services
        assert "core-traefik" not in new.pulumi("stack", "export", "-s", "dev")
        assert new.ops("destroy", "dev", "--yes").returncode == 0
        assert swarm.services.get("shared_seaweedfs").id == services["shared_seaweedfs"], "destroy dev leaves the platform"
    finally:
        remove_everything(swarm)
