"""Speed and blast-radius figures for the README (a benchmark, not a test).

    python scripts/benchmark.py                 # prints a Markdown report
    python scripts/benchmark.py --engine        # adds the real engine: up, no-op previews, warm engine
    python scripts/benchmark.py --cold-build    # adds a Go-module build of the engine from empty caches
    python scripts/benchmark.py --backups 1024  # adds a 1 GB dump and restore, and the WAL archive's lag

Measures: the import cost of each SDK and of the program, the time to evaluate the program for each
stack under Pulumi mocks, and how many resources an update touches for typical changes. With
--engine (root, dockerd): `ops up dev` on an empty swarm, then no-op previews per stack and for all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.engine import Operator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.simplefilter("ignore", DeprecationWarning)

from tests.harness import ProgramRun, changed_resources, run_program  # noqa: E402

FULL = {
    "runnerEnabled": "true",
    "runnerOwner": "nextcandle",
    "tunnelMode": "managed",
    "cloudflareAccountId": "0" * 32,
    "cloudflareZoneId": "1" * 32,
}
FULL_SECRETS = {"cloudflareApiToken": "token-0123456789", "runnerAccessToken": "ghp_0000000000000000"}


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_cost(module: str, repeat: int = 5) -> float:
    command = [sys.executable, "-W", "ignore", "-c", f"import {module}"]
    return median_seconds(lambda: subprocess.run(command, cwd=ROOT, check=True), repeat)


@contextmanager
def edited(path: Path, extra: str) -> Iterator[None]:
    original = path.read_text()
    path.write_text(original + extra)
    try:
        yield
    finally:
        path.write_text(original)


def blast_radius(before: Callable[[], ProgramRun], after: Callable[[], ProgramRun]) -> tuple[int, int, str]:
    first, second = before(), after()
    changed = changed_resources(first, second)
    names = ", ".join(sorted(name for _, name in changed))
    return len(changed), len(second.resources), names


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def engine_figures() -> None:
    from tests.dockerd import ensure_swarm, running_dockerd
    from tests.engine import init_platform, make_operator, running_tasks, wait_until_healthy

    warm = timed(lambda: subprocess.run(["bash", "scripts/engine.sh", "--build"], cwd=ROOT, check=True, capture_output=True))
    engine_bin = Path(subprocess.run(["bash", "scripts/engine.sh", "--build"], cwd=ROOT, check=True, capture_output=True,
                                     text=True).stdout.strip())
    print(f"\n| real engine (Go-module build) | seconds |\n|---|---|\n| `scripts/engine.sh`, cached | {warm:.2f} |")
    with running_dockerd() as client, tempfile.TemporaryDirectory() as base:
        ensure_swarm(client)
        operator = make_operator(engine_bin, client.docker_host, Path(base))
        init_platform(operator)
        print(f"| `ops up dev` on an empty swarm (platform, then dev) | {timed(lambda: operator.ops('up', 'dev')):.1f} |")
        started = time.perf_counter()
        for stack in ("stg", "prod"):
            operator.ops("up", stack)
        if client.local_images:  # scripts/images.sh built them (NEXTCANDLE_IMAGES)
            unhealthy = wait_until_healthy(client, timeout=1200)
            print(f"| `ops up stg` and `prod`, then every task of all four stacks healthy | {time.perf_counter() - started:.1f} |"
                  + (f" (still unhealthy: {sorted(unhealthy)})" if unhealthy else ""))
            before = running_tasks(client)
            operator.set_config("prod", "postgresCpus", "0.20-1.50")
            operator.ops("up", "prod")
            wait_until_healthy(client, timeout=300)
            after = running_tasks(client)
            restarted = sorted(name for name, tasks in before.items() if not tasks <= after.get(name, set()))
            print(f"| services whose tasks restarted when prod's PostgreSQL CPUs changed | {len(restarted)} ({', '.join(restarted)}) |")
        toy = toy_preview(operator, Path(base) / "toy")
        print(f"| no-op `pulumi preview` of a three-resource program (network, volume, password) | {toy:.1f} |")
        for stack in ("platform", "dev", "stg", "prod"):
            seconds = median_seconds(lambda stack=stack: operator.ops("preview", stack, "--expect-no-changes"), 3)
            print(f"| no-op `ops preview {stack}` | {seconds:.1f} ({seconds / toy:.1f}x the toy) |")
        seconds = median_seconds(lambda: operator.ops("preview", "all", "--expect-no-changes"), 3)
        print(f"| no-op `ops preview all` | {seconds:.1f} ({seconds / (4 * toy):.1f}x four toys) |")


TOY_PROGRAM = """import pulumi_docker as docker
import pulumi_random as random

