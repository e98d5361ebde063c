"""Where the pinned Pulumi engine (CLI and provider plugins) comes from: scripts/engine.sh."""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ops.backend import ROOT, OpsError

if TYPE_CHECKING:
    from pulumi.automation import PulumiCommand

ENGINE_SCRIPT = ROOT / "scripts" / "engine.sh"


@dataclass(frozen=True)
class Engine:
    """A directory with the `pulumi` CLI and, for a Go-module build, its provider plugins."""

    bin_dir: Path

    @staticmethod
    @functools.cache
    def locate() -> Engine:
        """NEXTCANDLE_ENGINE_BIN if set, else whatever scripts/engine.sh provides (it may build);
        looked up once per process (preflight and every stack of `up all` share it)."""
        if os.environ.get("NEXTCANDLE_ENGINE_BIN"):
            return Engine(Path(os.environ["NEXTCANDLE_ENGINE_BIN"]))
        found = subprocess.run(["bash", str(ENGINE_SCRIPT)], stdout=subprocess.PIPE, text=True)
        if found.returncode != 0 or not found.stdout.strip():
            raise OpsError("no Pulumi engine: scripts/engine.sh could neither download nor build it (see its messages above)")
        return Engine(Path(found.stdout.strip().splitlines()[-1]))

    @property
    def pulumi(self) -> Path:
        return self.bin_dir / "pulumi"

    def env(self) -> dict[str, str]:
        """The CLI finds plugins on PATH before it would try to download them."""
        return {"PATH": os.pathsep.join([str(self.bin_dir), os.environ.get("PATH", "")]), "PULUMI_SKIP_UPDATE_CHECK": "true"}

    def command(self) -> PulumiCommand:
        """The Automation API's handle on this CLI; made once per process, since making one runs
        `pulumi version` (preflight shows that version too)."""
        return _command(self.bin_dir)


@functools.cache
def _command(bin_dir: Path) -> PulumiCommand:
    from pulumi import automation as auto

    return auto.PulumiCommand(root=str(bin_dir.parent))
