"""Adopting the compose stacks the seeds deploy (start.sh): no database re-initialised, no data lost.

On the test swarm: seed-like services, networks, secrets and data made with the Docker API, then
`python -m ops adopt` on the real engine. With a real PostgreSQL: the program's login taking over a
database the compose stack initialised (configs/adopt/give-login.sql), as `ops adopt` runs it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from names import STACK_LABEL
from ops.adopt import give_login_environment, retire_old_login, sql_command
from ops.backend import OpsError
from tests.conftest import ProgramRuns
from tests.dockerd import LOCAL_IMAGE, ensure_swarm, remove_everything, volume_identities
from tests.engine import init_platform, make_operator, steps
from tests.postgres import BIN, Server

OLD_LOGIN = {"user": "nextcandle", "password": "seed-password-0123456789", "database": "nextcandle_dev"}


def _tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.rglob("*")) if p.is_file()}


def _service(swarm: Any, name: str, namespace: str, networks: list[Any], binds: dict[str, Path] | None = None, **extra: Any) -> Any:
    from docker.types import Mount

    labels = {STACK_LABEL: namespace}
    return swarm.services.create(
        LOCAL_IMAGE, ["sleep", "3600"], name=name, labels=labels, container_labels=labels, networks=[n.id for n in networks],
        mounts=[Mount(target, str(source), type="bind") for target, source in (binds or {}).items()], **extra,
    )


def _seed_swarm(swarm: Any, data: Path) -> dict[str, Any]:
    """What the seeds' setup and start.sh leave running: traefik-public made by hand (applications on
    it), stacks core, shared and dev with their services, secrets, networks and data bound from .data."""
    from docker.types import SecretReference

    public = swarm.networks.create("traefik-public", driver="overlay", attachable=True)
    shared_default = swarm.networks.create("shared_default", driver="overlay", attachable=True, labels={STACK_LABEL: "shared"})
    dev_default = swarm.networks.create("dev_default", driver="overlay", attachable=True, labels={STACK_LABEL: "dev"})
    secrets = {
        name: swarm.secrets.create(name=f"dev_{name}", data=OLD_LOGIN[key].encode(), labels={STACK_LABEL: "dev"})
        for name, key in (("postgres_user", "user"), ("postgres_password", "password"), ("postgres_db", "database"))
    }
    services = {
        "core_traefik": _service(swarm, "core_traefik", "core", [public]),
        "shared_grafana": _service(swarm, "shared_grafana", "shared", [public, shared_default], {"/var/lib/grafana": data / "grafana"}),
        "shared_prometheus": _service(swarm, "shared_prometheus", "shared", [shared_default], {"/prometheus": data / "prometheus"}),
        "shared_minio": _service(swarm, "shared_minio", "shared", [shared_default]),
        "dev_postgres": _service(
            swarm, "dev_postgres", "dev", [dev_default, public], {"/var/lib/postgresql/data": data / "dev" / "postgres"},
            env=[f"POSTGRES_{k.upper()}_FILE=/run/secrets/postgres_{k}" for k in ("user", "password", "db")],
            secrets=[SecretReference(s.id, s.name, filename=name) for name, s in secrets.items()],
        ),
        "dev_redis": _service(swarm, "dev_redis", "dev", [dev_default], {"/data": data / "dev" / "redis"}),
        # An application the customer deployed into the dev stack: not ours to replace.
        "dev_auth": _service(swarm, "dev_auth", "dev", [dev_default, public]),
    }
    deadline = time.monotonic() + 60
    while len(swarm.containers.list()) < len(services):
        assert time.monotonic() < deadline, "the seed-like services did not start"
        time.sleep(0.5)
    return {"public": public, **services}


def _make_data(root: Path) -> None:
    (root / "dev" / "postgres" / "base" / "16384").mkdir(parents=True)
    (root / "dev" / "postgres" / "PG_VERSION").write_text("17\n")
    (root / "dev" / "postgres" / "base" / "16384" / "2619").write_bytes(os.urandom(8192))
    (root / "dev" / "redis").mkdir()
    (root / "dev" / "redis" / "appendonly.aof").write_text("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n")
    (root / "grafana").mkdir()
    (root / "grafana" / "grafana.db").write_bytes(os.urandom(4096))
    (root / "prometheus" / "wal").mkdir(parents=True)
    (root / "prometheus" / "wal" / "00000000").write_bytes(os.urandom(4096))


def _bound(swarm: Any, volume: str) -> str:
    options = swarm.volumes.get(volume).attrs["Options"]
    assert options["type"] == "none" and options["o"] == "bind"
    return str(options["device"])


def test_running_compose_stacks_are_adopted_on_their_own_data(engine_bin: Path, swarm: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    ensure_swarm(swarm)
    remove_everything(swarm)
    base = tmp_path_factory.mktemp("adoption")
    data = base / "nextcandle-infra" / ".data"
    _make_data(data)
    before = _tree(data)
    operator = make_operator(engine_bin, swarm.docker_host, base)
    try:
        init_platform(operator)
        # The compose stacks' data here is made up, not files PostgreSQL, Redis or Prometheus can run
        # on (the local images run the real programs): the adopted services stay stopped, and this test
        # checks the adoption itself. Running on adopted data is ops adopt's last step, tested below.
        operator.set_config("platform", "stopped", "true")
        dev_file = operator.project / "Pulumi.dev.yaml"  # no dev stack yet: adopt creates it
        dev_settings = yaml.safe_load(dev_file.read_text())
        dev_settings["config"]["nextcandle:stopped"] = "true"
        dev_file.write_text(yaml.safe_dump(dev_settings))
        seeds = _seed_swarm(swarm, data)

        refused = operator.ops("adopt", "dev", "--data-directory", str(data / "dev" / "redis"), ok=False)
        assert refused.returncode == 2 and "nothing was changed" in refused.stderr, refused.stderr
        assert len(swarm.services.list()) == 7, "nothing changed"

        # The platform first: it owns the networks the environments join.
        platform = operator.ops("adopt", "platform", "--data-directory", str(data)).stdout
        assert "traefik-public exists; the platform joins it" in platform, platform
        assert "removed the compose services core_traefik, shared_grafana, shared_minio, shared_prometheus" in platform, platform
        public = swarm.networks.get("traefik-public")
        assert public.id == seeds["public"].id, "the hand-made network stays, with the applications on it"
        traefik = swarm.services.get("core_traefik").attrs["Spec"]["TaskTemplate"]["Networks"]
        assert public.id in {n["Target"] for n in traefik}
        assert "shared_default" not in {n.name for n in swarm.networks.list()}
        assert _bound(swarm, "shared_grafana_data") == str(data / "grafana")
        assert _bound(swarm, "shared_prometheus_data") == str(data / "prometheus")
        assert "nextcandle:externalPublicNetwork: \"true\"" in (operator.project / "Pulumi.platform.yaml").read_text()

        # The program's PostgreSQL is stopped here, so the last step (giving it the program's login)
        # waits in vain; the operator would run `ops adopt dev` again.
        adopted = operator.ops("adopt", "dev", "--data-directory", str(data / "dev"), "--wait", "0", ok=False)
        assert adopted.returncode == 2 and "dev_postgres has no running container" in adopted.stderr, adopted.stdout + adopted.stderr
        assert "removed the compose services dev_postgres, dev_redis" in adopted.stdout
        assert swarm.services.get("dev_auth").id == seeds["dev_auth"].id, "the application is left alone"
        assert "dev_default" in {n.name for n in swarm.networks.list()}, "still used by the application"
        for name, directory in (("dev_postgres_data", "postgres"), ("dev_redis_data", "redis")):
            assert _bound(swarm, name) == str(data / "dev" / directory)
        mounts = swarm.services.get("dev_postgres").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"]
        assert {(m.get("Source"), m["Target"]) for m in mounts} >= {("dev_postgres_data", "/var/lib/postgresql/data")}
        assert _tree(data) == before, "the data is where it was, unchanged"

        stack_file = (operator.project / "Pulumi.dev.yaml").read_text()
        assert f"nextcandle:dataDirectory: {data / 'dev'}" in stack_file
        assert "nextcandle:adoptedPostgresLogin:\n    secure:" in stack_file, "the old login is kept encrypted"
        kept = json.loads(operator.pulumi("config", "get", "nextcandle:adoptedPostgresLogin", "-s", "dev"))
        assert kept == OLD_LOGIN

        # Later runs replace no data: the volumes stay bound where they are.
        volumes = volume_identities(swarm)
        for stack in ("platform", "dev"):
            again = operator.ops("up", stack).stdout
            assert not [s for s in steps(again) if s[1] in ("Volume", "RandomPassword", "RandomString", "Secret", "Network")], again
        assert volume_identities(swarm) == volumes
        assert _tree(data) == before
    finally:
        remove_everything(swarm)


@pytest.mark.tools
def test_the_programs_login_takes_over_the_adopted_database(runs: ProgramRuns, tmp_path_factory: pytest.TempPathFactory) -> None:
    run = runs("dev")
    pg = Server(tmp_path_factory.mktemp("adopted-pg"), run, "dev")
    new = {"user": pg.user, "password": pg.password, "database": pg.database}
    # The compose stack initialised it: its own user and database, and no pgvector extension.
    pg.user, pg.password, pg.database, pg.init_sql = OLD_LOGIN["user"], OLD_LOGIN["password"], OLD_LOGIN["database"], "SELECT 1"
    (pg.base / "pwfile").write_text(pg.password)
    pg.start()
    try:
        pg.psql(pg.database, "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'candle'), (2, 'wick')")
        session = subprocess.Popen(  # an application still connected: the rename must not wait for it
            [str(BIN / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user, "-d", pg.database, "-c", "SELECT pg_sleep(60)"],
            env={**os.environ, "PGPASSWORD": pg.password}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        for attempt in range(2):  # re-runnable: an interrupted adoption is resumed
            given = subprocess.run(
                sql_command(OLD_LOGIN["user"], psql=str(BIN / "psql"), host="127.0.0.1", port=pg.port),
                env={**os.environ, **give_login_environment(OLD_LOGIN, new)}, capture_output=True, text=True, timeout=60,
            )
            assert given.returncode == 0, f"attempt {attempt + 1}: {given.stdout}{given.stderr}"
        session.wait(10)

        pg.user, pg.password = new["user"], new["password"]
        rows = pg.psql(new["database"], "SELECT string_agg(item, ',' ORDER BY id) FROM orders").stdout.strip()
        assert rows == "candle,wick", "the data, under the program's login and database name"
        assert pg.psql(new["database"], "SELECT extname FROM pg_extension WHERE extname = 'vector'").stdout.strip() == "vector"
        assert pg.psql(new["database"], "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").stdout.strip() == "t"
        assert pg.psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{OLD_LOGIN['database']}'").stdout.strip() == "0"
        old = pg.psql(new["database"], "SELECT 1", password=OLD_LOGIN["password"], check=False)
        assert old.returncode != 0, "the program's user does not take the old password"
        _retire_the_old_login(pg, new["user"], new["password"])
    finally:
        pg.stop()


def _retire_the_old_login(pg: Server, program_user: str, program_password: str) -> None:
    """`ops adopt <env> --retire-old-login`, as the program's user: refused while an application still logs
    in as the compose user; then that login fails, and what it owns stays."""
    def run_sql(sql: str) -> tuple[int, str]:
        done = subprocess.run(sql_command(program_user, psql=str(BIN / "psql"), host="127.0.0.1", port=pg.port),
                              env={**os.environ, "PGPASSWORD": program_password, "ADOPT_SQL": sql}, capture_output=True, text=True, timeout=60)
        return done.returncode, done.stdout + done.stderr

    as_old = [str(BIN / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", OLD_LOGIN["user"], "-d", "postgres"]
    old_env = {**os.environ, "PGPASSWORD": OLD_LOGIN["password"]}
    subprocess.run([*as_old, "-c", "CREATE TABLE made_by_the_old_login (id int)"], env=old_env, check=True, capture_output=True, timeout=30)
    session = subprocess.Popen([*as_old, "-c", "SELECT pg_sleep(5)"], env=old_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    with pytest.raises(OpsError, match="is still in use \\(from 127.0.0.1\\).*nothing was changed"):
        retire_old_login(run_sql, program_user, "dev")
    session.wait(10)
    assert retire_old_login(run_sql, program_user, "dev") == OLD_LOGIN["user"]
    refused = subprocess.run([*as_old, "-c", "SELECT 1"], env=old_env, capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr, refused.stderr
    assert pg.psql("postgres", f"SELECT rolcanlogin, rolpassword IS NULL FROM pg_authid WHERE rolname = '{OLD_LOGIN['user']}'").stdout.strip() == "f|t"
    assert retire_old_login(run_sql, program_user, "dev") == OLD_LOGIN["user"], "running it again changes nothing"
    owner = pg.psql("postgres", "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'made_by_the_old_login'").stdout.strip()
    assert owner == OLD_LOGIN["user"]
    with pytest.raises(OpsError, match="initialised by this program"):
        retire_old_login(run_sql, OLD_LOGIN["user"], "dev")
