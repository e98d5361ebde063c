"""The policy pack, run over every resource the mocked program registers (the same camelCase
inputs `pulumi preview --policy-pack policy` gives it), and shown to catch each violation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_policy import ResourceValidationArgs

from policy import rules
from tests.conftest import ProgramRuns
from tests.harness import SERVICE, ProgramRun, Resource, run_program


def violations(resource: Resource, props: dict[str, Any] | None = None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for policy in rules.POLICIES:
        messages: list[str] = []
        args = ResourceValidationArgs(
            resource.typ, props if props is not None else resource.inputs, f"urn:{resource.name}", resource.name, None, None  # type: ignore[arg-type]
        )
        policy.validate(args, lambda message, urn=None, found=messages: found.append(message))  # type: ignore[misc, operator]
        if messages:
            found[policy.name] = messages
    return found


def test_the_program_passes_every_policy(any_run: ProgramRun) -> None:
    for resource in any_run.resources:
        assert violations(resource) == {}, resource.name


def broken(run: ProgramRun, service: str, change: Any) -> dict[str, list[str]]:
    resource = run.service(service)
    props = copy.deepcopy(resource.inputs)
    change(props)
    return violations(resource, props)


@pytest.mark.parametrize(
    ("policy", "change"),
    [
        ("pinned-image", lambda p: p["taskSpec"]["containerSpec"].update(image="redis:latest")),
        ("pinned-image", lambda p: p["taskSpec"]["containerSpec"].update(image="redis")),
        ("health-check", lambda p: p["taskSpec"]["containerSpec"].pop("healthcheck")),
        ("resource-limits", lambda p: p["taskSpec"]["resources"].pop("limits")),
        ("resource-limits", lambda p: p["taskSpec"]["resources"]["reservation"].pop("memoryBytes")),
        ("no-secret-in-env", lambda p: p["taskSpec"]["containerSpec"].setdefault("env", {}).update(REDIS_PASSWORD="hunter2hunter2")),
        ("docker-socket-only-where-allowed", lambda p: p["taskSpec"]["containerSpec"].setdefault("mounts", []).append(
            {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock", "readOnly": True})),
        ("docker-socket-only-where-allowed", lambda p: p["taskSpec"]["containerSpec"].setdefault("mounts", []).append(
            {"type": "bind", "source": "/var/run", "target": "/host-run"})),
        ("docker-socket-only-where-allowed", lambda p: p["taskSpec"]["containerSpec"].setdefault("mounts", []).append(
            {"type": "bind", "source": "/", "target": "/rootfs"})),
    ],
)
def test_each_policy_catches_its_violation(policy: str, change: Any, runs: ProgramRuns) -> None:
    found = broken(runs("dev"), "dev_redis", change)
    assert list(found) == [policy]
    assert found[policy][0].startswith("dev_redis: ")


def test_prod_publishes_no_database_and_a_published_one_is_limited(runs: ProgramRuns) -> None:
    prod = runs("prod")
    assert not [s for s in prod.services if (s.inputs.get("endpointSpec") or {}).get("ports")], "prod publishes nothing"
    published = run_program("prod", {"postgresPort": "15434", "redisPort": "16381", "databaseClientNetworks": "192.168.10.0/24"})
    postgres = published.service("prod_postgres")
    assert violations(postgres) == {}
    assert list(violations(published.service("prod_redis"))) == ["published-databases-are-limited"], "Redis never in prod"
    rule = "published-databases-are-limited"
    ingress = {**postgres.inputs, "endpointSpec": {"ports": [{"publishedPort": 15434, "publishMode": "ingress"}]}}
    assert "publish_mode host" in violations(postgres, ingress)[rule][0]
    stack = {"label": "com.docker.stack.namespace", "value": "prod"}
    wide = {**postgres.inputs, "labels": [stack, {"label": "nextcandle.database-clients", "value": "0.0.0.0/0"}]}
    assert "narrow client networks" in violations(postgres, wide)[rule][0]
    assert rule in violations(postgres, {**postgres.inputs, "labels": [stack]}), "no label opts out"
    dev = runs("dev")
    assert all(violations(s) == {} for s in dev.services), "dev's published ports are host mode and limited"


def test_a_bind_of_the_host_s_root_passes_only_with_its_run_masked(runs: ProgramRuns) -> None:
    node_exporter = runs("platform").service("shared_node-exporter")
    assert violations(node_exporter) == {}, "node-exporter binds / and masks /rootfs/run"
    unmasked = copy.deepcopy(node_exporter.inputs)
    mounts = unmasked["taskSpec"]["containerSpec"]["mounts"]
    mounts[:] = [m for m in mounts if m["type"] != "tmpfs"]
    (message,) = violations(node_exporter, unmasked)["docker-socket-only-where-allowed"]
    assert "reachable at /rootfs/run/docker.sock" in message and "socket proxy" in message
    assert violations(runs("platform").service("core_docker-api-proxy")) == {}, "the proxy itself mounts it"


def test_policies_ignore_other_resource_types(runs: ProgramRuns) -> None:
    secret = next(r for r in runs("dev").resources if r.typ != SERVICE)
    assert violations(secret, {"image": "anything:latest"}) == {}


def test_policy_pack_layout() -> None:
    from tests.harness import ROOT

    pack = ROOT / "policy"
    assert "runtime:" in (pack / "PulumiPolicy.yaml").read_text()
    main = (pack / "__main__.py").read_text()
    assert "PolicyPack(" in main and "POLICIES" in main
    assert "pulumi-policy" in (pack / "requirements.txt").read_text()
    assert len({p.name for p in rules.POLICIES}) == len(rules.POLICIES) == 6
