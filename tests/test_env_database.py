"""EnvDatabaseStack for dev, stg and prod: the differences the seeds define, from the stack files."""

from __future__ import annotations

import pytest

from components.database_configs import render_postgres_conf
from tests.conftest import ProgramRuns
from tests.harness import VOLUME, ProgramRun, environment, run_program

# (postgres published port, redis published port, postgres cpus, postgres memory MiB, config file, restarts)
EXPECTED = {
    "dev": (5432, 6379, (0.10, 0.50), (256, 512), "postgresql.conf", 3),
    "stg": (5433, None, (0.10, 0.50), (256, 512), "postgresql.conf", 3),
    "prod": (None, None, (0.20, 1.00), (512, 1024), "postgresql-prod.conf", 5),
}


def published(run: ProgramRun, service: str) -> int | None:
    ports = (run.service(service).inputs.get("endpointSpec") or {}).get("ports") or []
    return ports[0]["publishedPort"] if ports else None


def test_ports_resources_config_and_restarts_per_environment(env_run: ProgramRun) -> None:
    env = env_run.stack
    pg_port, redis_port, cpus, memory, conf, restarts = EXPECTED[env]
    assert published(env_run, f"{env}_postgres") == pg_port
    assert published(env_run, f"{env}_redis") == redis_port
    postgres = env_run.service(f"{env}_postgres")
    resources = postgres.inputs["taskSpec"]["resources"]
    assert (resources["reservation"]["nanoCpus"] / 1e9, resources["limits"]["nanoCpus"] / 1e9) == cpus
    assert (resources["reservation"]["memoryBytes"] / 2**20, resources["limits"]["memoryBytes"] / 2**20) == memory
    expected_conf = render_postgres_conf(conf, "/etc/postgresql/pg_hba.conf", archive_dir="/var/lib/postgresql/wal/17/archive")
    assert env_run.mounted_config(postgres, "/etc/postgresql/postgresql.conf") == expected_conf
    for service in env_run.services:
        if service.swarm_name.startswith(f"{env}_"):
            assert service.inputs["taskSpec"]["restartPolicy"]["maxAttempts"] == restarts


def test_prod_has_twice_the_resources_of_dev(runs: ProgramRuns) -> None:
    dev, prod = runs("dev"), runs("prod")
    for service in ("postgres", "redis"):
        d = dev.service(f"dev_{service}").inputs["taskSpec"]["resources"]
        p = prod.service(f"prod_{service}").inputs["taskSpec"]["resources"]
        assert p["reservation"]["memoryBytes"] == 2 * d["reservation"]["memoryBytes"]
        assert p["limits"]["memoryBytes"] == 2 * d["limits"]["memoryBytes"]
        assert p["limits"]["nanoCpus"] >= 2 * d["limits"]["nanoCpus"]


