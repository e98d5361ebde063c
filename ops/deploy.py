"""up, preview and destroy through the Pulumi Automation API, with progress on the terminal."""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ops.backend import ROOT, Backend
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


def select_stack(name: str, backend: Backend, work_dir: Path = ROOT) -> Any:
    """The stack, with Pulumi.yaml and Pulumi.<stack>.yaml from work_dir and the pinned engine."""
    from pulumi import automation as auto

    engine = Engine.locate()
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        env_vars={**backend.env(), **engine.env()},
        secrets_provider="passphrase",
        pulumi_command=engine.command(),
    )
    return auto.create_or_select_stack(stack_name=name, project_name=PROJECT, program=run_program, opts=options)


def run(
    command: str,
    stack_name: str,
    backend: Backend,
    policy: bool = False,
    refresh: bool = False,
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
        return stack.preview(on_event=progress, policy_packs=packs, color="never", diff=True, refresh=refresh)
    if command == "destroy":
        return stack.destroy(on_event=progress, color="never")
    raise ValueError(command)
