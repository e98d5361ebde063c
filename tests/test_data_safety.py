"""No change of settings replaces a data volume, a password or a key (secret or random value) in prod
or in the platform: Docker volumes and secrets are replaced whenever any input changes, so their
inputs must not depend on any setting. And all of them are protected, so even a deliberate rename
cannot delete them."""

from __future__ import annotations

import pytest

from components.settings import declared_config
from components.settings_table import ENVIRONMENT_ONLY_KEYS, PLATFORM_ONLY_KEYS, SETTINGS
from names import CACHE_LABEL, PLATFORM
from tests.conftest import ProgramRuns
from tests.harness import VOLUME, ProgramRun, Resource, run_program, stack_config

# Every plain setting that may change, with another valid value (components/settings_table.py).
CHANGES = {s.key: s.changed for s in SETTINGS if s.changed is not None}
BOOLEAN_FLIPS = {s.key for s in SETTINGS if s.type == "boolean" and s.changes_freely and not s.secret}
# The platform with runners on, so their settings have something to change.
PLATFORM_BASE = {"runnerEnabled": "true", "runnerOwner": "nextcandle"}
OFF_SITE_KEYS = {"backupS3AccessKey": "OFFSITEACCESSKEY0001", "backupS3SecretKey": "off-site-secret-key-0123456789"}
SECRETS = {PLATFORM: {"runnerAccessToken": "ghp_datasafety0123456789"}, "prod": {}}


def data_resources(run: ProgramRun) -> dict[tuple[str, str], Resource]:
    """Volumes and every protected password, key or secret (the stack protects exactly its data)."""
    found = {(r.typ, r.name): r for r in run.resources if (r.typ == VOLUME and not is_cache(r)) or r.protect}
    assert len([k for k in found if k[0] == VOLUME]) >= 2 and len(found) > 2
    return found


def is_cache(volume: Resource) -> bool:
    return {"label": CACHE_LABEL, "value": "true"} in volume.inputs.get("labels", [])


def test_only_the_runners_build_cache_and_the_docker_api_sockets_are_caches(runs: ProgramRuns) -> None:
    """A cache is not protected: the runners' build cache, and the volumes that hold only the Docker API proxy's sockets."""
    caches = sorted(v.inputs["name"] for run in (runs.full, runs("prod")) for v in run.of_type(VOLUME) if is_cache(v))
    assert caches == ["core_docker_api_alloy", "core_docker_api_cadvisor", "core_docker_api_traefik", "runner_work"]


def keys_of(stack: str) -> list[str]:
    other = ENVIRONMENT_ONLY_KEYS if stack == PLATFORM else PLATFORM_ONLY_KEYS
    return sorted(k for k in [*CHANGES, *BOOLEAN_FLIPS] if k not in other)


def test_every_setting_that_may_change_has_another_value() -> None:
    for setting in SETTINGS:
        if setting.changes_freely and not setting.secret and setting.type != "boolean":
            assert setting.changed is not None, f"{setting.key}: give it `changed=` in components/settings_table.py"


def test_data_is_protected_in_prod_and_the_platform() -> None:
    for stack, config in (("prod", {}), (PLATFORM, PLATFORM_BASE)):
        for resource in data_resources(run_program(stack, config, SECRETS[PLATFORM] if stack == PLATFORM else None)).values():
            assert resource.protect, f"{stack}: {resource.typ} {resource.name}"
            if resource.typ == VOLUME:
                assert resource.retain_on_delete


SWITCHES_OFF = {"runnerEnabled", "backupEnabled", "stopped", "runnersStopped"}
"""Flips that switch a part off (or stop it): each is tried alone, so the others change a running part."""


def changed_value(stack: str, key: str) -> str:
    if key not in BOOLEAN_FLIPS:
        return CHANGES[key]
    current = {**stack_config(stack), **PLATFORM_BASE}.get(key) if stack == PLATFORM else stack_config(stack).get(key)
    current = current or str(declared_config()[key]["default"]).lower()
    return "false" if current == "true" else "true"


def replaced_data(stack: str, keys: list[str], baseline: ProgramRun) -> list[str]:
    """What changing `keys` together does to the data resources of `stack`: each difference found."""
    base = PLATFORM_BASE if stack == PLATFORM else {}
    config = {**base, **{key: changed_value(stack, key) for key in keys}}
    if "runnerScope" in keys:
        config["runnerOwner"] = CHANGES["runnerOwner"]  # repo scope takes a URL
    secrets = {**SECRETS[stack], **(OFF_SITE_KEYS if "backupS3Endpoint" in keys else {})}
    before, after = data_resources(baseline), data_resources(run_program(stack, config, secrets))
    if before.keys() != after.keys():
        return [f"data resources differ: {sorted(before.keys() ^ after.keys())}"]
    return [f"{identity} replaced" for identity, resource in before.items()
            if after[identity].inputs != resource.inputs or not after[identity].protect]


@pytest.mark.parametrize("stack", ["prod", PLATFORM])
def test_no_setting_replaces_data(stack: str, runs: ProgramRuns) -> None:
    """Every setting changed at once, then each switch that turns a part off on its own; where data
    would be replaced, each key of that run is tried alone to name the one that does it."""
    base = PLATFORM_BASE if stack == PLATFORM else {}
    baseline = runs(stack, base, SECRETS[PLATFORM] if stack == PLATFORM else None)
    keys = keys_of(stack)
    groups = [[k for k in keys if k not in SWITCHES_OFF], *[[k] for k in keys if k in SWITCHES_OFF]]
    for group in groups:
        if replaced_data(stack, group, baseline):
            culprits = {key: found for key in group if (found := replaced_data(stack, [key], baseline))}
            pytest.fail(f"{stack}: these settings would replace data: {culprits or group}")
