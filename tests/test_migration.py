"""An existing deployment of the old layout (the dev stack owned the platform; stg and prod held backup
keys copied by hand) moves to the platform stack on the real engine and swarm, with no volume,
secret or stateful service re-created.

The old layout is the program as it was at OLD_LAYOUT, taken from this repository's history."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.dockerd import ensure_swarm, remove_everything, volume_identities
from tests.engine import Operator, assert_settled, copy_without_encryption_state, init_platform, make_operator, steps
from tests.harness import ROOT

OLD_LAYOUT = "b10eea1d93a04501728ec450a0d15a6471c88da0"
"""The last commit of the three-stack layout."""
DATA_TYPES = {"Volume", "Secret", "RandomPassword", "RandomString"}
REPLACING = {"replace", "create-replacement", "delete-replaced", "delete"}
DATABASES = ("dev_postgres", "dev_redis", "stg_postgres", "stg_redis")


BEFORE_STACK_SCOPE = "7e6cf39923600a0d05d5dcbbbb8584ec8fe2cc77"
"""The last commit before components made their resources through StackScope (components/swarm.py)."""


def checkout(commit: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The program as it was at `commit`, from this repository's history."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"commit {commit[:7]} is not in this clone's history (shallow clone?)")
    target = tmp_path_factory.mktemp(f"program-{commit[:7]}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


@pytest.fixture(scope="module")
def old_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkout(OLD_LAYOUT, tmp_path_factory)


def _volumes_of(swarm: Any, service: str) -> dict[str, str]:
    """The service's volumes by the path they are mounted at."""
    mounts = swarm.services.get(service).attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Mounts", [])
    return {m["Target"]: m["Source"] for m in mounts if m["Type"] == "volume"}


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
    ensure_swarm(swarm)
    remove_everything(swarm)
    old = make_operator(engine_bin, swarm.docker_host, tmp_path_factory.mktemp("migration"), source=old_checkout)
    old.program = old_checkout
    try:
        _deploy_old_layout(old)
        volumes = volume_identities(swarm)
        secrets = {s.id: s.name for s in swarm.secrets.list()}
        mounts = {name: _volumes_of(swarm, name) for name in DATABASES}

        # The operator pulls this version: the program changes; their stack files (salt, secrets) stay.
        for settings_file in ("Pulumi.yaml", "Pulumi.platform.yaml"):
            copy_without_encryption_state(ROOT / settings_file, old.project / settings_file)
        new = Operator(old.project, old.env)
        moved = new.ops("migrate", "--from", "dev").stdout
        assert "moved 4 platform components" in moved, moved
        assert "stg: backupS3AccessKey removed" in moved, moved
        assert "runners kept on managers with the Docker socket" in moved, "what the old layout did, said"

        # What this version adds (the tunnel and storage networks, Prometheus's login) is created, and
        # services that change networks are replaced; no volume, password or key is replaced or deleted.
        planned = steps(new.ops("preview", "platform").stdout)
        # The object store's identity file is rebuilt from its (kept) keys, with one identity per environment.
        replaced = [step for step in planned if step[1] in DATA_TYPES and step[0] in REPLACING]
        assert all(step[1] == "Secret" and step[2].endswith("s3-identities") for step in replaced), sorted(planned)
        # The new volumes: the runners' build cache, the platform backups' bucket copies and the Docker API
        # proxy's sockets (new parts).
        new_volumes = {step for step in planned if step[1] == "Volume"}
        sockets = {("create", "Volume", f"core-docker-api-{client}") for client in ("traefik", "alloy", "cadvisor")}
        assert new_volumes == {("create", "Volume", "runner-work"), ("create", "Volume", "shared-backup-object-copies"), *sockets}, \
            sorted(planned)
        applied = ""
        for stack in ("platform", "dev", "stg"):
            applied += new.ops("up", stack).stdout
            assert_settled(new, stack, swarm)

        now = volume_identities(swarm)
        # Every volume is the one from before; the new ones belong to parts the old layout did not have.
        assert {name: now.get(name) for name in volumes} == volumes
        assert set(now) - set(volumes) == {
            "runner_work", "shared_object_copies", "dev_postgres_wal", "stg_postgres_wal",
            "core_docker_api_traefik", "core_docker_api_alloy", "core_docker_api_cadvisor",
        }
        # Every secret (passwords, keys) is the one from before, but the object store's identity file,
        # which gained one identity per environment, and the environments' backup keys, now their own.
        gone = {name for secret_id, name in secrets.items() if secret_id not in {s.id for s in swarm.secrets.list()}}
        assert all("s3-identities" in name or "-backup-s3-" in name for name in gone), gone
        # This version drops a container label (labels there force replacement), so each service is
        # replaced once, on the volume it had.
        # (PostgreSQL gains a WAL volume at a path of its own.)
        after = {name: _volumes_of(swarm, name) for name in DATABASES}
        moved = {name: (mounts[name], after[name]) for name in DATABASES if mounts[name].items() - after[name].items()}
        assert not moved, f"a database moved off its volume: {moved}\n{applied}"
        assert "core-traefik" not in new.pulumi("stack", "export", "-s", "dev")
        stg = swarm.services.get("stg_postgres").id
        assert new.ops("destroy", "dev", "--yes").returncode == 0
        assert swarm.services.get("shared_seaweedfs") and swarm.services.get("stg_postgres").id == stg
    finally:
        remove_everything(swarm)


def test_a_deployment_made_before_the_stack_scope_keeps_every_resource(
    engine_bin: Path, swarm: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Since BEFORE_STACK_SCOPE components make services, secrets, configs, networks and volumes
    through one StackScope: no resource name or URN moved. The platform and dev as that program
    deployed them preview with this one deleting nothing (a renamed URN shows as a delete). At the
    refactor itself they previewed with no change at all."""
    ensure_swarm(swarm)
    remove_everything(swarm)
    program = checkout(BEFORE_STACK_SCOPE, tmp_path_factory)
    before = make_operator(engine_bin, swarm.docker_host, tmp_path_factory.mktemp("before-scope"), source=program)
    before.program = program
    try:
        init_platform(before, without=("runnerOnManagers",))  # its runners ran on managers anyway
        before.ops("up", "dev")
        now = Operator(before.project, before.env)
        # dev reads outputs the platform gains with this version: until the platform is up, it says so.
        early = now.ops("preview", "dev", ok=False)
        assert early.returncode != 0 and "run `python -m ops up platform` first" in early.stdout + early.stderr
        for stack in ("platform", "dev"):
            planned = steps(now.ops("preview", stack).stdout)
            # A moved URN is a delete (and a create); a replaced config keeps its URN (content-named, it is
            # replaced whenever a script changes) and a new resource is a create.
            assert not [step for step in planned if step[0] == "delete"], f"{stack}: {sorted(planned)}"
            if stack == "platform":
                now.ops("up", "platform")
    finally:
        remove_everything(swarm)
