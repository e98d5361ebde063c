"""up, preview and destroy through the Pulumi Automation API, with progress on the terminal."""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ops.backend import ROOT, Backend, OpsError
from ops.engine import Engine

# dev owns the platform (networks, Traefik, shared services), so it goes up first and down last.
STACK_ORDER = ("dev", "stg", "prod")
POLICY_PACK = str(ROOT / "policy")
PROJECT = "nextcandle"


def stacks_for(target: str, destroying: bool = False) -> list[str]:
    if target == "all":
        return list(reversed(STACK_ORDER)) if destroying else list(STACK_ORDER)
    return [target]


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
            if op == "same":
                return
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


def project_dir() -> Path:
    """Where Pulumi.yaml and the stack files are read (and a new stack's encryption salt written):
    this checkout, or NEXTCANDLE_PROJECT_DIR (the tests use a copy)."""
    return Path(os.environ.get("NEXTCANDLE_PROJECT_DIR") or ROOT)


def select_stack(name: str, backend: Backend) -> Any:
    """The stack, with the project's settings files and the pinned engine."""
    from pulumi import automation as auto

    work_dir = project_dir()
    engine = Engine.locate()
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        env_vars={**backend.env(), **engine.env()},
        secrets_provider="passphrase",
        pulumi_command=engine.command(),
    )
    return auto.create_or_select_stack(stack_name=name, project_name=PROJECT, program=run_program, opts=options)


def refuse_protected(stack_name: str, stack: Any) -> None:
    """Refuse before anything is deleted: Pulumi would delete the rest and stop at the protected data."""
    resources = stack.export_stack().deployment.get("resources") or []
    protected = [r["urn"].rsplit("::", 1)[-1] for r in resources if r.get("protect")]
    if protected:
        raise OpsError(
            f"{stack_name} holds protected data ({', '.join(sorted(protected))}); nothing was destroyed. "
            f"To remove it on purpose: pulumi state unprotect --all -s {stack_name}, then destroy again"
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
) -> Any:
    stack = select(stack_name, backend)
    progress = Progress(out)
    print(f"{command} {stack_name} ({backend.url})", file=out, flush=True)
    packs = [POLICY_PACK] if policy else None
    if command == "up":
        return stack.up(on_event=progress, policy_packs=packs, color="never", refresh=refresh)
    if command == "preview":
        return stack.preview(on_event=progress, policy_packs=packs, color="never", diff=True, refresh=refresh,
                             expect_no_changes=expect_no_changes)
    if command == "destroy":
        refuse_protected(stack_name, stack)
        return stack.destroy(on_event=progress, color="never")
    raise ValueError(command)
