"""The laptop profile on the real engine and swarm: `platformCoreOnly` and dev without backups, as
README "On a laptop" types it, come up healthy with only the seeds' `start.sh dev` services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dockerd import ensure_swarm, remove_everything
from tests.engine import init_platform, make_operator, wait_until_healthy

pytestmark = pytest.mark.engine


def test_a_core_only_platform_and_dev_come_up_healthy(engine_bin: Path, swarm: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    ensure_swarm(swarm)
    remove_everything(swarm)
    operator = make_operator(engine_bin, swarm.docker_host, tmp_path_factory.mktemp("laptop"))
    try:
        init_platform(operator, without=("runnerEnabled",))
        operator.set_config("platform", "platformCoreOnly", "true")
        operator.pulumi("stack", "init", "dev", "--secrets-provider", "passphrase")
        operator.set_config("dev", "backupEnabled", "false")
        operator.ops("up", "dev")
        services = {s.name for s in swarm.services.list()}
        assert services == {
            "core_docker-api-proxy", "core_traefik", "core_cloudflared", "dev_postgres", "dev_postgres-exporter", "dev_redis", "dev_redis-exporter"
        }, services
        assert not wait_until_healthy(swarm, timeout=300)
        for stack in ("platform", "dev"):
            operator.ops("preview", stack, "--expect-no-changes")
        # Backing up to the platform's store, which this platform has not: refused with the fix.
        operator.set_config("dev", "backupEnabled", "true")
        refused = operator.ops("preview", "dev", ok=False)
        assert refused.returncode != 0 and "platformCoreOnly" in refused.stdout + refused.stderr, refused.stdout[-2000:]
    finally:
        remove_everything(swarm)
