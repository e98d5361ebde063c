"""The three stacks, as the program declares them, created on one real swarm (see tests/swarm_apply.py):
dev with every optional part (core, shared services, managed tunnel, runners), then stg and prod
joining its networks by name."""

from __future__ import annotations

from typing import Any

from tests.conftest import cached_run
from tests.harness import ProgramRun
from tests.swarm_apply import SwarmApplier, nanoseconds


def _runs(full_run: ProgramRun) -> list[ProgramRun]:
    return [full_run, cached_run("stg", "stg"), cached_run("prod", "prod")]


def _cleanup(client: Any) -> None:
    for service in client.services.list():
        service.remove()
    for kind in (client.secrets, client.configs):
        for item in kind.list():
            item.remove()
    for network in client.networks.list():
        if network.attrs.get("Scope") == "swarm" and network.name != "ingress":
            network.remove()
    client.volumes.prune()


def test_nanoseconds() -> None:
    assert nanoseconds("1m30s") == 90_000_000_000 and nanoseconds("500ms") == 500_000_000


def test_all_stacks_deploy_onto_one_real_swarm(swarm: Any, full_run: ProgramRun) -> None:
    if swarm.info()["Swarm"]["LocalNodeState"] != "active":
        swarm.swarm.init(advertise_addr="127.0.0.1")
    applier = SwarmApplier(swarm)
    try:
        for run in _runs(full_run):
            applier.apply(run)
        deployed = {s.name: s.attrs["Spec"] for s in swarm.services.list()}
        expected = {s.swarm_name for run in _runs(full_run) for s in run.services}
        assert set(deployed) == expected

        postgres = deployed["prod_postgres"]
        assert postgres["UpdateConfig"]["Order"] == "stop-first" and postgres["UpdateConfig"]["FailureAction"] == "rollback"
        container = postgres["TaskTemplate"]["ContainerSpec"]
        assert {s["File"]["Name"] for s in container["Secrets"]} == {"postgres_db", "postgres_user", "postgres_password"}
        assert {m["Target"] for m in container["Mounts"]} == {"/var/lib/postgresql/data", "/dev/shm"}
        assert postgres["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"] == 1_000_000_000
        assert deployed["core_traefik"]["TaskTemplate"]["Placement"]["Constraints"] == ["node.role==manager"]
        assert "Global" in deployed["shared_alloy"]["Mode"]

        # stg and prod joined the networks dev created, by name
        monitoring = swarm.networks.list(names=["monitoring"])[0].id
        for name in ("stg_redis-exporter", "prod_postgres-exporter", "shared_prometheus"):
            assert monitoring in {n["Target"] for n in deployed[name]["TaskTemplate"]["Networks"]}

        # The engine accepted every published port: no clash between stacks on one swarm
        published = [p["PublishedPort"] for spec in deployed.values() for p in spec.get("EndpointSpec", {}).get("Ports", [])]
        assert sorted(published) == [80, 443, 5432, 5433, 5434, 6379, 6381, 8080]
        assert len(swarm.secrets.list()) >= 20 and len(swarm.configs.list()) >= 20
        assert {v.name for v in swarm.volumes.list()} >= {"dev_postgres_data", "prod_postgres_data", "shared_seaweedfs_data"}
    finally:
        _cleanup(swarm)


def test_the_engine_refuses_what_is_wrong(swarm: Any) -> None:
    """The check above can fail: the engine rejects a clashing port and an invalid policy."""
    import copy

    import docker.errors
    import pytest

    if swarm.info()["Swarm"]["LocalNodeState"] != "active":
        swarm.swarm.init(advertise_addr="127.0.0.1")
    applier = SwarmApplier(swarm)
    run = cached_run("stg", "stg")
    redis = copy.deepcopy(run.service("stg_redis").inputs)
    redis["taskSpec"]["containerSpec"].pop("secrets")
    redis["taskSpec"].pop("networksAdvanceds")
    try:
        first = dict(redis, name="probe_one", endpointSpec={"mode": "vip", "ports": [
            {"protocol": "tcp", "targetPort": 6379, "publishedPort": 16379, "publishMode": "ingress"}]})
        applier._post("/services/create", applier.service_spec(first))
        with pytest.raises(docker.errors.APIError, match="already in use"):
            applier._post("/services/create", applier.service_spec(dict(first, name="probe_two")))
        invalid = copy.deepcopy(dict(redis, name="probe_three"))
        invalid["taskSpec"]["restartPolicy"]["condition"] = "sometimes"
        with pytest.raises(docker.errors.APIError):
            applier._post("/services/create", applier.service_spec(invalid))
    finally:
        _cleanup(swarm)
