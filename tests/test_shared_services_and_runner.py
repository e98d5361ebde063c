"""Object storage, n8n and the GitHub runners."""

from __future__ import annotations

import json

from tests.conftest import FULL, FULL_SECRETS, ProgramRuns
from tests.harness import SECRET, SERVICE, ProgramRun, changed_resources, environment, run_program


def container(run: ProgramRun, service: str) -> dict:
    return run.service(service).inputs["taskSpec"]["containerSpec"]


def routers(run: ProgramRun, service: str) -> dict[str, str]:
    return {k: v for k, v in run.service(service).labels.items() if k.startswith("traefik.")}


def test_object_storage_credentials_from_secrets_and_routed_only_when_public(platform_run: ProgramRun, runs: ProgramRuns) -> None:
    assert not routers(platform_run, "shared_seaweedfs"), "not routed by default: only the swarm's backups reach it"
    run = runs("platform", {"objectStoragePublic": "true"})
    storage = run.service("shared_seaweedfs")
    args = container(run, "shared_seaweedfs")["args"]
    assert "-s3.config=/run/secrets/s3_identities.json" in args and "-metricsPort=9324" in args
    identities = json.loads(run.mounted_secret(storage, "s3_identities.json"))
    root = next(identity for identity in identities["identities"] if identity["name"] == "root")
    (credentials,) = root["credentials"]
    assert credentials["secretKey"] == run.outputs["s3_secret_key"][0] and run.outputs["s3_secret_key"][1]
    assert credentials["accessKey"] == run.outputs["s3_access_key"][0] and run.outputs["s3_access_key"][1]
    assert "Admin" in root["actions"]
    labels = routers(run, "shared_seaweedfs")
    assert labels["traefik.http.routers.s3.rule"] == "Host(`s3.nextcandle.io`) || Host(`s3.localhost`)"
    assert labels["traefik.http.services.s3.loadbalancer.server.port"] == "8333"
    assert not any("s3-console" in label for label in labels), "no file browser: the filer answers on loopback only"
    assert {"-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3.ip.bind=0.0.0.0", "-metricsIp=0.0.0.0"} <= set(args)
    assert not container(run, "shared_seaweedfs")["image"].startswith("minio/"), "MinIO images are gone from Docker Hub"


def test_s3_clients_reach_the_object_store_by_a_name_the_aws_cli_accepts(platform_run: ProgramRun) -> None:
    from botocore.utils import is_valid_endpoint_url  # the check the aws CLI runs on --endpoint-url

    endpoint, _ = platform_run.outputs["object_storage_endpoint"]
    assert is_valid_endpoint_url(endpoint), endpoint
    host = endpoint.split("//")[1].split(":")[0]
    for network in platform_run.service("shared_seaweedfs").inputs["taskSpec"]["networksAdvanceds"]:
        assert host in network["aliases"]


def test_n8n_is_pinned_2x_in_seoul_with_an_encryption_key_secret(platform_run: ProgramRun) -> None:
    run = platform_run
    spec = container(run, "shared_n8n")
    assert spec["image"].startswith("n8nio/n8n:2.")
    env = environment(spec)
    assert env["GENERIC_TIMEZONE"] == "Asia/Seoul" and env["TZ"] == "Asia/Seoul"
    assert env["N8N_ENCRYPTION_KEY_FILE"] == "/run/secrets/n8n_encryption_key"
    key = run.mounted_secret(run.service("shared_n8n"), "n8n_encryption_key")
    assert len(key) == 48 and "\n" not in key, "n8n reads the file verbatim: no trailing newline"
    assert not [k for k in env if k.startswith("N8N_BASIC_AUTH")], "n8n removed basic auth in 1.0"
    assert env["WEBHOOK_URL"] == "https://n8n.nextcandle.io/"
    n8n = routers(run, "shared_n8n")
    assert n8n["traefik.http.routers.n8n.rule"] == "(Host(`n8n.nextcandle.io`) || Host(`n8n.localhost`)) && !PathPrefix(`/metrics`)"
    assert n8n["traefik.http.routers.n8n.middlewares"] == "dashboard-auth@file", "no stranger claims the owner account"
    claimed = routers(run_program("platform", {"n8nOwnerSetUp": "true"}), "shared_n8n")
    assert "traefik.http.routers.n8n.middlewares" not in claimed


def test_local_aliases_only_where_configured() -> None:
    """The platform answers at <name>.localhost for a laptop without a tunnel; without aliases it does not."""
    without = run_program("platform", {"localAliases": "false"})
    rules = [v for s in without.services for k, v in s.labels.items() if k.endswith(".rule")]
    assert rules and not [r for r in rules if ".localhost" in r and "prometheus.localhost" not in r]