def test_postgres_image_credentials_and_init(env_run: ProgramRun) -> None:
    env = env_run.stack
    postgres = env_run.service(f"{env}_postgres")
    container = postgres.inputs["taskSpec"]["containerSpec"]
    assert container["image"].startswith("pgvector/pgvector:") and "-pg17" in container["image"]
    assert environment(container)["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert environment(container)["POSTGRES_USER_FILE"] == "/run/secrets/postgres_user"
    assert environment(container)["POSTGRES_DB_FILE"] == "/run/secrets/postgres_db"
    assert "scram-sha-256" in environment(container)["POSTGRES_INITDB_ARGS"]
    assert container["args"] == ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf"]
    assert "CREATE EXTENSION IF NOT EXISTS vector" in env_run.mounted_config(
        postgres, "/docker-entrypoint-initdb.d/10-extensions.sql"
    )
    mounts = {m["target"]: m for m in container["mounts"]}
    assert mounts["/var/lib/postgresql/data"]["source"] == f"{env}_postgres_data"
    shm = mounts["/dev/shm"]
    assert shm["type"] == "tmpfs" and shm["tmpfsOptions"]["sizeBytes"] >= 256 * 2**20
    assert env_run.mounted_secret(postgres, "postgres_password") == env_run.outputs["postgres_password"][0]


def test_redis_arguments_per_environment(env_run: ProgramRun) -> None:
    env = env_run.stack
    args = env_run.service(f"{env}_redis").inputs["taskSpec"]["containerSpec"]["args"]
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert options["--maxmemory"] == ("256mb" if env == "prod" else "128mb")
    assert options["--maxmemory-policy"] == "noeviction" and options["--appendonly"] == "yes"
    assert options.get("--appendfsync") == ("everysec" if env == "prod" else None)
    assert options["--include"] == "/run/secrets/redis_auth.conf"


def test_exports_connection_details_secret_where_secret(env_run: ProgramRun) -> None:
    env, outputs = env_run.stack, env_run.outputs
    assert outputs["postgres_host"] == (f"{env}_postgres", False)
    assert outputs["redis_host"] == (f"{env}_redis", False)
    assert outputs["network"] == (f"{env}_internal", False)
    for secret in ("postgres_password", "app_password", "postgres_url", "redis_password", "redis_url"):
        assert outputs[secret][1], f"{secret} must be a secret output"
    database = outputs["postgres_database"][0]
    # Applications get the least-privilege login; the superuser stays with operators and backups.
    assert outputs["app_user"][0] == "app" != outputs["postgres_user"][0]
    assert outputs["postgres_url"][0] == f"postgresql://app:{outputs['app_password'][0]}@{env}_postgres:5432/{database}"


def test_the_app_login_is_made_at_every_start_without_its_password_on_a_command_line(env_run: ProgramRun) -> None:
    postgres = env_run.service(f"{env_run.stack}_postgres")
    command = next(word for word in postgres.inputs["taskSpec"]["containerSpec"]["commands"] if "app-role.sh" in word)
    assert "{ sh /etc/postgresql/app-role.sh & }" in command and command.endswith('exec docker-entrypoint.sh "$@"')
    assert env_run.mounted_secret(postgres, "app_password") == env_run.outputs["app_password"][0]
    assert "app_password" not in command


def test_exporters_watch_this_environment(env_run: ProgramRun) -> None:
    env = env_run.stack
    redis_exporter = env_run.service(f"{env}_redis-exporter").inputs["taskSpec"]["containerSpec"]
    assert environment(redis_exporter)["REDIS_ADDR"] == f"redis://{env}_redis:6379"
    assert "/run/secrets/redis_password" in redis_exporter["commands"][-1]
    pg_exporter = env_run.service(f"{env}_postgres-exporter").inputs["taskSpec"]["containerSpec"]
    assert environment(pg_exporter)["DATA_SOURCE_URI"].startswith(f"{env}_postgres:5432/")
    assert environment(pg_exporter)["DATA_SOURCE_PASS_FILE"] == "/run/secrets/postgres_password"


@pytest.mark.parametrize("stack", ["stg", "prod"])
def test_data_is_protected_and_retained_in_stg_and_prod(stack: str, runs: ProgramRuns) -> None:
    run = runs(stack)
    for volume in run.of_type(VOLUME):
        assert volume.protect and volume.retain_on_delete, volume.name
    for name in (f"{stack}-postgres-password", f"{stack}-redis-password"):
        for resource in [r for r in run.resources if r.name == name]:
            assert resource.protect, f"{resource.typ} {name}"


def test_dev_data_is_disposable_but_shared_data_is_protected(runs: ProgramRuns) -> None:
    assert not any(v.protect for v in runs("dev").of_type(VOLUME))
    shared = [v for v in runs("platform").of_type(VOLUME) if not v.inputs["name"].startswith("core_docker_api_")]
    assert shared and all(v.protect and v.retain_on_delete for v in shared), "every platform volume but the proxy's sockets"
    assert not any(v.protect for v in run_program("platform", {"protectData": "false"}).of_type(VOLUME))


def test_stateful_services_follow_the_configured_placement() -> None:
    run = run_program("prod", {"statefulPlacement": "node.labels.nextcandle.data==true"})
    for name in ("prod_postgres", "prod_redis"):
        assert run.service(name).inputs["taskSpec"]["placement"]["constraints"] == ["node.labels.nextcandle.data==true"]


def test_wal_archiving_comes_only_with_backups(runs: ProgramRuns) -> None:
    """Nothing would ship and remove archived WAL without the backup service: it would fill the disk.
    The WAL volume stays either way, so turning backups off deletes no protected volume."""
    for config, archived in (({}, True), ({"backupEnabled": "false"}, False)):
        run = runs("prod", config)
        postgres = run.service("prod_postgres")
        conf = run.mounted_config(postgres, "/etc/postgresql/postgresql.conf")
        targets = [m["target"] for m in postgres.inputs["taskSpec"]["containerSpec"]["mounts"]]
        assert ("archive_mode = on" in conf) is archived
        assert "/var/lib/postgresql/wal" in targets
        assert any(v.inputs.get("name") == "prod_postgres_wal" for v in run.of_type("docker:index/volume:Volume"))
