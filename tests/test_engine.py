"""The program on the real engine: the Pulumi CLI and the docker and random provider plugins built by
scripts/engine.sh, through `python -m ops`, onto the tests' real swarm (its own dockerd).

`ops up dev` on an empty swarm brings up the platform (with every optional part that needs no
Cloudflare API: tunnel token, runners, alert webhook) and then dev; stg and prod follow and read the
platform through their StackReference. Images cannot be pulled here: the swarm runs the local images
scripts/images.sh builds under the pinned names (real programs, or stand-ins the README lists), so
every task starts and its health check decides whether it is healthy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from names import STACKS
from tests.conftest import ProgramRuns
from tests.dockerd import ensure_swarm, remove_everything, volume_identities
from tests.engine import (
    PLATFORM_CONFIG,
    PLATFORM_SECRETS,
    Checkout,
    Operator,
    exec_in,
    init_platform,
    running_tasks,
    steps,
    wait_until_healthy,
)
from tests.harness import ROOT

pytestmark = pytest.mark.engine

SERVICE = "docker:index/service:Service"
SECONDS = 1_000_000_000


@pytest.fixture(scope="module")
def deployed(operator: Operator, swarm: Any) -> Iterator[Operator]:
    """Every stack up, as an operator brings them up: `ops up dev` on an empty swarm brings the
    platform up first; stg and prod follow."""
    ensure_swarm(swarm)
    init_platform(operator)
    first = operator.ops("up", "dev").stdout
    assert first.index("up platform") < first.index("up dev")
    for stack in ("stg", "prod"):
        operator.ops("up", stack)
    volumes = volume_identities(swarm)
    try:
        yield operator
        # dev's volumes go with `destroy dev` (unprotected); every other one is the one created first.
        kept = {name: created for name, created in volumes.items() if not name.startswith("dev_")}
        assert {name: identity for name, identity in volume_identities(swarm).items() if name in kept} == kept, \
            "no data volume was replaced by any test"
    finally:
        remove_everything(swarm)


def _specs(swarm: Any) -> dict[str, dict[str, Any]]:
    return {s.name: s.attrs["Spec"] for s in swarm.services.list()}


def test_the_engine_creates_what_the_program_declares(deployed: Operator, swarm: Any, runs: ProgramRuns) -> None:
    expected = {
        s.swarm_name
        for run in (runs("platform", PLATFORM_CONFIG, PLATFORM_SECRETS), runs("dev"), runs("stg"), runs("prod"))
        for s in run.services
    }
    deployed_specs = _specs(swarm)
    assert set(deployed_specs) == expected

    postgres = deployed_specs["prod_postgres"]
    assert postgres["UpdateConfig"] | {"Delay": 0} == {
        "Parallelism": 1, "Delay": 0, "FailureAction": "rollback", "Monitor": 60 * SECONDS, "MaxFailureRatio": 0,
        "Order": "stop-first",
    }
    container = postgres["TaskTemplate"]["ContainerSpec"]
    assert container["Healthcheck"]["StartPeriod"] == 60 * SECONDS
    assert {s["File"]["Name"] for s in container["Secrets"]} == {
        "postgres_db", "postgres_user", "postgres_password", "postgres_tls_cert", "postgres_tls_key", "app_password"
    }
    shm = next(m for m in container["Mounts"] if m["Target"] == "/dev/shm")
    assert shm["TmpfsOptions"] == {"SizeBytes": 512 * 1024 * 1024, "Mode": 0o777}
    assert postgres["TaskTemplate"]["Resources"]["Limits"] == {"NanoCPUs": SECONDS, "MemoryBytes": 1024 * 1024 * 1024}
    assert postgres["TaskTemplate"]["RestartPolicy"]["MaxAttempts"] == 5
    assert deployed_specs["core_traefik"]["TaskTemplate"]["Placement"]["Constraints"] == ["node.role==manager"]
    assert "Global" in deployed_specs["shared_alloy"]["Mode"]

    # the environments joined the monitoring network the platform created, read through their StackReference
    monitoring = swarm.networks.list(names=["monitoring"])[0]
    assert monitoring.attrs["Driver"] == "overlay" and monitoring.attrs["Attachable"]
    for name in ("stg_redis-exporter", "prod_postgres-exporter", "shared_prometheus"):
        assert monitoring.id in {n["Target"] for n in deployed_specs[name]["TaskTemplate"]["Networks"]}

    published = {p["PublishedPort"]: p["PublishMode"] for spec in deployed_specs.values() for p in spec.get("EndpointSpec", {}).get("Ports", [])}
    assert published == {80: "ingress", 5432: "host", 5433: "host", 6379: "host"}, "prod publishes none; nor the dashboard, by default"
    storage = swarm.networks.list(names=["storage"])[0]
    for name in ("prod_postgres-backup", "shared_seaweedfs", "core_traefik"):
        assert storage.id in {n["Target"] for n in deployed_specs[name]["TaskTemplate"]["Networks"]}
    tunnel = swarm.networks.list(names=["core_tunnel"])[0]
    assert tunnel.attrs["IPAM"]["Config"] == [{"Subnet": "10.254.254.0/24", "Gateway": "10.254.254.1"}]
    assert {v.name for v in swarm.volumes.list()} >= {"dev_postgres_data", "prod_postgres_data", "shared_seaweedfs_data"}
    # Every secret and config a service mounts exists, and none is left over.
    mounted = {r["SecretName"] for spec in deployed_specs.values() for r in spec["TaskTemplate"]["ContainerSpec"].get("Secrets", [])}
    assert mounted == {s.name for s in swarm.secrets.list()}
    configs = {r["ConfigName"] for spec in deployed_specs.values() for r in spec["TaskTemplate"]["ContainerSpec"].get("Configs", [])}
    assert configs == {c.name for c in swarm.configs.list()}


def test_every_task_runs_and_turns_healthy(deployed: Operator, swarm: Any) -> None:
    assert swarm.local_images, "scripts/images.sh builds the local images (NEXTCANDLE_IMAGES); without them no task starts"
    problems = wait_until_healthy(swarm, timeout=900)
    assert not problems, problems
    rolled_back = [s.name for s in swarm.services.list() if (s.attrs.get("UpdateStatus") or {}).get("State", "").startswith("rollback")]
    assert not rolled_back
    status = deployed.ops("status").stdout
    assert "FAIL" not in status.upper() and "shared_seaweedfs" in status, status


SCRAPED_EXPORTERS = {"prometheus", "traefik", "node-exporter", "redis", "postgres", "object-storage", "alertmanager", "backups"}
"""Prometheus jobs served by the real programs here (the others scrape declared stand-ins)."""


def test_prometheus_scrapes_every_exporter(deployed: Operator, swarm: Any) -> None:
    assert not wait_until_healthy(swarm, timeout=300)
    query = 'wget -qO- "http://prometheus:$(cat /run/secrets/prometheus_password)@127.0.0.1:9090/api/v1/targets?state=active"'
    deadline = time.monotonic() + 180
    while True:
        targets = json.loads(exec_in(swarm, "shared_prometheus", query))["data"]["activeTargets"]
        down = {(t["labels"]["job"], t["labels"].get("instance"), t.get("lastError")) for t in targets
                if t["labels"]["job"] in SCRAPED_EXPORTERS and t["health"] != "up"}
        jobs = {t["labels"]["job"] for t in targets if t["health"] == "up"}
        per_environment = {job: len([t for t in targets if t["labels"]["job"] == job]) for job in ("postgres", "redis")}
        settled = not down and jobs >= SCRAPED_EXPORTERS and per_environment == {"postgres": 3, "redis": 3}
        if settled or time.monotonic() > deadline:
            break
        time.sleep(10)
    assert settled, f"down: {down}; up jobs: {jobs}; exporters per job: {per_environment}"


def test_updates_restart_only_the_tasks_they_must(deployed: Operator, swarm: Any) -> None:
    """A no-op up restarts nothing; a label change (n8n's router, with its many environment
    variables) restarts nothing; a replica change only removes a task (this node has no CPU left to
    reserve for another)."""
    assert not wait_until_healthy(swarm, timeout=300)
    before = running_tasks(swarm)
    for stack in STACKS:
        deployed.ops("up", stack)
    assert running_tasks(swarm) == before, "a no-op up restarts no task"
    deployed.set_config("platform", "n8nOwnerSetUp", "true")
    deployed.set_config("platform", "runnerReplicas", "1")
    try:
        deployed.ops("up", "platform")
        assert not wait_until_healthy(swarm, timeout=300)
        after = running_tasks(swarm)
        restarted = sorted(name for name, tasks in before.items() if not tasks <= after[name] and name != "runner_github-runner")
        assert not restarted, f"restarted by a label and a replica change: {restarted}"
        runners = after["runner_github-runner"]
        assert len(runners) == 1 and runners <= before["runner_github-runner"], "one of the runners goes, the other keeps running"
    finally:
        deployed.pulumi("config", "rm", "nextcandle:n8nOwnerSetUp", "-s", "platform")
        deployed.pulumi("config", "rm", "nextcandle:runnerReplicas", "-s", "platform")
        deployed.ops("up", "platform")
    deployed.ops("preview", "platform", "--refresh", "--expect-no-changes")


def _psql(swarm: Any, sql: str, env: str = "dev") -> str:
    login = 'PGPASSWORD="$(cat /run/secrets/postgres_password)" psql -v ON_ERROR_STOP=1 -tA -h 127.0.0.1 ' \
            '-U "$(cat /run/secrets/postgres_user)" -d "$(cat /run/secrets/postgres_db)"'
    return exec_in(swarm, f"{env}_postgres", f"{login} -c \"{sql}\"").strip()


def test_a_backup_brings_dev_rows_back_and_they_last_through_stop_and_start(deployed: Operator, swarm: Any) -> None:
    assert not wait_until_healthy(swarm, timeout=300)
    assert _psql(swarm, "SELECT extname FROM pg_extension WHERE extname = 'vector'") == "vector"
    _psql(swarm, "CREATE TABLE marker (id int PRIMARY KEY, embedding vector(3)); INSERT INTO marker VALUES (1, '[1,2,3]')")
    # One backup through the real object store, then the table is lost and restored: the operator's
    # commands, which run the backup service's own scripts in its container.
    assert "backup: s3://" in deployed.ops("backup", "dev").stdout
    _psql(swarm, "DROP TABLE marker")
    assert "restored into" in deployed.ops("restore", "dev", "--yes").stdout
    assert _psql(swarm, "SELECT embedding FROM marker WHERE id = 1") == "[1,2,3]"
    deployed.ops("stop", "dev")
    deployed.ops("start", "dev")
    assert not wait_until_healthy(swarm, timeout=300, names=("dev_postgres",))
    assert _psql(swarm, "SELECT embedding FROM marker WHERE id = 1") == "[1,2,3]"


def test_an_environment_s_backup_key_reaches_no_other_environment_s_backups(deployed: Operator, swarm: Any) -> None:
    """On the real SeaweedFS: dev's identity lists its own bucket, and is refused stg's, which exists."""
    assert not wait_until_healthy(swarm, timeout=300, names=("shared_seaweedfs", "dev_postgres-backup", "stg_postgres-backup"))
    deployed.ops("backup", "stg")
    deployed.ops("backup", "dev")
    as_dev = ('AWS_ACCESS_KEY_ID="$(cat /run/secrets/backup_s3_access_key)" AWS_SECRET_ACCESS_KEY="$(cat /run/secrets/backup_s3_secret_key)" '
              "AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url http://object-storage:8333 s3 ls --recursive")
    assert ".dump.gpg" in exec_in(swarm, "dev_postgres-backup", f"{as_dev} s3://dev-backups/")
    refused = exec_in(swarm, "dev_postgres-backup", f"{as_dev} s3://stg-backups/ 2>&1 || echo refused")
    assert "refused" in refused and "AccessDenied" in refused and ".dump" not in refused, refused
    listed = exec_in(swarm, "dev_postgres-backup", f"{as_dev.removesuffix(' s3 ls --recursive')} s3 ls")
    assert "dev-backups" in listed and "stg-backups" not in listed, listed
    # On the storage network itself, only the S3 API answers: master, volume and filer (HTTP, gRPC) are on loopback.
    probe = "wget -q -T 3 -O /dev/null http://object-storage:{port}/ 2>&1; true"
    assert "HTTP/1.1 403" in exec_in(swarm, "dev_postgres-backup", probe.format(port=8333)), "S3 answers, and wants a signature"
    for port in (9333, 8080, 8888, 19333, 18080, 18888):
        answer = exec_in(swarm, "dev_postgres-backup", probe.format(port=port))
        assert "refused" in answer, f"port {port}: {answer}"
    # The S3 gateway's gRPC port (identity changes) answers only in TLS, and wants a client certificate.
    answer = exec_in(swarm, "dev_postgres-backup", f"python3 -c '{GRPC_PROBE}'")
    assert "handshake TLSv1.3" in answer and ("then refused" in answer or "then answered nothing" in answer), answer
    assert "plain gRPC: no answer" in answer, answer


GRPC_PROBE = """
import socket, ssl
PREFACE = b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
context.set_alpn_protocols(["h2"])
with context.wrap_socket(socket.create_connection(("object-storage", 18333), timeout=5)) as tls:
    print("handshake", tls.version())
    try:
        tls.sendall(PREFACE)
        print("then answered", tls.recv(64).hex() or "nothing")
    except (ssl.SSLError, OSError) as error:
        print("then refused:", error)
