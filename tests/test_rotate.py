"""`ops rotate`: which generated values it replaces, and the ones it refuses without --i-know."""

from __future__ import annotations

import pytest

from ops.backend import Backend, OpsError
from ops.rotate import ROTATABLE, _restarted_postgres, password_urn, rotate
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


class _Container:
    def __init__(self, password: str) -> None:
        self.password = password
        self.attrs = {"State": {"Health": {"Status": "healthy"}}, "Config": {"Image": "postgres"}}

    def exec_run(self, command: list[str], environment: dict[str, str] | None = None) -> tuple[int, bytes]:
        return 0, self.password.encode()


def test_the_role_is_changed_in_the_restarted_container_not_the_stopping_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The update returns while Swarm still stops the old task, which is still listed healthy."""
    monkeypatch.setattr("time.sleep", lambda _: None)
    listed = iter([[_Container("old")], [_Container("old")], [_Container("new")]])

    class Client:
        class containers:
            @staticmethod
            def list(filters: dict[str, str]) -> list[_Container]:
                return next(listed)

    assert _restarted_postgres(Client(), "stg", "old").password == "new"