def test_runners_replicas_placement_and_ephemeral(full_run: ProgramRun) -> None:
    runner = full_run.service("runner_github-runner")
    assert runner.inputs["mode"]["replicated"]["replicas"] == 2
    task = runner.inputs["taskSpec"]
    assert task["placement"]["constraints"] == ["node.role==worker", "node.labels.nextcandle.ci==true"], "never on a manager by default"
    assert not [m for m in task["containerSpec"]["mounts"] if m["type"] == "bind"], "no Docker socket by default"
    env = environment(task["containerSpec"])
    assert env["EPHEMERAL"] == "1" and env["RUNNER_SCOPE"] == "org" and env["ORG_NAME"] == "nextcandle"
    assert env["DISABLE_AUTO_UPDATE"], "an updating runner exits and Swarm restarts the same pin, in a loop"
    assert task["restartPolicy"]["condition"] == "any"
    assert full_run.mounted_secret(runner, "github_token") == FULL_SECRETS["runnerAccessToken"]
    command = task["containerSpec"]["commands"][-1]
    assert 'ACCESS_TOKEN="$(cat /run/secrets/github_token)"' in command


def test_managers_and_the_docker_socket_are_each_an_explicit_choice(runs: ProgramRuns) -> None:
    opted = runs("platform", {**FULL, "runnerOnManagers": "true", "runnerDockerAccess": "true"}, FULL_SECRETS)
    task = opted.service("runner_github-runner").inputs["taskSpec"]
    assert task["placement"]["constraints"] == ["node.role==manager"]
    assert [m["source"] for m in task["containerSpec"]["mounts"] if m["type"] == "bind"] == ["/var/run/docker.sock"]


def test_runners_keep_a_build_cache_their_container_actions_can_mount(full_run: ProgramRun) -> None:
    spec = container(full_run, "runner_github-runner")
    work = next(m for m in spec["mounts"] if m["type"] == "volume")
    # Container actions bind the workspace through the node's Docker: the path inside the runner is the
    # volume's own path on the node, and each runner works in <root>/<its name>.
    assert work["source"] == "runner_work" and work["target"] == "/var/lib/docker/volumes/runner_work/_data"
    assert environment(spec)["RUNNER_WORKDIR_ROOT"] == work["target"] and "RUNNER_WORKDIR" not in environment(spec)
    # A stable name per node and slot: a restarted runner finds its cache, and no two share a directory.
    assert environment(spec)["RUNNER_NAME"] == "nextcandle-{{.Node.Hostname}}-{{.Task.Slot}}"
    assert environment(spec)["RANDOM_RUNNER_SUFFIX"] == "false"
    assert full_run.service("runner_github-runner").inputs["updateConfig"]["order"] == "stop-first"


def test_an_environment_lets_ci_jobs_reach_its_databases_only_when_allowed(runs: ProgramRuns) -> None:
    assert "runner_network_id" in runs.full.outputs
    closed, open_ = runs("dev"), runs("dev", {"runnerDatabaseAccess": "true"})
    for name in ("dev_postgres", "dev_redis"):
        assert "runner_internal" not in closed.network_names(closed.service(name))
        assert "runner_internal" in open_.network_names(open_.service(name))
    for name in ("dev_postgres-exporter", "dev_redis-exporter", "dev_postgres-backup"):
        assert "runner_internal" not in open_.network_names(open_.service(name)), "only the databases"


def test_runner_replicas_and_registration_token_from_config() -> None:
    config = {**FULL, "runnerReplicas": "4", "tunnelMode": "none"}
    run = run_program("platform", config, {"runnerRegistrationToken": "AABBCCDDEEFFGGHH"})
    runner = run.service("runner_github-runner")
    assert runner.inputs["mode"]["replicated"]["replicas"] == 4
    assert 'RUNNER_TOKEN="$(cat /run/secrets/github_token)"' in runner.inputs["taskSpec"]["containerSpec"]["commands"][-1]


def test_changing_the_runner_token_changes_only_the_runners_resources() -> None:
    config = {**FULL, "tunnelMode": "none"}
    before = run_program("platform", config, {"runnerAccessToken": "ghp_first_token_000000"})
    after = run_program("platform", config, {"runnerAccessToken": "ghp_second_token_11111"})
    assert {(r.typ, r.name) for r in before.resources} == {(r.typ, r.name) for r in after.resources}
    # Swarm secrets are immutable: the token secret is replaced, and only the runner service mounts it.
    assert changed_resources(before, after) == {(SECRET, "runner-token"), (SERVICE, "runner-github-runner")}