with socket.create_connection(("object-storage", 18333), timeout=5) as plain:
    plain.sendall(PREFACE)
    try:
        reply = plain.recv(64)
    except OSError:
        reply = b""
    print("plain gRPC:", "no answer" if len(reply) < 4 or reply[3] != 4 else "a SETTINGS frame")
""".replace("'", '"')
"""A client without a certificate, in TLS then in plain HTTP/2 (a gRPC server answers its preface with SETTINGS)."""


def test_a_point_in_time_restore_brings_dev_back_to_a_noted_moment(deployed: Operator, swarm: Any) -> None:
    """PostgreSQL archives its WAL into the WAL volume, the backup service ships it through the real
    object store, and `ops restore dev --to` replays it onto the base backup `ops backup dev` took."""
    assert not wait_until_healthy(swarm, timeout=300)
    _psql(swarm, "CREATE TABLE moments (note text); INSERT INTO moments VALUES ('in-base')")
    assert "base-backup: s3://" in deployed.ops("backup", "dev").stdout
    time.sleep(1.5)  # base backups are named by the second they finished
    _psql(swarm, "INSERT INTO moments VALUES ('before')")
    noted = _psql(swarm, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00'")
    time.sleep(1.5)
    _psql(swarm, "INSERT INTO moments VALUES ('after'); DELETE FROM moments WHERE note = 'in-base'")
    restored = deployed.ops("restore", "dev", "--to", noted, "--yes").stdout
    assert "recovery finished" in restored, restored
    assert _psql(swarm, "SELECT string_agg(note, ',' ORDER BY note) FROM moments") == "before,in-base"
    assert not wait_until_healthy(swarm, timeout=300, names=("dev_postgres", "dev_postgres-backup"))


def test_a_postgres_major_upgrade_carries_dev_over_and_can_be_undone_and_confirmed(deployed: Operator, swarm: Any) -> None:
    """17 to 18 on real binaries (the test swarm's images: Debian trixie's 17, forky's 18): a dump with
    17's tools, restored by 18's; --undo finds the 17 volume as it was; --confirm deletes the 18 one."""
    assert not wait_until_healthy(swarm, timeout=300)
    _psql(swarm, "CREATE TABLE carried (id int PRIMARY KEY, embedding vector(3)); INSERT INTO carried VALUES (1, '[1,2,3]')")
    done = deployed.ops("upgrade-postgres", "dev", "--to", "18", "--yes").stdout
    assert "restored with PostgreSQL 18's pg_restore" in done and "--confirm" in done, done
    assert not wait_until_healthy(swarm, timeout=300, names=("dev_postgres", "dev_postgres-backup"))
    assert _psql(swarm, "SELECT current_setting('server_version_num')::int / 10000") == "18"
    assert _psql(swarm, "SELECT embedding FROM carried WHERE id = 1") == "[1,2,3]"
    assert _psql(swarm, "SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'vector'") == "t"
    _psql(swarm, "INSERT INTO carried VALUES (2, '[4,5,6]')")
    assert {"dev_postgres_data", "dev_postgres18_data"} <= {v.name for v in swarm.volumes.list()}, "the 17 volume is kept"
    deployed.ops("preview", "dev", "--expect-no-changes")
    again = deployed.ops("upgrade-postgres", "dev", "--to", "18", "--yes", ok=False)
    assert again.returncode == 2 and "not confirmed yet" in again.stderr, again.stderr

    deployed.ops("upgrade-postgres", "dev", "--undo", "--yes")
    assert not wait_until_healthy(swarm, timeout=300, names=("dev_postgres", "dev_postgres-backup"))
    assert _psql(swarm, "SELECT current_setting('server_version_num')::int / 10000") == "17"
    assert _psql(swarm, "SELECT count(*) FROM carried") == "1", "the 17 volume as it was before the upgrade"
    deployed.ops("upgrade-postgres", "dev", "--confirm", "--yes")
    assert "dev_postgres18_data" not in {v.name for v in swarm.volumes.list()}
    assert not wait_until_healthy(swarm, timeout=300, names=("dev_postgres", "dev_postgres-backup"))
    deployed.ops("preview", "dev", "--expect-no-changes")


def test_applications_log_in_as_app_without_superuser_rights(deployed: Operator, swarm: Any) -> None:
    """The real PostgreSQL image's start runs app-role.sh; the app login works and is no superuser."""
    assert not wait_until_healthy(swarm, timeout=300, names=("dev_postgres",))
    as_app = ('PGPASSWORD="$(cat /run/secrets/app_password)" psql -tA -h 127.0.0.1 -U app -d "$(cat /run/secrets/postgres_db)" -c '
              '"SELECT rolsuper FROM pg_roles WHERE rolname = current_user" 2>&1; true')
    deadline = time.monotonic() + 120
    while (answer := exec_in(swarm, "dev_postgres", as_app).strip()) != "f" and time.monotonic() < deadline:
        time.sleep(2)
    assert answer == "f", answer
    url = deployed.pulumi("stack", "output", "postgres_url", "-s", "dev", "--show-secrets").strip()
    assert url.startswith("postgresql://app:"), "what applications are given"


def test_rotated_passwords_reach_every_service_that_uses_them(deployed: Operator, swarm: Any) -> None:
    """stg's PostgreSQL password (protected, and kept in PostgreSQL's data), dev's Redis password."""
    assert not wait_until_healthy(swarm, timeout=300)
    old = exec_in(swarm, "stg_postgres", "cat /run/secrets/postgres_password")
    _psql(swarm, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)", env="stg")
    rotated = deployed.ops("rotate", "stg", "postgres-password", "--yes").stdout
    assert "the role has the new password" in rotated, rotated
    assert exec_in(swarm, "stg_postgres", "cat /run/secrets/postgres_password") != old
    assert _psql(swarm, "SELECT x FROM kept", env="stg") == "7", "the new password logs in, the data stayed"
    deployed.ops("rotate", "dev", "redis-password", "--yes")
    assert not wait_until_healthy(swarm, timeout=300, names=("stg_postgres-exporter", "stg_postgres-backup", "dev_redis-exporter", "dev_redis"))
    assert deployed.ops("status").returncode == 0
    deployed.ops("preview", "stg", "--expect-no-changes")


def test_ops_checks_the_policy_pack_on_what_the_engine_plans(deployed: Operator) -> None:
    """The rules see the engine's own inputs of every resource (ops/policy_check.py), and pass them."""
    deployed.ops("up", "dev", env={"NEXTCANDLE_POLICY": "on"})
    deployed.ops("preview", "platform", env={"NEXTCANDLE_POLICY": "on"})


def test_the_buckets_get_a_second_copy_in_a_volume_of_their_own(deployed: Operator, swarm: Any) -> None:
    """No off-site target here: `ops backup objects` copies every bucket of the running SeaweedFS
    (the environments' dumps among them) into shared_object_copies."""
    assert not wait_until_healthy(swarm, timeout=300, names=("shared_seaweedfs", "shared_backup"))
    deployed.ops("backup", "dev")
    copied = deployed.ops("backup", "objects").stdout
    assert "copied to /data/object-copies/" in copied, copied
    listed = exec_in(swarm, "shared_backup", "find /data/object-copies -type f")
    assert "/dev/" in listed and ".gpg" in listed, listed


def test_the_state_is_backed_up_with_the_platform_and_restores_only_with_its_passphrase(deployed: Operator) -> None:
    state = Path(deployed.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    deployed.ops("backup", "state")
    refused = deployed.ops("restore", "state", "--yes", ok=False, env={"PULUMI_CONFIG_PASSPHRASE": "not-the-passphrase"})
    assert refused.returncode == 2 and "does not open with this PULUMI_CONFIG_PASSPHRASE" in refused.stderr
    shutil.rmtree(state)  # lost
    restored = deployed.ops("restore", "state", "--yes").stdout
    assert f"state restored into {state}" in restored and "replaced state" not in restored
    deployed.ops("preview", "dev", "--expect-no-changes")


def test_an_application_container_reaches_n8n_only_through_traefik(deployed: Operator, swarm: Any) -> None:
    """A container on the networks applications join (traefik-public, monitoring), as `docker run
    --network` would attach it: n8n's port and cloudflared's metrics do not answer it; n8n's route
    through Traefik does, behind basic auth."""
    from components import images

    assert not wait_until_healthy(swarm, timeout=300, names=("shared_n8n", "core_cloudflared", "core_traefik"))
    rule = swarm.services.get("shared_n8n").attrs["Spec"]["Labels"]["traefik.http.routers.n8n.rule"]
    host = rule.split("`")[1]
    probe = swarm.containers.run(images.POSTGRES_EXPORTER, entrypoint=["sleep", "300"], network="traefik-public", detach=True)
    try:
        swarm.networks.get("monitoring").connect(probe)

        def fetch(url: str, *options: str) -> str:
            result = probe.exec_run(["sh", "-c", f"wget -q -T 5 -O /dev/null {' '.join(options)} {url} 2>&1 && echo answered"])
            return str(result.output.decode(errors="replace"))

        # By task address: this kernel has no IPVS, so a service's virtual IP does not answer here.
        assert "answered" in fetch("http://tasks.core_traefik:8080/ping"), "the probe's networks work"
        for unreachable in ("shared_n8n:5678/healthz", "core_cloudflared:20241/metrics"):
            assert "answered" not in fetch(f"http://{unreachable}") + fetch(f"http://tasks.{unreachable}"), unreachable
        assert "401" in fetch("http://tasks.core_traefik/", f"--header 'Host: {host}'"), "routed, behind the dashboard's basic auth"
    finally:
        probe.remove(force=True)


def test_the_docker_api_reaches_each_client_only_as_its_allow_list_says(deployed: Operator, swarm: Any) -> None:
    """The proxy's socket for each client, against this swarm's real Docker engine: the client's calls
    answer, a write, a secret and another client's calls get 403. No client has the raw socket, and the
    host's /run (with it) is masked where `/` is bound. Traefik routes n8n through its socket (the test
    above gets n8n's basic auth through Traefik)."""
    names = ("core_docker-api-proxy", "core_traefik", "shared_cadvisor", "shared_node-exporter", "shared_alloy")
    assert not wait_until_healthy(swarm, timeout=300, names=names)

    def status(client: str, method: str, path: str) -> str:
        request = f"{method} {path} HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n"
        answer = exec_in(swarm, "core_docker-api-proxy", f"printf '{request}' | socat -t 5 - UNIX-CONNECT:/var/run/docker-api/{client}/docker.sock")
        return answer.split(" ", 2)[1]

    allowed = {"traefik": ["/_ping", "/v1.41/services", "/v1.41/tasks", "/v1.41/networks"],
               "alloy": ["/_ping", "/v1.41/containers/json", "/v1.41/networks"], "cadvisor": ["/_ping", "/v1.41/info", "/v1.41/images/json"]}
    for client, paths in allowed.items():
        assert [status(client, "GET", path) for path in paths] == ["200"] * len(paths), client
        refused = [("GET", "/v1.41/secrets"), ("POST", "/v1.41/containers/create"), ("GET", "/v1.41/swarm")]
        refused += [("GET", path) for other, others in allowed.items() if other != client for path in others if path not in paths]
        assert {status(client, method, path) for method, path in refused} == {"403"}, client
    info = exec_in(swarm, "core_docker-api-proxy",
                   "printf 'GET /v1.41/info HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n' | socat -t 5 - UNIX-CONNECT:/var/run/docker-api/cadvisor/docker.sock")
    assert f'"ID":"{swarm.info()["ID"]}"' in info, "the proxy reaches this swarm's engine, never the machine's own Docker"
    for client in ("core_traefik", "shared_alloy", "shared_cadvisor"):
        exec_in(swarm, client, "test -S /var/run/docker-api/docker.sock && test ! -e /var/run/docker.sock")
    for agent in ("shared_cadvisor", "shared_node-exporter"):
        assert exec_in(swarm, agent, "ls -A /rootfs/run").strip() == "", f"{agent}: the host's /run is masked"


@pytest.mark.parametrize("stack", STACKS)
def test_a_second_preview_changes_nothing(deployed: Operator, stack: str) -> None:
    deployed.ops("preview", stack, "--expect-no-changes")
    deployed.ops("preview", stack, "--refresh", "--expect-no-changes")


def _replaced(kind: str, name: str) -> set[tuple[str, str, str]]:
    return {(op, kind, name) for op in ("create-replacement", "replace", "delete-replaced")}


@pytest.mark.parametrize(
    ("stack", "key", "value", "secret", "expected"),
    [
        # Configs are immutable and named by content: a new one, the service rolled, the old one gone.
        ("platform", "scrapeInterval", "30s", False,
         _replaced("ServiceConfig", "shared-prometheus") | {("update", "Service", "shared-prometheus")}),
        # The runners' own lifecycle: a new token or their stop touches runner resources only.
        ("platform", "runnerAccessToken", "ghp_rotated0123456789", True,
         _replaced("Secret", "runner-token") | {("update", "Service", "runner-github-runner")}),
        ("platform", "runnerReplicas", "3", False, {("update", "Service", "runner-github-runner")}),
        ("platform", "runnersStopped", "true", False, {("update", "Service", "runner-github-runner")}),
        ("prod", "postgresCpus", "0.50-2.00", False, {("update", "Service", "prod-postgres")}),
    ],
)
def test_one_setting_changes_exactly_its_resources(
    deployed: Operator, stack: str, key: str, value: str, secret: bool, expected: set[tuple[str, str, str]]
) -> None:
    before = deployed.pulumi("config", "get", f"nextcandle:{key}", "-s", stack) if _is_set(deployed, stack, key) else None
    deployed.set_config(stack, key, value, secret)
    try:
        planned = steps(deployed.ops("preview", stack).stdout)
        assert planned == expected, sorted(planned)
    finally:
        if before is None:
            deployed.pulumi("config", "rm", f"nextcandle:{key}", "-s", stack)
        else:
            deployed.set_config(stack, key, before.strip(), secret)
    deployed.ops("preview", stack, "--expect-no-changes")


def test_invalid_settings_end_with_every_problem_and_its_fix(deployed: Operator) -> None:
    """What the operator reads last after a refused run: the problems, not only their heading."""
    deployed.set_config("stg", "postgresCpus", "lots")
    deployed.set_config("stg", "backupSchedule", "0 3 * *")
    try:
        refused = deployed.ops("preview", "stg", ok=False)
        last = refused.stderr.strip().splitlines()[-3:]
        assert refused.returncode != 0 and last[0].endswith("Invalid configuration for stack 'stg':"), refused.stderr
        assert {line.split()[1].rstrip(":") for line in last[1:]} == {"nextcandle:postgresCpus/postgresMemory", "nextcandle:backupSchedule"}, last
    finally:
        for key in ("postgresCpus", "backupSchedule"):
            deployed.pulumi("config", "rm", f"nextcandle:{key}", "-s", "stg")


def test_the_pulumi_cli_through_ops_needs_no_backend_or_engine_path(deployed: Operator) -> None:
    """`python -m ops pulumi ...`: the README's way to read outputs and set secrets."""
    env = {k: v for k, v in deployed.env.items() if k not in ("PATH", "NEXTCANDLE_PROJECT_DIR")} | {"PATH": os.environ["PATH"]}
    env["NEXTCANDLE_PROJECT_DIR"] = str(deployed.project)
    outputs = subprocess.run([sys.executable, "-m", "ops", "pulumi", "stack", "output", "-s", "dev", "--show-secrets", "--json"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert outputs.returncode == 0, outputs.stderr
    assert json.loads(outputs.stdout)["postgres_password"] == deployed.output("dev", "postgres_password")


def test_the_plain_pulumi_cli_runs_the_program_as_users_type_it(deployed: Operator, swarm: Any, tmp_path: Path) -> None:
    """`pulumi install/preview/up/config/destroy` in a checkout: Pulumi.yaml's runtime options and
    __main__.py through the language host scripts/engine.sh builds, the policy pack as an analyzer."""
    checkout = Checkout.of(deployed, tmp_path)

    def pulumi(*args: str, ok: bool = True) -> str:
        result = checkout.pulumi(*args, ok=ok)
        return result.stdout + result.stderr

    pulumi("install")
    # As .github/workflows/preview.yml runs it; the pack's six rules ran and passed.
    previewed = pulumi("preview", "-s", "dev", "--policy-pack", "policy", "--expect-no-changes")
    assert "nextcandle-swarm" in previewed and "mandatory" not in previewed, previewed
    for stack in ("platform", "dev"):
        pulumi("up", "-s", stack, "--yes")

    # A secret set as the README says becomes the Docker secret the app_secrets output names.
    pulumi("config", "set", "--secret", "nextcandle:appSecrets", "HF_TOKEN=hf_plaincli0123456789", "-s", "dev")
    pulumi("up", "-s", "dev", "--yes")
    swarm_name = json.loads(checkout.pulumi("stack", "output", "app_secrets", "-s", "dev", "--json").stdout)["HF_TOKEN"]
    assert swarm_name in {secret.name for secret in swarm.secrets.list()}
    pulumi("config", "rm", "nextcandle:appSecrets", "-s", "dev")
    pulumi("up", "-s", "dev", "--yes")
    assert swarm_name not in {secret.name for secret in swarm.secrets.list()}

    # A service breaking the conventions fails that preview, naming the rule, before anything is made.
    main = checkout.path / "__main__.py"
    main.write_text(main.read_text() + "\nimport pulumi_docker\npulumi_docker.Service('policy-probe', task_spec={'container_spec': {'image': 'busybox'}})\n")
    refused = pulumi("preview", "-s", "dev", "--policy-pack", "policy", ok=False)
    assert "pinned-image" in refused and "policy-probe" in refused, refused

    # Destroying an environment with protected data is refused, and nothing of it goes.
    services = {s.name for s in swarm.services.list() if s.name.startswith("stg_")}
    refused = pulumi("destroy", "-s", "stg", "--yes", ok=False)
    assert "protected" in refused, refused
    assert {s.name for s in swarm.services.list() if s.name.startswith("stg_")} == services
    deployed.ops("preview", "stg", "--expect-no-changes")
    deployed.ops("preview", "dev", "--expect-no-changes")


def _is_set(operator: Operator, stack: str, key: str) -> bool:
    return f"nextcandle:{key}" in operator.pulumi("config", "-s", stack, "--json")


def test_replacing_named_services_completes_and_keeps_their_data(deployed: Operator, swarm: Any) -> None:
    """A service's name, mode and networks force replacement; with fixed names (stg_postgres) the
    old service must go first (delete_before_replace), and the data volume stays."""
    before = {name: swarm.services.get(name).id for name in ("stg_postgres", "stg_redis")}
    volume = volume_identities(swarm)["stg_postgres_data"]
    urns = [deployed.urn("stg", SERVICE, name) for name in before]
    # `pulumi up --replace` through the Automation API, as `ops up` runs the program.
    script = ("import sys; from ops.backend import Backend; from ops.deploy import select_stack; "
              "select_stack('stg', Backend.resolve()).up(replace=sys.argv[1:], color='never')")
    result = subprocess.run([sys.executable, "-c", script, *urns], cwd=ROOT, env=deployed.env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(swarm.services.get(name).id != old_id for name, old_id in before.items())
    assert volume_identities(swarm)["stg_postgres_data"] == volume
    deployed.ops("preview", "stg", "--expect-no-changes")


def test_drift_shows_in_a_refreshing_preview_and_up_repairs_it(deployed: Operator, swarm: Any) -> None:
    swarm.services.get("dev_redis").scale(3)
    drift = deployed.ops("preview", "dev", "--refresh", "--expect-no-changes", ok=False)
    assert drift.returncode == 2 and ("update", "Service", "dev-redis") in steps(drift.stdout)
    # The scheduled drift check: every stack, exit 2, the drifted one named.
    report = deployed.ops("drift", ok=False)
    assert report.returncode == 2 and "drift dev: 1 to update" in report.stdout, report.stdout + report.stderr
    deployed.ops("up", "dev", "--refresh")
    assert swarm.services.get("dev_redis").attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 1}}
    deployed.ops("preview", "dev", "--refresh", "--expect-no-changes")


def test_destroy_refuses_a_stack_with_protected_data(deployed: Operator, swarm: Any) -> None:
    services = {s.name for s in swarm.services.list() if s.name.startswith("prod_")}
    refused = deployed.ops("destroy", "prod", "--yes", ok=False)
    assert refused.returncode == 2
    assert "prod holds protected data (" in refused.stderr and "prod-postgres-data" in refused.stderr
    assert "nothing was destroyed" in refused.stderr and "python -m ops pulumi state unprotect --all -s prod" in refused.stderr
    assert refused.stderr.count("prod-postgres-password") == 1, "each protected name once (a password and its secret share it)"
    assert {s.name for s in swarm.services.list() if s.name.startswith("prod_")} == services
    deployed.ops("preview", "prod", "--expect-no-changes")


def test_the_platform_is_not_destroyed_while_an_environment_references_it(deployed: Operator, swarm: Any) -> None:
    services = {s.name for s in swarm.services.list()}
    refused = deployed.ops("destroy", "platform", "--yes", ok=False)
    assert refused.returncode == 2 and "the platform is still referenced by dev, prod, stg" in refused.stderr
    assert {s.name for s in swarm.services.list()} == services


def deployed_name_in(resource_name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether a Pulumi resource name (dev-postgres, runner-github-runner) is a service of `prefixes` (dev_, runner_)."""
    return resource_name.replace("shared-services-", "shared-").startswith(tuple(p.replace("_", "-") for p in prefixes))


def _snapshot(swarm: Any) -> dict[str, Any]:
    """What stop and start must leave alone: volumes, secrets (by id) and the passwords in them."""
    return {
        "volumes": volume_identities(swarm),
        "secrets": {s.id for s in swarm.secrets.list()},
    }


def _replicas(swarm: Any, prefix: str) -> dict[str, int | str]:
    found: dict[str, int | str] = {}
    for service in swarm.services.list():
        if service.name.startswith(prefix):
            mode = service.attrs["Spec"]["Mode"]
            found[service.name] = mode["Replicated"]["Replicas"] if "Replicated" in mode else "global"
    return found


# The platform last: see the note on Swarm's rollbacks below.
@pytest.mark.parametrize(
    ("target", "stack", "prefixes"),
    [("dev", "dev", ("dev_",)), ("runner", "platform", ("runner_",)), ("platform", "platform", ("core_", "shared_", "runner_"))],
)
def test_stop_and_start_keep_data_and_settle(deployed: Operator, swarm: Any, target: str, stack: str, prefixes: tuple[str, ...]) -> None:
    """Stop scales to zero and a refreshing preview then shows no drift; start brings every task of
    the stack back healthy, on the same volumes and secrets."""
    before, running = _snapshot(swarm), {p: _replicas(swarm, p) for p in prefixes}
    stopped = steps(deployed.ops("stop", target).stdout)
    touched = {name for _, _, name in stopped}
    assert stopped and {(op, kind) for op, kind, _ in stopped} == {("update", "Service")}, stopped
    assert all(deployed_name_in(name, prefixes) for name in touched), f"stop {target} touched {sorted(touched)}"
    try:
        for prefix in prefixes:
            for name, replicas in _replicas(swarm, prefix).items():
                spec = swarm.services.get(name).attrs["Spec"]
                assert spec["Labels"].get("nextcandle.stopped") == "true", name
                if replicas == "global":
                    assert "node.labels.nextcandle.stopped==true" in spec["TaskTemplate"]["Placement"]["Constraints"]
                else:
                    assert replicas == 0, name
        assert _snapshot(swarm) == before, "stop touches no volume, secret or password"
        settled = deployed.ops("preview", stack, "--refresh", "--expect-no-changes", ok=False)
        updates = {s.name: s.attrs.get("UpdateStatus") for s in swarm.services.list() if s.name.startswith(prefixes)}
        assert settled.returncode == 0, f"{settled.stdout}\n{settled.stderr}\nSwarm's update status: {updates}"
        status = deployed.ops("status", stack, ok=False).stdout
        for prefix in prefixes:
            for name in _replicas(swarm, prefix):
                (line,) = [line for line in status.splitlines() if line.split()[:1] == [name]]
                assert line.endswith("stopped"), line
    finally:
        deployed.ops("start", target)
    assert {p: _replicas(swarm, p) for p in prefixes} == running
    assert not [s.name for s in swarm.services.list() if s.name.startswith(prefixes) and "nextcandle.stopped" in s.attrs["Spec"]["Labels"]]
    assert _snapshot(swarm) == before
    names = tuple(name for prefix in prefixes for name in _replicas(swarm, prefix))
    assert not wait_until_healthy(swarm, timeout=300, names=names)
    deployed.ops("preview", stack, "--refresh", "--expect-no-changes")


def test_destroying_dev_leaves_the_platform_and_the_other_environments(deployed: Operator, swarm: Any) -> None:
    kept = {s.name: s.id for s in swarm.services.list() if not s.name.startswith("dev_")}
    deployed.ops("destroy", "dev", "--yes")
    assert not [s for s in swarm.services.list() if s.name.startswith("dev_")]
    assert {s.name: s.id for s in swarm.services.list()} == kept


def test_a_changed_config_is_applied_while_its_service_uses_it(deployed: Operator, swarm: Any) -> None:
    """Swarm configs are immutable and in use: the new one must exist before the old one goes, and the
    new task must turn healthy (the update is health-gated) with no task failing on the way."""
    before = {c.name for c in swarm.configs.list() if c.name.startswith("prometheus-")}
    tasks_before = {t["ID"] for t in swarm.services.get("shared_prometheus").tasks()}
    deployed.set_config("platform", "scrapeInterval", "30s")
    try:
        applied = deployed.ops("up", "platform").stdout
        assert applied.index("create-replacement") < applied.index("delete-replaced"), applied
        mounted = {c["ConfigName"] for c in swarm.services.get("shared_prometheus").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"]}
        now = {c.name for c in swarm.configs.list() if c.name.startswith("prometheus-")}
        assert len(now) == 1 and now <= mounted and not now & before, "the new config is mounted and the old one is gone"
        assert not wait_until_healthy(swarm, timeout=300, names=("shared_prometheus",))
        new_tasks = [t for t in swarm.services.get("shared_prometheus").tasks() if t["ID"] not in tasks_before]
        assert new_tasks and not [t for t in new_tasks if t["Status"]["State"] in ("failed", "rejected")], new_tasks
        deadline = time.monotonic() + 180  # Swarm monitors the new task for 60 s before it calls the update complete
        while (state := swarm.services.get("shared_prometheus").attrs.get("UpdateStatus", {}).get("State")) == "updating" \
                and time.monotonic() < deadline:
            time.sleep(5)
        assert state in (None, "completed"), state
    finally:
        deployed.pulumi("config", "rm", "nextcandle:scrapeInterval", "-s", "platform")
    deployed.ops("up", "platform")
    deployed.ops("preview", "platform", "--expect-no-changes")
