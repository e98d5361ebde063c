"""up, preview, destroy, stop and start through the Pulumi Automation API, with progress on the terminal."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from names import ENVIRONMENTS, PLATFORM, PROJECT, STACKS, project_dir
from ops.backend import ROOT, Backend, OpsError
from ops.engine import Engine
from ops.policy_check import SKIP as POLICY_SKIP
from ops.policy_check import PolicyCheck

# Environments read the platform through a StackReference: it goes up first and down last.
STACK_ORDER = STACKS
RUNNER = "runner"
"""`ops stop runner`: the platform's runners alone (setting runnersStopped)."""
POLICY_PACK = str(ROOT / "policy")
STACK_REFERENCE = "pulumi:pulumi:StackReference"


def stacks_for(target: str, destroying: bool = False) -> list[str]:
    if target == "all":
        return list(reversed(STACK_ORDER)) if destroying else list(STACK_ORDER)
    return [target]


def workspace_options(backend: Backend) -> Any:
    """The project's settings files, the state backend and the pinned engine."""
    from pulumi import automation as auto

    engine = Engine.locate()
    return auto.LocalWorkspaceOptions(
        work_dir=str(project_dir()),
        env_vars={**backend.env(), **engine.env()},
        secrets_provider="passphrase",
        pulumi_command=engine.command(),
    )


def workspace(backend: Backend) -> Any:
    """The project's workspace, without selecting (or creating) any stack."""
    from pulumi import automation as auto

    options = workspace_options(backend)
    return auto.LocalWorkspace(
        work_dir=options.work_dir, env_vars=options.env_vars, secrets_provider=options.secrets_provider,
        pulumi_command=options.pulumi_command,
    )


def deployed(backend: Backend) -> dict[str, int]:
    """Stacks of this project in the backend that hold resources, with how many."""
    return {s.name.rsplit("/", 1)[-1]: s.resource_count for s in workspace(backend).list_stacks() if s.resource_count}


def plan(command: str, target: str, backend: Backend, present: Callable[[Backend], dict[str, int]] | None = None) -> list[str]:
    """The stacks a command runs on, in order, after checking the platform is where it must be:
    `up <env>` brings the platform up first when it is not yet; `destroy platform` refuses while an
    environment still references it. (`preview <env>` needs the platform too: require_platform says
    so when its preview fails, which costs a no-op preview nothing.)"""
    stacks = stacks_for(target, destroying=command == "destroy")
    destroys_platform = command == "destroy" and target == PLATFORM
    if not destroys_platform and (command != "up" or target not in ENVIRONMENTS):
        return stacks
    live = (present or deployed)(backend)
    if destroys_platform:
        users = sorted(set(live) & set(ENVIRONMENTS))
        if users:
            raise OpsError(
                f"the platform is still referenced by {', '.join(users)}; nothing was destroyed. "
                f"Destroy those first (python -m ops destroy {users[0]}), or destroy all"
            )
        return stacks
    return stacks if PLATFORM in live else [PLATFORM, *stacks]


def require_platform(target: str, backend: Backend, present: Callable[[Backend], dict[str, int]] | None = None) -> None:
    """An environment reads the platform through its StackReference: without it, say what to run."""
    if target in ENVIRONMENTS and PLATFORM not in (present or deployed)(backend):
        raise OpsError(f"the platform stack is not deployed yet: run python -m ops up {PLATFORM} (or up {target}, which brings it up first)")


