"""The program on the real engine: the Pulumi CLI and the docker and random provider plugins built by
scripts/engine.sh, through `python -m ops`, onto the tests' real swarm (dockerd with vfs).

dev goes up with every optional part that needs no Cloudflare API (tunnel token, runners, alert
webhook), then stg and prod join its networks. Images cannot be pulled here, so the swarm creates
every object but no task starts; nothing below pretends otherwise.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import cached_run
from tests.dockerd import ensure_swarm, remove_everything
from tests.engine import DEV_CONFIG, DEV_SECRETS, Operator, init_stack, steps
from tests.harness import ROOT

pytestmark = pytest.mark.engine

SERVICE = "docker:index/service:Service"
SECONDS = 1_000_000_000



@pytest.fixture(scope="module")
def deployed(operator: Operator, swarm: Any) -> Iterator[Operator]:
    """All three stacks up, as an operator would bring them up (`ops up`)."""
    ensure_swarm(swarm)
    for stack in ("dev", "stg", "prod"):
        init_stack(operator, stack)
        operator.ops("up", stack)
    volumes = {v.name: v.attrs["CreatedAt"] for v in swarm.volumes.list()}
    try:
        yield operator
        assert {v.name: v.attrs["CreatedAt"] for v in swarm.volumes.list() if v.name in volumes} == volumes, \
            "no data volume was replaced by any test"
    finally:
        remove_everything(swarm)


def _specs(swarm: Any) -> dict[str, dict[str, Any]]:
    return {s.name: s.attrs["Spec"] for s in swarm.services.list()}


def test_the_engine_creates_what_the_program_declares(deployed: Operator, swarm: Any) -> None:
    expected = {
        s.swarm_name
        for run in (cached_run("engine-dev", "dev", DEV_CONFIG, DEV_SECRETS),
                    cached_run("stg", "stg"), cached_run("prod", "prod"))
        for s in run.services
    }
    deployed_specs = _specs(swarm)
    assert set(deployed_specs) == expected

    postgres = deployed_specs["prod_postgres"]
    assert postgres["UpdateConfig"] | {"Delay": 0} == {
        "Parallelism": 1, "Delay": 0, "FailureAction": "rollback", "Monitor": 60 * SECONDS, "MaxFailureRatio": 0,
        "Order": "stop-first",
    }
    container = postgres["TaskTemplate"]["ContainerSpec"]
    assert container["Healthcheck"]["StartPeriod"] == 60 * SECONDS
    assert {s["File"]["Name"] for s in container["Secrets"]} == {"postgres_db", "postgres_user", "postgres_password"}
    shm = next(m for m in container["Mounts"] if m["Target"] == "/dev/shm")
    assert shm["TmpfsOptions"] == {"SizeBytes": 512 * 1024 * 1024, "Mode": 0o777}
    assert postgres["TaskTemplate"]["Resources"]["Limits"] == {"NanoCPUs": SECONDS, "MemoryBytes": 1024 * 1024 * 1024}
    assert postgres["TaskTemplate"]["RestartPolicy"]["MaxAttempts"] == 5
    assert deployed_specs["core_traefik"]["TaskTemplate"]["Placement"]["Constraints"] == ["node.role==manager"]
    assert "Global" in deployed_specs["shared_alloy"]["Mode"]

    # stg and prod joined the monitoring network dev created, by name
    monitoring = swarm.networks.list(names=["monitoring"])[0]
    assert monitoring.attrs["Driver"] == "overlay" and monitoring.attrs["Attachable"]
    for name in ("stg_redis-exporter", "prod_postgres-exporter", "shared_prometheus"):
        assert monitoring.id in {n["Target"] for n in deployed_specs[name]["TaskTemplate"]["Networks"]}

    published = [p["PublishedPort"] for spec in deployed_specs.values() for p in spec.get("EndpointSpec", {}).get("Ports", [])]
    assert sorted(published) == [80, 443, 5432, 5433, 5434, 6379, 6381, 8080]
    assert {v.name for v in swarm.volumes.list()} >= {"dev_postgres_data", "prod_postgres_data", "shared_seaweedfs_data"}
    # Every secret and config a service mounts exists, and none is left over.
    mounted = {r["SecretName"] for spec in deployed_specs.values() for r in spec["TaskTemplate"]["ContainerSpec"].get("Secrets", [])}
    assert mounted == {s.name for s in swarm.secrets.list()}
    configs = {r["ConfigName"] for spec in deployed_specs.values() for r in spec["TaskTemplate"]["ContainerSpec"].get("Configs", [])}
    assert configs == {c.name for c in swarm.configs.list()}


@pytest.mark.parametrize("stack", ["dev", "stg", "prod"])
def test_a_second_preview_changes_nothing(deployed: Operator, stack: str) -> None:
    deployed.ops("preview", stack, "--expect-no-changes")
    deployed.ops("preview", stack, "--refresh", "--expect-no-changes")


def _replaced(kind: str, name: str) -> set[tuple[str, str, str]]:
    return {(op, kind, name) for op in ("create-replacement", "replace", "delete-replaced")}


@pytest.mark.parametrize(
    ("stack", "key", "value", "secret", "expected"),
    [
        # Configs are immutable and named by content: a new one, the service rolled, the old one gone.
        ("dev", "scrapeInterval", "30s", False,
         _replaced("ServiceConfig", "shared-prometheus") | {("update", "Service", "shared-prometheus")}),
        ("dev", "runnerAccessToken", "ghp_rotated0123456789", True,
         _replaced("Secret", "runner-token") | {("update", "Service", "runner-github-runner")}),
        ("dev", "runnerReplicas", "3", False, {("update", "Service", "runner-github-runner")}),
        ("prod", "postgresCpus", "0.50-2.00", False, {("update", "Service", "prod-postgres")}),
    ],
)
def test_one_setting_changes_exactly_its_resources(
    deployed: Operator, stack: str, key: str, value: str, secret: bool, expected: set[tuple[str, str, str]]
) -> None:
    before = deployed.pulumi("config", "get", f"nextcandle:{key}", "-s", stack) if _is_set(deployed, stack, key) else None
    deployed.set_config(stack, key, value, secret)
    try:
        planned = steps(deployed.ops("preview", stack).stdout)
        assert planned == expected, sorted(planned)
    finally:
        if before is None:
            deployed.pulumi("config", "rm", f"nextcandle:{key}", "-s", stack)
        else:
            deployed.set_config(stack, key, before.strip(), secret)
    deployed.ops("preview", stack, "--expect-no-changes")


def _is_set(operator: Operator, stack: str, key: str) -> bool:
    return f"nextcandle:{key}" in operator.pulumi("config", "-s", stack, "--json")


def test_replacing_named_services_completes_and_keeps_their_data(deployed: Operator, swarm: Any) -> None:
    """A service's name, mode and networks force replacement; with fixed names (stg_postgres) the
    old service must go first (delete_before_replace), and the data volume stays."""
    before = {name: swarm.services.get(name).id for name in ("stg_postgres", "stg_redis")}
    volume = swarm.volumes.get("stg_postgres_data").attrs["CreatedAt"]
    urns = [deployed.urn("stg", SERVICE, name) for name in before]
    # `pulumi up --replace` through the Automation API, as `ops up` runs the program.
    script = ("import sys; from ops.backend import Backend; from ops.deploy import select_stack; "
              "select_stack('stg', Backend.resolve()).up(replace=sys.argv[1:], color='never')")
    result = subprocess.run([sys.executable, "-c", script, *urns], cwd=ROOT, env=deployed.env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(swarm.services.get(name).id != old_id for name, old_id in before.items())
    assert swarm.volumes.get("stg_postgres_data").attrs["CreatedAt"] == volume
    deployed.ops("preview", "stg", "--expect-no-changes")


def test_drift_shows_in_a_refreshing_preview_and_up_repairs_it(deployed: Operator, swarm: Any) -> None:
    swarm.services.get("dev_redis").scale(3)
    drift = deployed.ops("preview", "dev", "--refresh", "--expect-no-changes", ok=False)
    assert drift.returncode == 2 and ("update", "Service", "dev-redis") in steps(drift.stdout)
    deployed.ops("up", "dev", "--refresh")
    assert swarm.services.get("dev_redis").attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 1}}
    deployed.ops("preview", "dev", "--refresh", "--expect-no-changes")


def test_destroy_refuses_a_stack_with_protected_data(deployed: Operator, swarm: Any) -> None:
    services = {s.name for s in swarm.services.list() if s.name.startswith("prod_")}
    refused = deployed.ops("destroy", "prod", "--yes", ok=False)
    assert refused.returncode == 2
    assert "prod holds protected data (" in refused.stderr and "prod-postgres-data" in refused.stderr
    assert "nothing was destroyed" in refused.stderr and "pulumi state unprotect" in refused.stderr
    assert {s.name for s in swarm.services.list() if s.name.startswith("prod_")} == services
    deployed.ops("preview", "prod", "--expect-no-changes")
