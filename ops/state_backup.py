"""The local state backend (.pulumi-state/: every stack's resources and generated passwords) backed up
like the platform's data: archived and sealed with the passphrase here (AES-256-GCM, its key derived
with scrypt), then stored by the platform's backup service beside its other archives (off-site when
it has a target). It is not sealed with a stack's backup key: that key lives in the state itself.

`ops up` backs the state up after every deployment; `ops backup state` does it now; `ops restore
state [ARCHIVE | --file PATH]` puts one back, keeping the replaced state beside it."""

from __future__ import annotations

import io
import os
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, TextIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from names import PLATFORM_BACKUP
from ops.backend import Backend, OpsError
from ops.backups import SCRIPTS, backup_container, exec_script

MAGIC = b"nextcandle-state-1\n"
"""The first bytes of a sealed state: the format, then a 16-byte salt, a 12-byte nonce and the ciphertext."""
CONTAINER_FILE = "/tmp/pulumi-state.sealed"
SKIP_ENVIRONMENT = "NEXTCANDLE_STATE_BACKUP"
"""Set to `off` to keep `ops up` from backing the state up (the tests' throwaway states)."""


def _key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase.encode())


def seal(plain: bytes, passphrase: str) -> bytes:
    salt, nonce = os.urandom(16), os.urandom(12)
    return MAGIC + salt + nonce + AESGCM(_key(passphrase, salt)).encrypt(nonce, plain, MAGIC)


def unseal(sealed: bytes, passphrase: str) -> bytes:
    if not sealed.startswith(MAGIC):
        raise OpsError("this file is not a state backup made by `python -m ops backup state`; nothing was restored")
    body = sealed[len(MAGIC):]
    try:
        return AESGCM(_key(passphrase, body[:16])).decrypt(body[16:28], body[28:], MAGIC)
    except InvalidTag:
        raise OpsError("the state backup does not open with this PULUMI_CONFIG_PASSPHRASE (a wrong passphrase or a "
                       "damaged file); nothing was restored") from None


def passphrase(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        return Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"]).read_text().rstrip("\n")
    value = env.get("PULUMI_CONFIG_PASSPHRASE", "")
    if not value:
        raise OpsError("the state backup is sealed with PULUMI_CONFIG_PASSPHRASE, which is empty: export the passphrase")
    return value


def state_directory(backend: Backend) -> Path:
    if not backend.is_local:
        raise OpsError(f"the state is in {backend.url.split('?')[0]}: back it up with that bucket's versioning or replication")
    return Path(backend.url.removeprefix("file://"))


def archive(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buffer.getvalue()


def backup_state(client: Any, backend: Backend, out: TextIO = sys.stdout) -> None:
    sealed = seal(archive(state_directory(backend)), passphrase())
    container = backup_container(client, PLATFORM_BACKUP)
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as tar:
        info = tarfile.TarInfo(Path(CONTAINER_FILE).name)
        info.size, info.mode, info.mtime = len(sealed), 0o400, int(time.time())
        tar.addfile(info, io.BytesIO(sealed))
    container.put_archive(str(Path(CONTAINER_FILE).parent), packed.getvalue())
    code = exec_script(client, container, ["sh", "-c", f'sh {SCRIPTS}/platform-backup.sh state {CONTAINER_FILE}; s=$?; rm -f {CONTAINER_FILE}; exit "$s"'], out)
    if code:
        raise OpsError(f"the state backup was not stored ({PLATFORM_BACKUP}'s output above says why)")


def fetch_state(client: Any, item: str | None, out: TextIO = sys.stdout) -> bytes:
    """The newest (or the given) stored state backup, as stored."""
    container = backup_container(client, PLATFORM_BACKUP)
    script = f'sh {SCRIPTS}/platform-restore.sh state {item or ""}'
    if exec_script(client, container, ["sh", "-c", script], out, environment={"STATE_FILE": CONTAINER_FILE}):
        raise OpsError("no state backup could be fetched (the output above says why); nothing was restored")
    stream, _ = container.get_archive(CONTAINER_FILE)
    packed = b"".join(stream)  # all of it before the file goes
    exec_script(client, container, ["rm", "-f", CONTAINER_FILE], out)
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        member = tar.extractfile(Path(CONTAINER_FILE).name)
        assert member is not None
        return member.read()


def restore_state(sealed: bytes, backend: Backend, out: TextIO = sys.stdout) -> Path | None:
    """Replace the local state by a sealed backup; the replaced one is kept beside it (returned)."""
    directory = state_directory(backend)
    plain = unseal(sealed, passphrase())
    kept = None
    if directory.exists():
        kept = directory.with_name(f"{directory.name}.replaced-{time.strftime('%Y-%m-%dT%H-%M-%SZ', time.gmtime())}")
        directory.rename(kept)
    directory.mkdir()
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:gz") as tar:
        tar.extractall(directory, filter="data")
    print(f"state restored into {directory}" + (f"; the replaced state is in {kept}" if kept else ""), file=out)
    return kept