@dataclass
class Progress:
    """Turns engine events into one line per resource step and a summary."""

    out: TextIO = sys.stdout
    steps: int = 0

    def __call__(self, event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        if pre is not None:
            meta = pre.metadata
            op = getattr(meta.op, "value", str(meta.op))
            if op == "same" or (op == "read" and meta.type == STACK_REFERENCE):
                return  # an environment reads the platform's outputs on every run
            self.steps += 1
            kind = meta.type.rsplit(":", 1)[-1]
            name = meta.urn.rsplit("::", 1)[-1]
            print(f"  [{self.steps:>3}] {op:<8} {kind:<16} {name}", file=self.out, flush=True)
        diagnostic = getattr(event, "diagnostic_event", None)
        if diagnostic is not None and diagnostic.severity == "error":
            print(f"  error: {diagnostic.message.strip()}", file=self.out, flush=True)
        summary = getattr(event, "summary_event", None)
        if summary is not None:
            changes = ", ".join(f"{count} {op}" for op, count in sorted(summary.resource_changes.items()))
            print(f"  done in {summary.duration_seconds}s: {changes or 'no changes'}", file=self.out, flush=True)


def run_program() -> None:
    """The program, run in this process (Automation API inline program): no language host needed."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def select_stack(name: str, backend: Backend) -> Any:
    """The stack, with the project's settings files and the pinned engine."""
    from pulumi import automation as auto

    return auto.create_or_select_stack(stack_name=name, project_name=PROJECT, program=run_program, opts=workspace_options(backend))


def lifecycle(action: str, target: str) -> tuple[str, str]:
    """The stack and setting `ops stop|start <target>` changes: every service of a stack (stopped), or
    the platform's runners alone (runnersStopped)."""
    if target == RUNNER:
        return PLATFORM, f"{PROJECT}:runnersStopped"
    if target in STACKS:
        return target, f"{PROJECT}:stopped"
    raise OpsError(f"cannot {action} {target!r}: choose one of {', '.join((*STACKS, RUNNER))}")


def pulumi_cli(args: list[str], backend: Backend) -> int:
    """The pinned engine's own CLI on this project and state backend, for what `ops` has no command
    for (`config set --secret`, `stack output --show-secrets`, `state unprotect`). A local backend
    without a passphrase uses the empty one `deploy-dev.sh` uses; any other needs it exported."""
    env = dict(os.environ)
    if "PULUMI_CONFIG_PASSPHRASE" not in env and "PULUMI_CONFIG_PASSPHRASE_FILE" not in env and backend.is_local:
        env["PULUMI_CONFIG_PASSPHRASE"] = ""
    if problems := backend.problems(env):
        what, fix = problems[0].split(": ", 1)
        raise OpsError(f"{what}; fix: {fix}")
    engine = Engine.locate()
    env.update({**backend.env(), **engine.env()})
    return subprocess.run([str(engine.pulumi), *args], cwd=project_dir(), env=env).returncode


def lifecycle_targets(action: str, target: str, backend: Backend, present: Callable[[Backend], dict[str, int]] | None = None) -> list[str]:
    """What `ops stop|start <target>` runs on: `all` is every deployed stack, the environments
    stopped before the platform they use and started after it (the seeds' `stop.sh all`)."""
    if target != "all":
        return [target]
    live = (present or deployed)(backend)
    order = [stack for stack in STACKS if stack in live]
    return list(reversed(order)) if action == "stop" else order


def stop_or_start(
    action: str, target: str, backend: Backend, select: Callable[[str, Backend], Any] = select_stack, out: TextIO = sys.stdout
) -> Any:
    """Declarative: the setting goes into the stack file, then `up`; a later preview shows no drift.
    Volumes, secrets and passwords are inputs of nothing this setting touches."""
    from pulumi import automation as auto

    stack_name, key = lifecycle(action, target)
    stack = select(stack_name, backend)
    if action == "stop":
        stack.set_config(key, auto.ConfigValue("true"))
    else:
        stack.remove_config(key)
    print(f"{action} {target}: {key} {'set' if action == 'stop' else 'removed'} in Pulumi.{stack_name}.yaml", file=out, flush=True)
    return run("up", stack_name, backend, select=lambda _name, _backend: stack, out=out)


def refuse_protected(stack_name: str, stack: Any) -> None:
    """Refuse before anything is deleted: Pulumi would delete the rest and stop at the protected data."""
    resources = stack.export_stack().deployment.get("resources") or []
    protected = [r["urn"].rsplit("::", 1)[-1] for r in resources if r.get("protect")]
    if protected:
        raise OpsError(
            f"{stack_name} holds protected data ({', '.join(sorted(set(protected)))}); nothing was destroyed. "
            f"To remove it on purpose: python -m ops pulumi state unprotect --all -s {stack_name}, then destroy again"
        )


def run(
    command: str,
    stack_name: str,
    backend: Backend,
    policy: bool = False,
    refresh: bool = False,
    expect_no_changes: bool = False,
    select: Callable[[str, Backend], Any] = select_stack,
    out: TextIO = sys.stdout,
    replace: list[str] | None = None,
) -> Any:
    stack = select(stack_name, backend)
    progress = Progress(out)
    print(f"{command} {stack_name} ({backend.url})", file=out, flush=True)
    packs = [POLICY_PACK] if policy else None
    check = PolicyCheck() if os.environ.get(POLICY_SKIP) != "off" else None
    if command == "up":
        if check is not None:  # every rule, on what this up would deploy, before it changes anything
            stack.preview(on_event=check, color="never", refresh=refresh, replace=replace)
            check.enforce(stack_name)
        return stack.up(on_event=progress, policy_packs=packs, color="never", refresh=refresh, replace=replace)
    if command == "preview":
        def listen(event: Any) -> None:
            progress(event)
            if check is not None:
                check(event)

        result = stack.preview(on_event=listen, policy_packs=packs, color="never", diff=True, refresh=refresh,
                               expect_no_changes=expect_no_changes)
        if check is not None:
            check.enforce(stack_name)
        return result
    if command == "destroy":
        refuse_protected(stack_name, stack)
        return stack.destroy(on_event=progress, color="never")
    raise ValueError(command)


def drift(backend: Backend, out: TextIO = sys.stdout, present: Callable[[Backend], dict[str, int]] | None = None,
          select: Callable[[str, Backend], Any] = select_stack) -> int:
    """`ops drift`: a refreshing preview of every deployed stack, which shows what was changed outside
    Pulumi. 0: no drift; 2: drift (each stack's changes listed); 1: a stack could not be checked."""
    live = (present or deployed)(backend)
    drifted: dict[str, dict[str, int]] = {}
    failed: list[str] = []
    for name in [stack for stack in STACKS if stack in live]:
        try:
            result = run("preview", name, backend, refresh=True, select=select, out=out)
        except Exception as error:  # the other stacks are still checked
            lines = str(error).strip().splitlines()
            print(f"drift {name}: not checked: {lines[-1] if lines else type(error).__name__}", file=out)
            failed.append(name)
            continue
        changes = {op: count for op, count in (result.change_summary or {}).items() if op != "same" and count}
        if changes:
            drifted[name] = changes
    for name, changes in drifted.items():
        print(f"drift {name}: {', '.join(f'{count} to {op}' for op, count in sorted(changes.items()))} "
              f"(python -m ops up {name} --refresh puts it back)", file=out)
    if not drifted and not failed:
        print(f"no drift in {', '.join(s for s in STACKS if s in live) or 'any stack (none deployed)'}", file=out)
    return 1 if failed else 2 if drifted else 0
