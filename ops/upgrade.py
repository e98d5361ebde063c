"""`python -m ops upgrade-postgres <env> --to 18`: a PostgreSQL major upgrade by dump and restore.

1. A dump (and base backup) with the running major's tools, into the object store: `ops backup <env>`.
2. postgresMajorVersion set to the new major, postgresPreviousMajorVersion to the old one, and `up`:
   PostgreSQL starts on the new major's image with a data volume of its own, which it initialises;
   the old volume stays as it was, unmounted. The backup service takes the new major's tools, and
   point-in-time recovery starts again under the new major's prefix.
3. That dump restored into the new server with the new major's pg_restore, then a first backup
   (dump and base backup) on the new major.
Then `--undo` goes back to the old volume (anything written since the upgrade is not there) and
`--confirm` deletes the old volume. Until one of them, another upgrade is refused.
"""

from __future__ import annotations

import io
import re
import sys
from typing import Any, TextIO

from components.images import POSTGRES_RELEASES
from names import FIRST_POSTGRES_MAJOR, PROJECT, env_service, postgres_data_volume
from ops.backend import Backend, OpsError
from ops.backups import healthy_container, run_script
from ops.deploy import pulumi_cli, run, select_stack

MAJOR_KEY = f"{PROJECT}:postgresMajorVersion"
PREVIOUS_KEY = f"{PROJECT}:postgresPreviousMajorVersion"
DOCKER_VOLUME = "docker:index/volume:Volume"


class _Tee(io.StringIO):
    """Keeps what it is written while passing it on."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(text)
        return super().write(text)

    def flush(self) -> None:
        self._out.flush()


def majors(stack: Any) -> tuple[int, int | None]:
    """The stack's PostgreSQL major and the one an unconfirmed upgrade came from."""
    config = stack.get_all_config()
    major = int(config[MAJOR_KEY].value) if MAJOR_KEY in config else FIRST_POSTGRES_MAJOR
    previous = int(config[PREVIOUS_KEY].value) if PREVIOUS_KEY in config else 0
    return major, previous or None


def dump_object(backup_output: str) -> str:
    """The dump `backup.sh` reported writing (`backup: s3://bucket/<env>/<object> (...)`)."""
    found = re.findall(r"^backup: s3://\S+/(\S+\.dump\.gpg) ", backup_output, re.MULTILINE)
    if not found:
        raise OpsError("the backup did not report its dump; nothing was changed")
    return str(found[-1])


def upgrade(client: Any, env: str, to: int, backend: Backend, out: TextIO = sys.stdout) -> None:
    stack = select_stack(env, backend)
    major, previous = majors(stack)
    if previous is not None:
        raise OpsError(f"{env}'s upgrade from PostgreSQL {previous} is not confirmed yet: "
                       f"python -m ops upgrade-postgres {env} --confirm (or --undo) first")
    if to not in POSTGRES_RELEASES or to <= major:
        newer = [m for m in POSTGRES_RELEASES if m > major]
        raise OpsError(f"{env} runs PostgreSQL {major}; it can move to {', '.join(map(str, newer)) or 'no newer pinned major'}, not {to}")
    print(f"upgrade-postgres {env}: 1/3 a dump with PostgreSQL {major}'s tools", file=out, flush=True)
    made = _Tee(out)
    if run_script(client, "backup", env, out=made):
        raise OpsError(f"{env}'s backup failed; nothing was changed")
    dump = dump_object(made.getvalue())
    print(f"upgrade-postgres {env}: 2/3 PostgreSQL {to} on {postgres_data_volume(env, to)} "
          f"({postgres_data_volume(env, major)} is kept as it is)", file=out, flush=True)
    _switch(stack, env, to, major, backend, out)
    release = POSTGRES_RELEASES[to]
    healthy_container(client, env_service(env, "postgres"), release.image)
    healthy_container(client, env_service(env, "postgres-backup"), release.backup_image)
    print(f"upgrade-postgres {env}: 3/3 {dump} restored with PostgreSQL {to}'s pg_restore", file=out, flush=True)
    if run_script(client, "restore", env, dump, out=out):
        raise OpsError(f"the restore into PostgreSQL {to} failed; the data is still on {postgres_data_volume(env, major)}: "
                       f"python -m ops upgrade-postgres {env} --undo")
    # Point-in-time recovery starts again on this major: a base backup (and a dump) right away.
    if run_script(client, "backup", env, out=out):
        raise OpsError(f"{env} runs PostgreSQL {to} with its data, but its first backup failed: python -m ops backup {env}")
    print(f"upgrade-postgres {env}: done. Check the applications, then python -m ops upgrade-postgres {env} --confirm "
          f"(deletes {postgres_data_volume(env, major)}), or --undo to go back to it", file=out)


def undo(env: str, backend: Backend, out: TextIO = sys.stdout) -> None:
    """Back to the previous major's volume; the upgraded one is kept until --confirm."""
    stack = select_stack(env, backend)
    major, previous = majors(stack)
    if previous is None:
        raise OpsError(f"{env} has no upgrade to undo (it runs PostgreSQL {major})")
    print(f"upgrade-postgres {env} --undo: back to PostgreSQL {previous} on {postgres_data_volume(env, previous)}, "
          f"as it was before the upgrade; {postgres_data_volume(env, major)} is kept until --confirm", file=out, flush=True)
    _switch(stack, env, previous, major, backend, out)


def confirm(client: Any, env: str, backend: Backend, out: TextIO = sys.stdout) -> None:
    """Delete the volume of the major the stack no longer runs."""
    stack = select_stack(env, backend)
    major, previous = majors(stack)
    if previous is None:
        raise OpsError(f"{env} has no upgrade to confirm (it runs PostgreSQL {major})")
    volume = postgres_data_volume(env, previous)
    resources = stack.export_stack().deployment.get("resources", [])
    protected = [r["urn"] for r in resources if r.get("type") == DOCKER_VOLUME and r.get("protect") and r.get("outputs", {}).get("name") == volume]
    for urn in protected:
        if pulumi_cli(["state", "unprotect", urn, "-s", env, "--yes"], backend):
            raise OpsError(f"could not unprotect {volume}; nothing was deleted")
    # Swarm keeps the exited containers of replaced tasks, and a volume they name is in use.
    users = client.containers.list(all=True, filters={"volume": volume})
    if any(container.status == "running" for container in users):
        raise OpsError(f"{volume} is mounted by a running container; nothing was deleted (python -m ops status {env} -v)")
    for container in users:
        container.remove()
    stack.remove_config(PREVIOUS_KEY)
    run("up", env, backend, out=out)
    try:  # protected data is kept by Docker when Pulumi lets go of it (retainOnDelete): delete it here
        client.volumes.get(volume).remove()
    except Exception as error:  # already gone with the up (unprotected stacks)
        if "No such volume" not in str(error) and "not found" not in str(error).lower():
            raise OpsError(f"{volume} could not be deleted: {error}") from error
    print(f"upgrade-postgres {env} --confirm: {volume} deleted; {env} runs PostgreSQL {major}", file=out)


def _switch(stack: Any, env: str, major: int, previous: int, backend: Backend, out: TextIO) -> None:
    from pulumi import automation as auto

    stack.set_config(MAJOR_KEY, auto.ConfigValue(str(major)))
    stack.set_config(PREVIOUS_KEY, auto.ConfigValue(str(previous)))
    run("up", env, backend, out=out)
