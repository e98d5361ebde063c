"""The local Pulumi state's backup (ops/state_backup.py): sealed with the passphrase, opened only with
it, restored into the backend's directory with the replaced state kept beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.backend import Backend, OpsError
from ops.state_backup import archive, passphrase, restore_state, seal, state_directory, unseal


def test_a_sealed_state_opens_only_with_its_passphrase() -> None:
    sealed = seal(b"the state", "right")
    assert b"the state" not in sealed and unseal(sealed, "right") == b"the state"
    with pytest.raises(OpsError, match="does not open with this PULUMI_CONFIG_PASSPHRASE"):
        unseal(sealed, "wrong")
    with pytest.raises(OpsError, match="not a state backup"):
        unseal(b"anything else", "right")


def test_a_restore_replaces_the_state_and_keeps_the_one_it_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "right")
    state = tmp_path / "state"
    (state / ".pulumi" / "stacks" / "nextcandle").mkdir(parents=True)
    (state / ".pulumi" / "stacks" / "nextcandle" / "dev.json").write_text('{"backed": "up"}')
    backend = Backend(f"file://{state}")
    sealed = seal(archive(state_directory(backend)), passphrase())
    (state / ".pulumi" / "stacks" / "nextcandle" / "dev.json").write_text('{"damaged": true}')
    kept = restore_state(sealed, backend)
    assert (state / ".pulumi" / "stacks" / "nextcandle" / "dev.json").read_text() == '{"backed": "up"}'
    assert kept is not None and (kept / ".pulumi" / "stacks" / "nextcandle" / "dev.json").read_text() == '{"damaged": true}'


def test_the_state_backup_needs_a_passphrase_and_a_local_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    with pytest.raises(OpsError, match="export the passphrase"):
        passphrase()
    with pytest.raises(OpsError, match="versioning"):
        state_directory(Backend("s3://state-bucket"))