docker.Network("toy", name="benchmark-toy")
docker.Volume("toy", name="benchmark-toy")
random.RandomPassword("toy", length=16)
"""


def toy_preview(operator: Operator, project: Path) -> float:
    """The yardstick for `ops preview`: a three-resource program on the same engine, swarm and
    backend, through the plain CLI and the language host (median of 3 no-op previews)."""
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: toy\nruntime: python\n")
    (project / "__main__.py").write_text(TOY_PROGRAM)
    env = {**operator.env, "PATH": os.pathsep.join([str(Path(sys.executable).parent), operator.env["PATH"]])}

    def pulumi(*args: str) -> None:
        done = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"pulumi {' '.join(args)}: {done.stdout}{done.stderr}")

    pulumi("stack", "init", "toy")
    pulumi("up", "--yes")
    try:
        return median_seconds(lambda: pulumi("preview", "--expect-no-changes"), 3)
    finally:
        pulumi("destroy", "--yes")


def cold_build() -> None:
    with tempfile.TemporaryDirectory() as empty:
        env = {**os.environ, "GOMODCACHE": f"{empty}/mod", "GOCACHE": f"{empty}/build", "NEXTCANDLE_ENGINE_CACHE": f"{empty}/engine"}
        seconds = timed(lambda: subprocess.run(["bash", "scripts/engine.sh", "--build"], cwd=ROOT, env=env, check=True,
                                               capture_output=True))
        subprocess.run(["chmod", "-R", "u+w", empty], check=False)  # the module cache is read-only
    print(f"| `scripts/engine.sh --build`, empty Go caches | {seconds:.0f} |")


def backup_figures(size_mb: int) -> None:
    """A database of `size_mb` on the tests' real PostgreSQL: dump to S3 (moto) and restore with the
    backup service's scripts; then the WAL archive's lag under a steady write load: from a commit
    until its segment is in the object store."""
    import re
    import threading
    import uuid

    from tests.conftest import _moto_server
    from tests.postgres import RUN_AS, Server
    from tests.test_backup_restore import Backups

    s3 = _moto_server()
    url = next(s3)
    base = Path(tempfile.mkdtemp(prefix="nextcandle-bench-"))
    run = run_program("dev")
    (base / "pg").mkdir()
    pg = Server(base / "pg", run, "dev", wal_dir=base / "wal")
    pg.start()
    (base / "scripts").mkdir()
    backups = Backups(run, pg, url, base / "scripts")
    backups.prefix = backups.env["S3_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}"
    import pwd
    owner = str(pwd.getpwnam(RUN_AS).pw_uid) if os.geteuid() == 0 else str(os.geteuid())
    backups.env.update(PGDATA=str(pg.data), WAL_DIR=str(base / "wal"), POSTGRES_UID=owner)
    try:
        rows = size_mb * 1024 * 1024 // 300
        pg.psql(pg.database, f"CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS payload FROM generate_series(1, {rows}) g")
        size = pg.value("SELECT pg_size_pretty(pg_database_size(current_database()))")
        dumped = timed(lambda: subprocess.run(["sh", str(backups.base / "backup.sh")], env=backups.env, check=True, capture_output=True))
        pg.psql(pg.database, "DROP TABLE big")
        restored = timed(lambda: subprocess.run(["sh", str(backups.base / "restore.sh")], env=backups.env, check=True, capture_output=True))
        assert pg.value("SELECT count(*) FROM big") == str(rows)
        print(f"\n| backups, a {size} database (tests' PostgreSQL, moto S3) | seconds |\n|---|---|")
        print(f"| `backup.sh`: dump, encrypt, upload | {dumped:.0f} |")
        print(f"| `restore.sh`: download, decrypt, `pg_restore` | {restored:.0f} |")

        stop = threading.Event()

        def write() -> None:  # a steady load: a small transaction every 50 ms
            while not stop.is_set():
                pg.psql(pg.database, "INSERT INTO steady SELECT now(), repeat('x', 2000) FROM generate_series(1, 20)")
                time.sleep(0.05)

        def shipped() -> str:
            try:
                return backups.aws("s3", "ls", f"s3://{backups.bucket}/{backups.prefix}/pg{backups.env['PG_MAJOR']}/wal/")
            except subprocess.CalledProcessError:  # nothing shipped yet
                return ""

        pg.psql(pg.database, "CREATE TABLE steady (at timestamptz, payload text)")
        # The load above left about a gigabyte of WAL waiting: ship it first, so the figure is the
        # steady state's, and say how long that backlog took.
        backlog = len(list((Path(backups.env["WAL_DIR"]) / "archive").iterdir()))
        drained = timed(lambda: subprocess.run(["sh", str(backups.base / "wal-ship.sh")], env=backups.env, check=True, capture_output=True))
        print(f"| `wal-ship.sh`: the {backlog} segments the load and restore left, encrypted and uploaded one by one | {drained:.0f} |")
        shipper = subprocess.Popen(["sh", str(backups.base / "wal-ship.sh"), "--every", "10"], env=backups.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        writer = threading.Thread(target=write)
        writer.start()
        lags = []
        try:
            for _ in range(6):
                started = time.monotonic()
                segment = pg.value("SELECT pg_walfile_name(pg_current_wal_insert_lsn())")
                while segment not in shipped():
                    time.sleep(1)
                lags.append(time.monotonic() - started)
        finally:
            stop.set()
            writer.join()
            shipper.terminate()
        timeout = re.search(r"archive_timeout = (\d+)", (pg.base / "postgresql.conf").read_text())
        print(f"| WAL archive lag under a steady load (commit to object store; archive_timeout {timeout.group(1) if timeout else '?'} s, "
              f"shipped every 10 s), median / max of {len(lags)} | {statistics.median(lags):.0f} / {max(lags):.0f} |")
    finally:
        pg.stop()
        s3.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", action="store_true", help="also measure the real engine on a local dockerd")
    parser.add_argument("--cold-build", action="store_true", help="also build the engine from empty Go caches")
    parser.add_argument("--backups", type=int, metavar="MB", help="also a dump and restore of a database of MB (1024 for 1 GB) and the WAL lag")
    options = parser.parse_args()
    print("## Benchmark\n")
    print(f"Python {sys.version.split()[0]}; medians of 5 runs.\n")
    print("| import | seconds |\n|---|---|")
    baseline = import_cost("sys")
    for module in ("pulumi", "pulumi_docker", "pulumi_random", "pulumi_cloudflare", "components.observability"):
        print(f"| `{module}` | {import_cost(module) - baseline:.2f} |")

    print("\n| program evaluation under mocks | resources | seconds |\n|---|---|---|")
    run_program("dev")  # warm the imports
    for stack in ("platform", "dev", "stg", "prod"):
        count = len(run_program(stack).resources)
        print(f"| `{stack}` | {count} | {median_seconds(lambda stack=stack: run_program(stack), 5):.2f} |")
    count = len(run_program("platform", FULL, FULL_SECRETS).resources)
    print(f"| `platform` + managed tunnel + runners | {count} | {median_seconds(lambda: run_program('platform', FULL, FULL_SECRETS), 5):.2f} |")

    print("\n| change | resources touched | of | which |\n|---|---|---|---|")
    rules = ROOT / "configs/prometheus/rules/alerts.yml"
    prod_conf = ROOT / "configs/postgres/postgresql-prod.conf"

    def with_edit(path: Path, stack: str) -> ProgramRun:
        with edited(path, "\n# benchmark edit\n"):
            return run_program(stack)

    cases: list[tuple[str, Callable[[], ProgramRun], Callable[[], ProgramRun]]] = [
        ("edit `configs/prometheus/rules/alerts.yml` (platform)", lambda: run_program("platform"), lambda: with_edit(rules, "platform")),
        ("edit `configs/postgres/postgresql-prod.conf` (prod)", lambda: run_program("prod"), lambda: with_edit(prod_conf, "prod")),
        (
            "new runner token",
            lambda: run_program("platform", FULL, FULL_SECRETS),
            lambda: run_program("platform", FULL, {**FULL_SECRETS, "runnerAccessToken": "ghp_1111111111111111"}),
        ),
        (
            "runner replicas 2 -> 4",
            lambda: run_program("platform", FULL, FULL_SECRETS),
            lambda: run_program("platform", {**FULL, "runnerReplicas": "4"}, FULL_SECRETS),
        ),
        (
            "prod PostgreSQL resources 0.20-1.00 -> 0.50-2.00 CPUs",
            lambda: run_program("prod"),
            lambda: run_program("prod", {"postgresCpus": "0.50-2.00"}),
        ),
    ]
    for title, before, after in cases:
        touched, total, names = blast_radius(before, after)
        print(f"| {title} | {touched} | {total} | {names} |")

    if options.engine:
        engine_figures()
    if options.cold_build:
        cold_build()
    if options.backups:
        backup_figures(options.backups)


if __name__ == "__main__":
    main()
