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
            {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"})),
    ],
)
def test_each_policy_catches_its_violation(policy: str, change: Any, runs: ProgramRuns) -> None:
    found = broken(runs("dev"), "dev_redis", change)
    assert list(found) == [policy]
    assert found[policy][0].startswith("dev_redis: ")


def test_published_database_port_in_prod_needs_the_explicit_allowance() -> None:
    allowed = run_program("prod")
    assert violations(allowed.service("prod_postgres")) == {}
    refused = run_program("prod", {"allowPublishedDatabasePorts": "false"})
    found = violations(refused.service("prod_postgres"))
    assert list(found) == ["no-published-database-port-in-prod"]
    assert "5434" in found["no-published-database-port-in-prod"][0]
    assert violations(refused.service("prod_redis"))
    internal = run_program("prod", {"allowPublishedDatabasePorts": "false", "postgresPort": "0", "redisPort": "0"})
    assert all(violations(s) == {} for s in internal.services)


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
