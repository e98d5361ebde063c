"""ops/policy_check.py: the policy pack's rules on the inputs a preview's events carry."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ops.backend import OpsError
from ops.policy_check import PolicyCheck
from tests.conftest import ProgramRuns
from tests.harness import SERVICE


def planned(typ: str, name: str, inputs: dict[str, Any]) -> SimpleNamespace:
    new = SimpleNamespace(inputs=inputs)
    return SimpleNamespace(resource_pre_event=SimpleNamespace(metadata=SimpleNamespace(type=typ, urn=f"urn:pulumi:dev::nextcandle::{typ}::{name}", new=new)))


def test_every_service_of_a_stack_passes_and_a_latest_image_is_refused(runs: ProgramRuns) -> None:
    check = PolicyCheck()
    for resource in runs("dev").resources:
        check(planned(resource.typ, resource.name, resource.inputs))
    check(SimpleNamespace(diagnostic_event=None))  # other events are ignored
    assert check.planned and check.violations() == []
    bad = runs("dev").service("dev_redis").inputs
    check(planned(SERVICE, "dev-redis", {**bad, "taskSpec": {**bad["taskSpec"], "containerSpec": {**bad["taskSpec"]["containerSpec"], "image": "redis:latest"}}}))
    with pytest.raises(OpsError, match="pinned-image: dev_redis: image 'redis:latest' is not pinned"):
        check.enforce("dev")
