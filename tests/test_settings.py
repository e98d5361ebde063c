"""Bad configuration stops the run before any resource is declared, naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.settings import ROOT, Resources, SettingsError, declared_config
from names import STACKS
from tests.harness import RecordingMocks, run_program


def failure(stack: str, config: dict[str, str | None], secrets: dict[str, str] | None = None) -> str:
    with pytest.raises(SettingsError) as raised:
        run_program(stack, config, secrets)
    return str(raised.value)


def test_an_unknown_stack_name_stops_with_the_stacks_there_are() -> None:
    message = failure("qa", {})
    assert "Stack 'qa' is not one of platform, dev, stg, prod" in message and "pulumi stack select dev" in message


def test_missing_tunnel_token_gives_the_exact_secret_command() -> None:
    message = failure("platform", {"tunnelMode": "token"})
    assert "pulumi config set --secret nextcandle:cloudflareTunnelToken <tunnel token" in message


def test_managed_tunnel_needs_api_token_and_ids() -> None:
    message = failure("platform", {"tunnelMode": "managed", "cloudflareAccountId": "abc"})
    assert "pulumi config set --secret nextcandle:cloudflareApiToken" in message
    assert "nextcandle:cloudflareAccountId: 'abc' is not a 32-character Cloudflare id" in message
    assert "nextcandle:cloudflareZoneId" in message


def test_runner_needs_owner_and_token() -> None:
    message = failure("platform", {"runnerEnabled": "true"})
    assert "nextcandle:runnerOwner: is required when runnerEnabled is true" in message
    assert "pulumi config set --secret nextcandle:runnerAccessToken" in message
    assert "pulumi config set --secret nextcandle:runnerRegistrationToken" in message


def test_repo_scope_runner_needs_a_repository_url() -> None:
    message = failure(
        "platform", {"runnerEnabled": "true", "runnerScope": "repo", "runnerOwner": "nextcandle"}, {"runnerRegistrationToken": "x" * 20}
    )
    assert "must be a repository URL when runnerScope is repo" in message


def test_off_site_backups_need_their_keys_and_the_platforms_need_none() -> None:
    message = failure("prod", {"backupS3Endpoint": "https://s3.example.com"})
    assert "pulumi config set --secret nextcandle:backupS3AccessKey <key of that S3 service>" in message
    assert "pulumi config set --secret nextcandle:backupS3SecretKey" in message
    stale = failure("prod", {}, {"backupS3AccessKey": "OLDKEYCOPIEDBYHAND01"})
    assert "nextcandle:backupS3AccessKey: is only used with backupS3Endpoint" in stale
    assert "pulumi config rm nextcandle:backupS3AccessKey" in stale
    run_program("prod", {"backupEnabled": "false"})  # no backups, no credentials needed


def test_every_problem_is_reported_at_once() -> None:
    message = failure("dev", {"environment": "qa", "postgresCpus": "bad", "redisPort": "5432"})
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
    for stack in STACKS:
        keys = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert {k.split(":", 1)[1] for k in keys} <= declared, stack


def test_pulumi_yaml_declares_exactly_the_settings_table() -> None:
    """Pulumi.yaml's config block is written from components/settings_table.py; run
    `python -m components.settings_table` after editing the table."""
    assert yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"] == declared_config()


def test_every_declared_key_has_type_and_description() -> None:
    for key, spec in declared_config().items():
        assert spec.get("type") in ("string", "integer", "boolean"), key
        assert spec.get("description"), key
        assert "default" in spec, key


def test_resources_notation() -> None:
    assert Resources.parse("0.20-1.00", "512M-1G") == Resources(0.2, 1.0, 512, 1024)
    with pytest.raises(ValueError):
        Resources.parse("1", "1M-2M")


def test_tests_ignore_the_salt_and_secrets_a_deployment_in_this_checkout_wrote(tmp_path: Path) -> None:
    """README command 1 (deploy) then command 2 (tests) in one checkout: `pulumi` wrote the deployment's
    salt into the stack file, which the tests' own passphrase cannot open."""
    from tests.engine import copy_without_encryption_state

    deployed = tmp_path / "Pulumi.dev.yaml"
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["encryptionsalt"] = "v1:abc:def"
    document["config"]["nextcandle:appToken"] = {"secure": "v1:xyz"}
    deployed.write_text(yaml.safe_dump(document))
    copy_without_encryption_state(deployed, tmp_path / "copy.yaml")
    copied = yaml.safe_load((tmp_path / "copy.yaml").read_text())
    assert "encryptionsalt" not in copied and "nextcandle:appToken" not in copied["config"]
    assert copied["config"] == yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
