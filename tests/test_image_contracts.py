"""Every service against its image's contract (components/images.py): a file mounted into it is
readable by the uid its program runs as, its health check and command call only what the image
has, and a volume is mounted where that uid can write. A local image exists for every pin."""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.images import CONTRACTS, Contract
from tests.harness import ROOT, ProgramRun, Resource

SHELL_KEYWORDS = {"exec", "until", "while", "do", "done", "if", "then", "else", "fi"}
SHELL_BUILTINS = {"exec", "export", "cd", "test", "[", "printf", "echo", "read", "true", "false", "set", "unset", "eval", "."}
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
_OPERATORS = re.compile(r"\|\||&&|[|;]|(?<![<>])&")


def contract(service: Resource) -> Contract:
    image = service.inputs["taskSpec"]["containerSpec"]["image"]
    assert image in CONTRACTS, f"{service.swarm_name}: {image} has no contract in components/images.py"
    return CONTRACTS[image]


def runtime_ids(service: Resource) -> tuple[int, set[int]]:
    """The uid the program runs as and the groups it has: a `user` override, else the image's."""
    image = contract(service)
    user = service.inputs["taskSpec"]["containerSpec"].get("user")
    if user:
        uid, _, gid = user.partition(":")
        return int(uid), {int(gid or uid)}
    return image.uid, {image.gid, *image.groups}


def readable(uid: int, groups: set[int], mount: dict) -> bool:
    mode = int(mount.get("fileMode", 0o444))
    owner, group = int(mount.get("fileUid", "0")), int(mount.get("fileGid", "0"))
    return uid == 0 or (owner == uid and mode & 0o400 != 0) or (group in groups and mode & 0o040 != 0) or mode & 0o004 != 0


def shell_commands(script: str) -> list[str]:
    """The program each simple command of a shell script runs (builtins and assignments skipped)."""
    found: list[str] = []
    for inner in _SUBSTITUTION.findall(script):
        found += shell_commands(inner)
    for segment in _OPERATORS.split(_SUBSTITUTION.sub("x", script)):
        words = [w for w in shlex.split(segment) if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w)]
        while words and words[0] in SHELL_KEYWORDS:
            words = words[1:]
        if words and not re.match(r"^\d*[<>]", words[0]):
            found.append(words[0])
    return found


def programs_called(argv: list[str]) -> list[str]:
    """The programs an exec-form command line runs, following `sh -c` and `bash -c` scripts."""
    if posixpath.basename(argv[0]) in ("sh", "bash") and argv[1:2] == ["-c"]:
        return [argv[0], *shell_commands(argv[2])]
    return [argv[0]]


def health_check_programs(service: Resource) -> list[str]:
    tests = service.inputs["taskSpec"]["containerSpec"]["healthcheck"]["tests"]
    return ["sh", *shell_commands(tests[1])] if tests[0] == "CMD-SHELL" else programs_called(tests[1:])


def missing_tools(image: Contract, programs: list[str]) -> set[str]:
    tools = {posixpath.basename(t) for t in (*image.tools, *image.entrypoint[:1])}  # its own entrypoint, too
    return {p for p in programs if posixpath.basename(p) not in tools and p not in SHELL_BUILTINS}


def test_every_service_image_has_a_contract_and_a_local_image(any_run: ProgramRun) -> None:
    from scripts.local_images import LOCAL

    for service in any_run.services:
        image = service.inputs["taskSpec"]["containerSpec"]["image"]
        assert image in CONTRACTS and image in LOCAL, f"{service.swarm_name}: {image}"
        assert CONTRACTS[image].source, f"{image}: the contract names no upstream source"


def test_mounted_secrets_and_configs_are_readable_by_the_program(any_run: ProgramRun) -> None:
    for service in any_run.services:
        uid, groups = runtime_ids(service)
        container = service.inputs["taskSpec"]["containerSpec"]
        for mount in [*container.get("secrets", []), *container.get("configs", [])]:
            assert readable(uid, groups, mount), f"{service.swarm_name}: {mount['fileName']} is not readable by uid {uid}: {mount}"


def test_health_checks_call_only_what_the_image_has(any_run: ProgramRun) -> None:
    for service in any_run.services:
        image = contract(service)
        assert not missing_tools(image, health_check_programs(service)), (
            f"{service.swarm_name}: health check {service.inputs['taskSpec']['containerSpec']['healthcheck']['tests']} "
            f"calls {missing_tools(image, health_check_programs(service))}, which {service.inputs['taskSpec']['containerSpec']['image']} lacks")


