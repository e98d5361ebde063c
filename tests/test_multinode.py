"""Placement with running tasks on three nodes (tests/cluster.py): one manager, a worker labelled for
data, a plain worker. The platform and dev are deployed by the operator's commands, as on one node."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import Node
from tests.engine import Operator, exec_in, init_platform, make_operator, wait_until_healthy

DATA_LABEL = "nextcandle.data"
PLACEMENT = f"node.labels.{DATA_LABEL}==true"
AGENTS = ("core_docker-api-proxy", "shared_node-exporter", "shared_cadvisor", "shared_alloy")
CI_LABEL = "nextcandle.ci"
ON_MANAGERS = ("core_traefik",)
"""Traefik reads the manager's Swarm API. cloudflared needs no manager: it only dials out and forwards
to Traefik over the overlay. The runners go to the worker labelled for CI, never a manager."""
DATA = ("dev_postgres", "dev_redis", "shared_seaweedfs", "shared_prometheus", "shared_grafana", "shared_n8n")


@pytest.fixture(scope="module")
def spread(cluster: list[Node], engine_bin: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    manager, data, plain = cluster
    for labelled, label in ((data, DATA_LABEL), (plain, CI_LABEL)):
        node = manager.client.nodes.get(labelled.node_id)
        node.update({**node.attrs["Spec"], "Labels": {label: "true"}})
    operator = make_operator(engine_bin, manager.docker_host, tmp_path_factory.mktemp("cluster"))
    init_platform(operator)
    operator.set_config("platform", "runnerOnManagers", "false")  # three nodes: the default placement
    operator.set_config("platform", "statefulPlacement", PLACEMENT)
    operator.pulumi("stack", "init", "dev", "--secrets-provider", "passphrase")
    operator.set_config("dev", "statefulPlacement", PLACEMENT)
    operator.ops("up", "dev")
    yield operator


def _nodes_running(manager: Node, service: str) -> list[str]:
    """The hostnames of the nodes running `service`'s tasks."""
    hostnames = {n.id: n.attrs["Description"]["Hostname"] for n in manager.client.nodes.list()}
    tasks = manager.client.services.get(service).tasks({"desired-state": "running"})
    return sorted(hostnames[t["NodeID"]] for t in tasks if t["Status"]["State"] == "running")


def test_each_service_runs_where_its_placement_says(spread: Operator, cluster: list[Node]) -> None:
    manager, data, plain = cluster
    engines = [n.client for n in cluster]
    assert not wait_until_healthy(manager.client, timeout=600, nodes=engines)
    for agent in AGENTS:
        assert _nodes_running(manager, agent) == sorted(n.name for n in cluster), agent
    for service in ON_MANAGERS:
        assert set(_nodes_running(manager, service)) == {manager.name}, service
    assert set(_nodes_running(manager, "runner_github-runner")) == {plain.name}, "CI jobs on the CI worker only"
    replicas = manager.client.services.get("core_cloudflared").attrs["Spec"]["Mode"]["Replicated"]["Replicas"]
    assert len(_nodes_running(manager, "core_cloudflared")) == replicas
    for service in DATA:
        assert _nodes_running(manager, service) == [data.name], service


def _psql(cluster: list[Node], sql: str) -> str:
    login = 'PGPASSWORD="$(cat /run/secrets/postgres_password)" psql -v ON_ERROR_STOP=1 -tA -h 127.0.0.1 ' \
            '-U "$(cat /run/secrets/postgres_user)" -d "$(cat /run/secrets/postgres_db)"'
    return exec_in(None, "dev_postgres", f"{login} -c \"{sql}\"", nodes=[n.client for n in cluster]).strip()


def test_a_drained_data_node_leaves_the_database_stopped_not_empty_elsewhere(spread: Operator, cluster: list[Node]) -> None:
    manager, data, _ = cluster
    assert not wait_until_healthy(manager.client, timeout=300, names=("dev_postgres",), nodes=[n.client for n in cluster])
    _psql(cluster, "CREATE TABLE placed (id int PRIMARY KEY); INSERT INTO placed VALUES (7)")
    node = manager.client.nodes.get(data.node_id)
    node.update({**node.attrs["Spec"], "Availability": "drain"})
    try:
        deadline = time.monotonic() + 90
        pending: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not pending:
            time.sleep(3)
            tasks = manager.client.services.get("dev_postgres").tasks({"desired-state": "running"})
            assert not [t for t in tasks if t["Status"]["State"] == "running"], "PostgreSQL started on another node"
            pending = [t for t in tasks if t["Status"]["State"] == "pending"]
        assert pending and "no suitable node" in pending[0]["Status"].get("Err", ""), pending
    finally:
        node.reload()
        node.update({**node.attrs["Spec"], "Availability": "active"})
    assert not wait_until_healthy(manager.client, timeout=300, names=("dev_postgres",), nodes=[n.client for n in cluster])
    assert _nodes_running(manager, "dev_postgres") == [data.name]
    assert _psql(cluster, "SELECT id FROM placed") == "7"
