"""The policy pack's rules (policy/rules.py), run by `ops preview` and `ops up` on what the engine is
about to deploy, so nothing relies on remembering `--policy` (which loads the pack as an analyzer
and needs its virtualenv, policy/venv). Before `up`, a preview collects every resource's inputs (the
engine's camelCase view, as the pack sees them) and a violation stops it before any change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ops.backend import OpsError

SKIP = "NEXTCANDLE_POLICY"
"""Set to `off` to skip the check (the tests' many deployments; one test keeps it on)."""


@dataclass
class PolicyCheck:
    """An engine-event listener: the planned inputs of every resource of a preview."""

    planned: list[tuple[str, str, Mapping[str, Any]]] = field(default_factory=list)

    def __call__(self, event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        if pre is not None and pre.metadata.new is not None and pre.metadata.new.inputs is not None:
            meta = pre.metadata
            self.planned.append((meta.type, meta.urn, dict(meta.new.inputs)))

    def violations(self) -> list[str]:
        from pulumi_policy import ResourceValidationArgs

        from policy.rules import POLICIES

        found: list[str] = []
        for typ, urn, inputs in self.planned:
            name = urn.rsplit("::", 1)[-1]
            args = ResourceValidationArgs(typ, inputs, urn, name, None, None)  # type: ignore[arg-type]
            for policy in POLICIES:
                policy.validate(args, lambda message, _urn=None, rule=policy.name: found.append(f"{rule}: {message}"))  # type: ignore[misc, operator]
        return found

    def enforce(self, stack: str) -> None:
        if found := self.violations():
            raise OpsError(f"{stack} breaks the policy pack; nothing was deployed:\n" + "\n".join(f"  - {v}" for v in found))