def test_commands_call_only_what_the_image_has(any_run: ProgramRun) -> None:
    for service in any_run.services:
        commands = service.inputs["taskSpec"]["containerSpec"].get("commands")
        if commands:
            assert not missing_tools(contract(service), programs_called(commands)), f"{service.swarm_name}: {commands}"


def chowned_before_start(service: Resource) -> set[str]:
    """Paths a service's own command chowns while it still runs as root, before the image drops it."""
    commands = service.inputs["taskSpec"]["containerSpec"].get("commands") or []
    scripts = [commands[i + 2] for i in range(len(commands) - 2) if posixpath.basename(commands[i]) == "sh" and commands[i + 1] == "-c"]
    if not contract(service).starts_as_root or not scripts:
        return set()
    return set(re.findall(r"chown (?:-R )?\S+ (/\S+)", scripts[0]))


def test_volumes_are_mounted_where_the_program_can_write(any_run: ProgramRun) -> None:
    for service in any_run.services:
        uid, _ = runtime_ids(service)
        writable = {*contract(service).writable, *chowned_before_start(service)}
        for mount in service.inputs["taskSpec"]["containerSpec"].get("mounts", []):
            if mount["type"] == "volume" and uid != 0 and not mount.get("readOnly"):
                assert mount["target"] in writable, f"{service.swarm_name}: uid {uid} cannot write {mount['target']}"


@pytest.mark.parametrize(
    ("script", "programs"),
    [
        ('pg_isready -h 127.0.0.1 -U "$(cat /run/secrets/u)" -d "$(cat /run/secrets/d)"', ["cat", "cat", "pg_isready"]),
        ('REDISCLI_AUTH="$(cat /run/secrets/p)" redis-cli ping | grep -q PONG', ["cat", "redis-cli", "grep"]),
        ("exec 3<>/dev/tcp/127.0.0.1/1 && printf x >&3 && head -1 <&3", ["printf", "head"]),
        ('REDIS_PASSWORD="$(cat /p)" exec /redis_exporter', ["cat", "/redis_exporter"]),
    ],
)
def test_shell_commands_are_found(script: str, programs: list[str]) -> None:
    assert sorted(shell_commands(script)) == sorted(programs)


def test_a_root_only_secret_is_unreadable_by_a_non_root_program() -> None:
    """The SeaweedFS failure: a 0400 root-owned secret, read after the entrypoint switched to uid 1000."""
    assert not readable(1000, {1000}, {"fileUid": "0", "fileGid": "0", "fileMode": 0o400})
    assert readable(1000, {1000}, {"fileUid": "1000", "fileGid": "1000", "fileMode": 0o400})


def test_the_backup_image_pin_names_what_its_directory_builds() -> None:
    """images/postgres-backup changes only with a new tag: the pin names exactly one build."""
    from components import images
    from scripts import backup_image

    for major, release in images.POSTGRES_RELEASES.items():
        assert backup_image.image(major) == release.backup_image, "run `python3 scripts/backup_image.py` and pin what it prints"
    dockerfile = (backup_image.DIRECTORY / "Dockerfile").read_text()
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.MULTILINE)
    assert re.search(r"^FROM postgres:\$\{POSTGRES_VERSION\}-", dockerfile, re.MULTILINE), "each major builds on its own PostgreSQL"
    assert entrypoint and tuple(json.loads(entrypoint.group(1))) == CONTRACTS[images.POSTGRES_BACKUP].entrypoint
    assert re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)[-1:] == ["root"] and CONTRACTS[images.POSTGRES_BACKUP].uid == 0


def test_the_backup_image_pin_moves_with_any_change_to_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts import backup_image

    copy = tmp_path / "postgres-backup"
    shutil.copytree(backup_image.DIRECTORY, copy)
    monkeypatch.setattr(backup_image, "DIRECTORY", copy)
    before = backup_image.image(17)
    (copy / "scheduler" / "main.go").write_text((copy / "scheduler" / "main.go").read_text() + "\n")
    assert backup_image.image(17) != before and backup_image.image(17).rsplit(":", 1)[1].startswith("17.11-")


def test_a_local_image_keeps_its_cache_key_from_one_run_to_the_next() -> None:
    """Otherwise every run of scripts/images.sh rebuilds every image (sets print in hash order)."""
    script = ("from scripts.local_images import LOCAL, recipe_key; from components.images import CONTRACTS; "
              "print([recipe_key(r, CONTRACTS[p]) for p, r in sorted(LOCAL.items())])")
    keys = {
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed},
                       capture_output=True, text=True, check=True).stdout
        for seed in ("1", "2", "3")
    }
    assert len(keys) == 1, keys
