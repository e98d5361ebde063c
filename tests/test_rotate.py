"""`ops rotate`: which generated values it replaces, and the ones it refuses without --i-know."""

from __future__ import annotations

import pytest

from ops.backend import Backend, OpsError
from ops.rotate import ROTATABLE, password_urn, rotate
from tests.conftest import ProgramRuns

RESOURCES = [
    {"type": "random:index/randomPassword:RandomPassword", "urn": "urn:pulumi:stg::nextcandle::x$random:index/randomPassword:RandomPassword::stg-postgres-password", "protect": True},
    {"type": "docker:index/secret:Secret", "urn": "urn:pulumi:stg::nextcandle::x$docker:index/secret:Secret::stg-postgres-password"},
]


def test_the_password_is_found_by_its_resource_name_with_its_protection() -> None:
    urn, protected = password_urn(RESOURCES, "stg-postgres-password")
    assert urn.endswith("RandomPassword::stg-postgres-password") and protected
    with pytest.raises(OpsError, match="no stg-redis-password"):
        password_urn(RESOURCES, "stg-redis-password")


@pytest.mark.parametrize(("stack", "secret", "problem"), [
    ("dev", "backup-encryption-key", "encrypts data"),
    ("platform", "n8n-encryption-key", "encrypts data"),
    ("platform", "postgres-password", "belongs to dev and stg and prod"),
    ("prod", "dashboard-password", "belongs to platform"),
])
def test_refused_before_anything_changes(stack: str, secret: str, problem: str) -> None:
    with pytest.raises(OpsError, match=problem):
        rotate(None, stack, secret, Backend("file:///nonexistent"))


def test_every_rotatable_value_is_a_generated_password_of_the_program(runs: ProgramRuns) -> None:
    names = {r.name for stack in ("platform", "dev") for r in runs(stack).of_type("random:index/randomPassword:RandomPassword")}
    for what in ROTATABLE.values():
        assert what.resource.format(stack="dev") in names, what.resource
