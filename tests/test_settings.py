"""Bad configuration stops the run before any resource is declared, naming the key and the fix."""

from __future__ import annotations

import pytest
import yaml

from components.settings import ROOT, Resources, SettingsError, declared_config
from tests.harness import RecordingMocks, run_program


def failure(stack: str, config: dict[str, str | None], secrets: dict[str, str] | None = None) -> str:
    with pytest.raises(SettingsError) as raised:
        run_program(stack, config, secrets)
    return str(raised.value)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"environment": "qa"}, ["nextcandle:environment", "'qa' is not one of dev, stg, prod", "pulumi config set nextcandle:environment"]),
        ({"environment": None}, ["nextcandle:environment: is required", "pulumi config set nextcandle:environment dev"]),
        ({"domain": "not a domain"}, ["nextcandle:domain", "pulumi config set nextcandle:domain nextcandle.io"]),
        ({"ownRunner": "true", "runnerOwner": "org", "runnerReplicas": "-1"}, ["nextcandle:runnerReplicas", "-1 is outside 1..64"]),
        ({"redisPort": "5432"}, ["nextcandle:redisPort", "port 5432 is already used by postgresPort"]),
        ({"postgresPort": "8080"}, ["nextcandle:postgresPort", "already used by Traefik dashboard"]),
        ({"postgresPort": "70000"}, ["nextcandle:postgresPort", "70000 is outside 0..65535"]),
        ({"postgresCpus": "0.9-0.5"}, ["nextcandle:postgresCpus/postgresMemory", "at most the limit"]),
        ({"redisMemory": "lots"}, ["redisCpus/redisMemory", "is not reservation-limit"]),
        ({"redisMaxmemoryMb": "256"}, ["nextcandle:redisMaxmemoryMb", "no headroom", "pulumi config set nextcandle:redisMaxmemoryMb 128"]),
        ({"redisAppendfsync": "sometimes"}, ["nextcandle:redisAppendfsync", "'sometimes' is not one of"]),
        ({"postgresConfigFile": "missing.conf"}, ["nextcandle:postgresConfigFile", "configs/postgres/missing.conf does not exist", "postgresql-prod.conf"]),
        ({"traefikPublishPorts": "yes"}, ["nextcandle:traefikPublishPorts", "'yes' is not true or false"]),
        ({"statefulPlacement": "storage"}, ["nextcandle:statefulPlacement", "node.labels.nextcandle.data==true"]),
        ({"appScrapeTargets": "dev_auth"}, ["nextcandle:appScrapeTargets", "dev_auth not valid"]),
        ({"tunnelMode": "magic"}, ["nextcandle:tunnelMode", "'magic' is not one of none, token, managed"]),
    ],
)
def test_bad_value_names_the_key_and_the_fix(config: dict[str, str | None], expected: list[str]) -> None:
    message = failure("dev", config)
    for fragment in expected:
        assert fragment in message
    assert "Fix: pulumi config set" in message


def test_missing_tunnel_token_gives_the_exact_secret_command() -> None:
    message = failure("dev", {"tunnelMode": "token"})
    assert "pulumi config set --secret nextcandle:cloudflareTunnelToken <tunnel token" in message


def test_managed_tunnel_needs_api_token_and_ids() -> None:
    message = failure("prod", {"tunnelMode": "managed", "cloudflareAccountId": "abc"})
    assert "pulumi config set --secret nextcandle:cloudflareApiToken" in message
    assert "nextcandle:cloudflareAccountId: 'abc' is not a 32-character Cloudflare id" in message
    assert "nextcandle:cloudflareZoneId" in message


def test_runner_needs_owner_and_token() -> None:
    message = failure("dev", {"ownRunner": "true"})
    assert "nextcandle:runnerOwner: is required when ownRunner is true" in message
    assert "pulumi config set --secret nextcandle:runnerAccessToken" in message
    assert "pulumi config set --secret nextcandle:runnerRegistrationToken" in message


def test_repo_scope_runner_needs_a_repository_url() -> None:
    message = failure("dev", {"ownRunner": "true", "runnerScope": "repo", "runnerOwner": "nextcandle"}, {"runnerRegistrationToken": "x" * 20})
    assert "must be a repository URL when runnerScope is repo" in message


def test_backups_outside_the_storage_owner_need_credentials() -> None:
    with pytest.raises(SettingsError) as raised:
        run_program("prod", operator_secrets=False)
    message = str(raised.value)
    assert 'pulumi config set --secret nextcandle:backupS3AccessKey "$(pulumi stack output s3_access_key' in message
    assert "pulumi config set nextcandle:backupEnabled false" in message
    run_program("prod", {"backupEnabled": "false"}, operator_secrets=False)  # no backups, no credentials needed


def test_every_problem_is_reported_at_once() -> None:
    message = failure("dev", {"environment": "qa", "domain": "bad domain", "redisPort": "5432"})
    assert message.count("  - ") == 3


def test_no_resource_is_declared_when_config_is_bad(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[object] = []
    original = RecordingMocks.new_resource

    def spy(self: RecordingMocks, args: object) -> object:
        created.append(args)
        return original(self, args)  # type: ignore[arg-type]

    monkeypatch.setattr(RecordingMocks, "new_resource", spy)
    failure("dev", {"environment": "qa"})
    assert created == []


def test_settings_error_is_shown_without_a_traceback() -> None:
    import pulumi

    assert issubclass(SettingsError, pulumi.RunError)


def test_stack_files_only_use_declared_keys() -> None:
    declared = set(declared_config())
    for stack in ("dev", "stg", "prod"):
        keys = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert {k.split(":", 1)[1] for k in keys} <= declared, stack


def test_every_declared_key_has_type_and_description() -> None:
    for key, spec in declared_config().items():
        assert spec.get("type") in ("string", "integer", "boolean"), key
        assert spec.get("description"), key
        assert "default" in spec, key


def test_resources_notation() -> None:
    assert Resources.parse("0.20-1.00", "512M-1G") == Resources(0.2, 1.0, 512, 1024)
    with pytest.raises(ValueError):
        Resources.parse("1", "1M-2M")
