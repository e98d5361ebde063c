"""python -m ops: one command for operators, replacing start.sh, stop.sh and status.sh.

  python -m ops preflight                   check Docker, the swarm, the Pulumi CLI and the state backend
  python -m ops up platform|dev|stg|prod|all  deploy (initialises the swarm on a fresh machine; an
                                            environment brings the platform up first if it is not)
  python -m ops preview <stack>|all         show what would change (--policy runs the policy pack,
                                            --refresh reads the swarm first, --expect-no-changes fails on drift)
  python -m ops destroy <stack>|all         remove a stack (asks first; --yes for scripts); the platform
                                            goes last, and not while an environment references it
  python -m ops prune [--all-images] [--yes] stopped containers, dangling images, unused caches (never data)
  python -m ops verify-backup <env> [DUMP]  restore drill into a scratch database (also after every scheduled backup)
  python -m ops rotate <stack> <secret>     a generated password replaced and rolled out (PostgreSQL's role follows);
                                            data-encryption keys only with --i-know
  python -m ops drift                       refreshing preview of every deployed stack; exit 2 on drift
  python -m ops pulumi <arguments>          the pinned pulumi CLI on this project and backend, e.g.
                                            pulumi stack output -s dev --show-secrets
  python -m ops stop|start <stack>|all|runner  scale a stack's services (or the platform's runners) to zero
                                            and back; volumes, secrets and passwords stay
  python -m ops status [<stack>|all] [-v]   replicas and health of every service, by stack; exit 1 if any is not ok;
                                            -v adds networks, volumes with their size and disk use
  python -m ops backup <what>               back up now: dev|stg|prod (a dump and a base backup), grafana|n8n|objects,
                                            or platform (all three)
  python -m ops restore <what> [ARCHIVE]    restore the newest (or the given) dump or archive, or one copied
                                            bucket; Grafana and n8n are stopped meanwhile; asks first
  python -m ops backup state                the local Pulumi state, sealed with the passphrase, to the platform's backups
                                            (also after every `up`)
  python -m ops restore state [ARCHIVE] [--file PATH]
                                            put a state backup back (the replaced state is kept beside it)
  python -m ops restore <env> --to TIME     an environment's database as it was at TIME ("2026-12-01 10:00:00+09"):
                                            newest base backup before it, WAL replayed up to it
  python -m ops upgrade-postgres <env> --to 18
                                            a new PostgreSQL major by dump and restore onto a volume of its own;
                                            then --confirm deletes the old volume, --undo goes back to it
  python -m ops migrate --from dev          move the platform out of the stack that owned it (old layout)
  python -m ops adopt <stack> --data-directory DIR
                                            replace the compose stack (start.sh) by this program on the same
                                            data: no database re-initialised (README, "Adopting")

Errors are one line on stderr with what to do; the exit code is 2 for them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from components.images import POSTGRES_RELEASES
from names import ENVIRONMENTS
from ops.backend import Backend, OpsError
from ops.backups import BACKUP_TARGETS, RESTORE_TARGETS, recovery_target, restore_to_time, run_script
from ops.deploy import RUNNER, STACK_ORDER, drift, lifecycle_targets, plan, pulumi_cli, require_platform, run, stop_or_start
from ops.preflight import Check, check_docker, docker_client, run_checks
from ops.prune import prune
from ops.rotate import ROTATABLE
from ops.status import Detail, ServiceStatus, State, collect, collect_detail, only_local_backups

TARGETS = (*STACK_ORDER, "all")


class Style:
    def __init__(self, stream: TextIO) -> None:
        self.enabled = stream.isatty() and "NO_COLOR" not in os.environ

    def __call__(self, text: str, colour: str) -> str:
        codes = {"green": "32", "yellow": "33", "red": "31", "bold": "1"}
        return f"\033[{codes[colour]}m{text}\033[0m" if self.enabled else text


def print_checks(checks: Sequence[Check], out: TextIO) -> bool:
    style = Style(out)
    for check in checks:
        mark = style("ok  ", "green") if check.ok else style("FAIL", "red")
        line = f"{mark} {check.name:<8} {check.detail}"
        print(line + (f"\n          fix: {check.fix}" if check.fix and not check.ok else ""), file=out)
    return all(c.ok for c in checks)


def print_status(statuses: Sequence[ServiceStatus], out: TextIO) -> bool:
    style = Style(out)
    colours = {State.OK: "green", State.STOPPED: "yellow", State.STARTING: "yellow", State.DEGRADED: "red", State.FAILED: "red"}
    if not statuses:
        print("no NextCandle services on this swarm", file=out)
        return False
    width = max(len(s.name) for s in statuses)
    owner = None
    for s in statuses:
        if s.owner != owner:
            if owner is not None:
                print(file=out)
            owner = s.owner
            print(style(f"stack {owner}", "bold"), file=out)
            print(f"  {'SERVICE':<{width}}  {'REPLICAS':<9} {'HEALTH':<9} STATE", file=out)
        health = f"{s.healthy}h/{s.unhealthy}u" if (s.healthy or s.unhealthy or s.starting) else "-"
        state = style(s.state.value, colours[s.state])
        detail = f"  ({s.last_error})" if s.state in (State.FAILED, State.DEGRADED) and s.last_error else ""
        print(f"  {s.name:<{width}}  {s.replicas:<9} {health:<9} {state}{detail}", file=out)
    bad = [s for s in statuses if s.state not in (State.OK, State.STOPPED)]
    stopped = [s for s in statuses if s.state is State.STOPPED]
    summary = f"{len(statuses) - len(bad) - len(stopped)}/{len(statuses)} services ok" + (f", {len(stopped)} stopped" if stopped else "")
    print(style(summary, "bold"), file=out)
    return not bad


def size(count: int) -> str:
    """Bytes for people: 0 B, 12.3 MB; "?" where Docker has not measured."""
    if count < 0:
        return "?"
    value = float(count)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def print_detail(detail: Detail, stacks: Sequence[str] | None, out: TextIO) -> None:
    """The original status.sh -v: containers, networks, volumes with their size, disk use."""
    wanted = set(stacks) if stacks is not None else None
    print(f"\ncontainers on {detail.node}", file=out)
    for name, stack, state in detail.containers:
        if wanted is None or stack in wanted:
            print(f"  {name:<48} {stack:<9} {state}", file=out)
    print("\nnetworks", file=out)
    for name, stack, subnet in detail.networks:
        if wanted is None or stack in wanted:
            print(f"  {name:<24} {stack:<9} {subnet}", file=out)
    print(f"\nvolumes on {detail.node}", file=out)
    for name, stack, used in detail.volumes:
        if wanted is None or stack in wanted:
            print(f"  {name:<32} {stack:<9} {size(used)}", file=out)
    print(f"\ndisk on {detail.node}: " + ", ".join(f"{kind} {size(used)}" for kind, used in detail.disk.items()), file=out)
    if detail.other_nodes:
        print(f"other nodes ({', '.join(detail.other_nodes)}): run `python -m ops status -v` there for their volumes and disk", file=out)


def confirm(args: argparse.Namespace, question: str) -> None:
    """Ask for the stack name unless --yes; without a terminal, --yes is required."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise OpsError(f"{args.command} needs confirmation: pass --yes")
    try:
        answer = input(f"{question} Type the stack name to confirm: ")
    except EOFError:
        raise OpsError(f"no answer; nothing was done ({args.command}); pass --yes to skip the question") from None
    if answer.strip() != args.stack:
        raise OpsError(f"not confirmed; nothing was done ({args.command})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ops", description="Operate the NextCandle platform.")
    p.add_argument("--backend", help="state backend URL (default: local files in .pulumi-state, or PULUMI_BACKEND_URL)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("preflight", help="check Docker, swarm, Pulumi CLI and backend")
    for name in ("up", "preview", "destroy"):
        cmd = sub.add_parser(name, help=f"{name} one stack or all")
        cmd.add_argument("stack", choices=TARGETS)
        if name != "destroy":
            cmd.add_argument("--policy", action="store_true", help="run the policy pack in policy/")
            cmd.add_argument("--refresh", action="store_true", help="read the swarm first, so changes made outside Pulumi show")
        if name == "preview":
            cmd.add_argument("--expect-no-changes", action="store_true", help="exit 2 if anything would change (drift check)")
        else:
            cmd.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for name in ("stop", "start"):
        lifecycle = sub.add_parser(name, help=f"{name} a stack's services, or the platform's runners (data stays)")
        lifecycle.add_argument("stack", choices=("all", *STACK_ORDER, RUNNER))
    pruning = sub.add_parser("prune", help="remove stopped containers, dangling images and unused caches on this node (never data)")
    pruning.add_argument("--all-images", action="store_true", help="every unused image, not only dangling ones (stopped stacks pull again)")
    pruning.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rotating = sub.add_parser("rotate", help="replace a generated password by a new one and roll it out")
    rotating.add_argument("stack", choices=STACK_ORDER)
    rotating.add_argument("secret", choices=sorted(ROTATABLE))
    rotating.add_argument("--i-know", action="store_true", help="also a data-encryption key (old backups need the old one)")
    rotating.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    upgrading = sub.add_parser("upgrade-postgres", help="move an environment to a new PostgreSQL major (dump, new volume, restore)")
    upgrading.add_argument("stack", choices=ENVIRONMENTS)
    step = upgrading.add_mutually_exclusive_group(required=True)
    step.add_argument("--to", type=int, metavar="MAJOR", help=f"the new major ({', '.join(map(str, POSTGRES_RELEASES))} are pinned)")
    step.add_argument("--confirm", action="store_true", help="delete the previous major's volume")
    step.add_argument("--undo", action="store_true", help="back to the previous major's volume, as it was before the upgrade")
    upgrading.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sub.add_parser("drift", help="refreshing preview of every deployed stack: exit 2 if anything changed outside Pulumi")
    cli = sub.add_parser("pulumi", help="the pinned pulumi CLI on this project and backend (config set --secret, stack output --show-secrets)")
    cli.add_argument("arguments", nargs=argparse.REMAINDER, help="what `pulumi` would take, e.g. stack output -s dev --show-secrets")
    status = sub.add_parser("status", help="replicas and health of every service, by stack")
    status.add_argument("stack", nargs="?", default="all", choices=TARGETS)
    status.add_argument("-v", "--verbose", action="store_true", help="also networks, volumes with their size, disk use")
    backup = sub.add_parser("backup", help="back up an environment's database, or the platform's data, now")
    backup.add_argument("stack", choices=BACKUP_TARGETS)
    restore = sub.add_parser("restore", help="restore an environment's database, or the platform's data")
    restore.add_argument("stack", choices=RESTORE_TARGETS)
    restore.add_argument(
        "dump", nargs="?",
        help="e.g. app_x-2026-11-20T03-00-00Z.dump, grafana-2026-11-20T03-00-00Z.db.gz, or a bucket (default: newest, all buckets)",
    )
    restore.add_argument(
        "--to", metavar="TIME",
        help='an environment as it was at TIME, e.g. "2026-12-01 10:00:00+09" (base backup + WAL; replaces its data)',
    )
    restore.add_argument("--file", help="restore state: a sealed state backup on this machine (e.g. fetched from the off-site store)")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    verify = sub.add_parser("verify-backup", help="restore drill: an environment's newest dump into a scratch database, checked, dropped")
    verify.add_argument("stack", choices=ENVIRONMENTS)
    verify.add_argument("dump", nargs="?", help="a given dump instead of the newest")
    adopt = sub.add_parser("adopt", help="replace the running compose stack by this program, on the same data")
    adopt.add_argument("stack", choices=STACK_ORDER)
    adopt.add_argument("--data-directory", help="the compose stack's .data/<env> (or .data for the platform), absolute")
    adopt.add_argument("--wait", type=float, default=300, help="seconds to wait for the adopted PostgreSQL (default 300)")
    adopt.add_argument("--retire-old-login", action="store_true",
                       help="after the handover, once no application uses it: the compose stack's database login can no longer log in")
    migrate = sub.add_parser("migrate", help="move the platform out of the stack that owned it in the old layout")
    migrate.add_argument("--from", dest="source", default="dev", choices=ENVIRONMENTS, help="the old owner (default dev)")
    return p


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Everything after `pulumi` goes to the pulumi CLI as it is, options included."""
    words = list(argv)
    head = words[: words.index("pulumi")] if "pulumi" in words else None
    if head is not None and (head == [] or head[0] == "--backend" and len(head) == 2 or len(head) == 1 and head[0].startswith("--backend=")):
        args = parser().parse_args([*head, "pulumi"])
        args.arguments = words[len(head) + 1:]
        return args
    return parser().parse_args(words)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, connect: Any = docker_client) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args, out, connect)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one clear line, never a traceback
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2


GENERIC = ("update failed", "preview failed", "destroy failed", "refresh failed")
INVALID_SETTINGS = "Invalid configuration for stack"
"""The heading of components.settings' SettingsError, above one `- key: problem. Fix: ...` line each."""


def one_line(error: BaseException) -> str:
    """The most telling line of an error: Pulumi's first specific `error:` line, else the last line;
    for invalid settings, the heading and every problem below it."""
    # CommandError text is "code: N / stdout: ... / stderr: ..."; drop those prefixes.
    lines = [re.sub(r"^(code|stdout|stderr):\s*", "", line.strip()) for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    settings = [i for i, line in enumerate(lines) if INVALID_SETTINGS in line]
    if settings:  # every problem with its fix, not only the heading above them
        first = settings[0]
        problems = [line for line in lines[first + 1:] if line.startswith("- ")]
        return "\n".join([lines[first][lines[first].index(INVALID_SETTINGS):], *(f"  {p}" for p in dict.fromkeys(problems))])
    reported = [line.removeprefix("error:").strip() for line in lines if line.startswith("error:")]
    specific = [line for line in reported if line not in GENERIC]
    return (specific or reported or lines[-1:])[0]


def _state(args: argparse.Namespace, client: Any, backend: Backend, out: TextIO) -> int:
    from ops.state_backup import backup_state, fetch_state, restore_state

    if args.command == "backup":
        backup_state(client, backend, out)
        return 0
    confirm(args, "Replace the local Pulumi state by its backup? The current one is kept beside it.")
    sealed = Path(args.file).read_bytes() if args.file else fetch_state(client, args.dump, out)
    restore_state(sealed, backend, out)
    return 0


def _back_up_state_after_up(backend: Backend, connect: Any, out: TextIO) -> None:
    """Every deployment changes the state: back it up with the platform's data, when there is a place for it."""
    from ops.state_backup import SKIP_ENVIRONMENT, backup_state

    if not backend.is_local or os.environ.get(SKIP_ENVIRONMENT) == "off":
        return
    try:
        backup_state(connect(), backend, out)
    except Exception as error:  # the deployment stands; say what is missing
        print(f"warning: the state was not backed up ({one_line(error)}); python -m ops backup state tries again", file=out)


def _dispatch(args: argparse.Namespace, out: TextIO, connect: Any) -> int:
    backend = Backend.resolve(args.backend)
    if args.command == "pulumi":
        return pulumi_cli(args.arguments, backend)
    if args.command in ("status", "backup", "restore", "prune", "verify-backup"):
        check, client = check_docker(connect)
        if client is None:
            raise OpsError(f"{check.detail}; {check.fix}")
        if args.command == "status":
            stacks = None if args.stack == "all" else [args.stack]
            ok = print_status(collect(client, stacks), out)
            for service in only_local_backups(client, stacks):
                print(f"warning: {service} keeps the only backup copy on this swarm's object store; "
                      "set backupS3Endpoint (and its keys) for an off-site one", file=out)
            if args.verbose:
                print_detail(collect_detail(client), stacks, out)
            return 0 if ok else 1
        if args.command == "prune":
            if not args.yes and not sys.stdin.isatty():
                raise OpsError("prune needs confirmation: pass --yes")
            if not args.yes and input("Remove stopped containers, unused images and caches on this node? [y/N] ").strip().lower() != "y":
                raise OpsError("not confirmed; nothing was removed")
            done = prune(client, all_images=args.all_images)
            print(f"removed {len(done.containers)} containers, {done.images} images, {len(done.volumes)} cache volumes"
                  f"{' (' + ', '.join(done.volumes) + ')' if done.volumes else ''}; {size(done.reclaimed)} freed", file=out)
            return 0
        if args.stack == "state":
            return _state(args, client, backend, out)
        if args.command == "restore" and args.to:
            if args.stack not in ENVIRONMENTS or args.dump:
                raise OpsError("--to restores an environment's database (dev, stg, prod) to a time; it takes no dump")
            moment = recovery_target(args.to)
            confirm(args, f"Replace {args.stack}'s database by its state at {moment.isoformat(sep=' ')}? Its PostgreSQL stops meanwhile.")
            return restore_to_time(client, args.stack, moment, out)
        if args.command == "restore":
            what = f"{args.stack}'s database" if args.stack in ENVIRONMENTS else args.stack
            confirm(args, f"Restore {what} from {args.dump or 'the newest backup'}?")
        action = "verify" if args.command == "verify-backup" else args.command
        return run_script(client, action, args.stack, getattr(args, "dump", None), out)

    checks, _ = run_checks(backend, init_swarm=args.command in ("up", "start"), connect=connect)
    ready = print_checks(checks, out)
    if args.command == "preflight":
        return 0 if ready else 1
    if not ready:
        failed = next(c for c in checks if not c.ok)
        raise OpsError(f"{failed.detail}; fix: {failed.fix}")

    if args.command == "drift":
        return drift(backend, out)
    if args.command == "rotate":
        from ops.rotate import rotate

        confirm(args, f"Replace {args.stack}'s {args.secret} and restart every service that uses it?")
        rotate(connect(), args.stack, args.secret, backend, i_know=args.i_know, out=out)
        return 0
    if args.command == "upgrade-postgres":
        from ops import upgrade

        if args.to is not None:
            confirm(args, f"Move {args.stack} to PostgreSQL {args.to}? Its database is unavailable "
                          "while it is dumped, moved and restored; what is written meanwhile is lost.")
            upgrade.upgrade(connect(), args.stack, args.to, backend, out=out)
        elif args.undo:
            confirm(args, f"Go back to {args.stack}'s previous PostgreSQL volume? What was written since the upgrade is not on it.")
            upgrade.undo(args.stack, backend, out=out)
        else:
            confirm(args, f"Delete {args.stack}'s previous PostgreSQL volume for good?")
            upgrade.confirm(connect(), args.stack, backend, out=out)
        return 0
    if args.command in ("stop", "start"):
        for target in lifecycle_targets(args.command, args.stack, backend):
            stop_or_start(args.command, target, backend, out=out)
        return 0
    if args.command == "migrate":
        from ops.migrate import migrate

        migrate(args.source, backend, out)
        return 0
    if args.command == "adopt":
        from ops.adopt import adopt, retire_login

        if args.retire_old_login:
            if args.stack not in ENVIRONMENTS:
                raise OpsError("--retire-old-login is for an environment's database (dev, stg, prod)")
            retire_login(connect(), args.stack, backend, out)
            return 0
        adopt(connect(), args.stack, args.data_directory, backend, out, wait=args.wait)
        return 0
    stacks = plan(args.command, args.stack, backend)
    if problems := backend.stack_problems(stacks):
        what, fix = problems[0].split(": ", 1)
        raise OpsError(f"{what}; fix: {fix}")
    if args.command == "destroy":
        confirm(args, f"Destroy {args.stack}? Protected data volumes stay.")

    for stack in stacks:
        try:
            run(args.command, stack, backend, policy=getattr(args, "policy", False), refresh=getattr(args, "refresh", False),
                expect_no_changes=getattr(args, "expect_no_changes", False), out=out)
        except Exception:
            if args.command == "preview":
                require_platform(stack, backend)
            raise
    if args.command == "up":
        _back_up_state_after_up(backend, connect, out)
    return 0
