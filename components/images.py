"""Every container image the platform runs, pinned, with the contract we rely on. Bump them here.

A pin and its contract move together: the contract says what the image does that our service specs
depend on (the uid its program runs as, what its entrypoint does, the tools a health check may call,
the paths it writes), each fact with the upstream file and commit it was read from. The property
tests check every service against it, and `scripts/local_images.py` builds the test swarm's images
to follow it. Pins were confirmed upstream (tags, changelogs, publishing workflows) on the date given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from names import BACKUP_METRICS_PORT

# The tools busybox (and Alpine's busybox) installs that our health checks and commands use.
BUSYBOX = frozenset({"sh", "cat", "env", "wget", "grep", "pgrep", "test", "[", "head", "printf", "xargs"})
# What a Debian or Ubuntu base has without extra packages (coreutils, diffutils, grep, bash, dash, findutils).
DEBIAN = frozenset({"sh", "bash", "cat", "env", "grep", "test", "[", "head", "printf", "xargs", "setpriv", "mkdir", "chown", "cp", "mv", "cmp"})


@dataclass(frozen=True)
class Contract:
    """What a pinned image does, as far as our specs depend on it."""

    uid: int
    """The uid the program runs as (after the entrypoint's own user switch, where it has one)."""
    gid: int
    groups: tuple[int, ...] = ()
    """Supplementary groups of the runtime user (a file of one of these groups is readable by group mode)."""
    starts_as_root: bool = False
    """The entrypoint starts as root and switches to `uid` itself (so it can read root-only files first)."""
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    tools: frozenset[str] = frozenset()
    """Executables on PATH (health checks and commands may use only these; empty: no shell at all)."""
    writable: tuple[str, ...] = ()
    """Paths the runtime uid owns in the image (a volume mounted there starts writable)."""
    ports: tuple[int, ...] = ()
    notes: str = ""
    source: str = ""
    """Upstream repository, file and commit each fact was read from."""


# v3.7.11 (2026-08-19; traefik/traefik-library-image v3.7 Dockerfile). v3.6 lost security support; 3.7.11
# has the basicAuth fixes CVE-2026-41263 (3.7.0-rc.2) and GHSA-6765-c87h-8mrf (3.7.10).
TRAEFIK = "traefik:v3.7.11"
# 2026.8.2 (2026-08-14, cloudflare/cloudflared RELEASE_NOTES): `tunnel --token-file`, `--no-autoupdate`
# and `tunnel ready` unchanged.
CLOUDFLARED = "cloudflare/cloudflared:2026.8.2"
# pgvector 0.8.6 (2026-07-29) on postgres:17-bookworm, whose 17/bookworm Dockerfile is at 17.11 since
# docker-library/postgres@2603e26e (2026-08-13): past the pg_dump fix of CVE-2026-6477 (17.10).
POSTGRES = "pgvector/pgvector:0.8.6-pg17-bookworm"
# The next major, for `python -m ops upgrade-postgres <env> --to 18`: pgvector 0.8.6 on postgres:18-bookworm
# (pgvector README lists 0.8.6-pg18-bookworm). The 18 images moved PGDATA to /var/lib/postgresql/18/docker
# and the VOLUME to /var/lib/postgresql (docker-library/postgres 18/bookworm/Dockerfile); the entrypoint's
# check for data at the old path runs only with that default PGDATA (docker-entrypoint.sh, 5ec89312), so
# we set PGDATA to the path every major uses here (POSTGRES_RELEASES) and keep one layout. initdb turns
# data checksums on by default from 18 (release-18.sgml); a dump and restore does not mind.
POSTGRES_18 = "pgvector/pgvector:0.8.6-pg18-bookworm"
# 7.4.11 (2026-08-18). The bookworm variant: every 7.4 Alpine tag is on Alpine 3.21, end of life since
# 2026-11-01, and no 7.4 tag exists on a newer Alpine; Debian 12 has LTS security support to 2028-06.
REDIS = "redis:7.4.11-bookworm"
# v0.20.1 (2026-07-07): 0.20.0 renamed the replication_slot collector, which we do not use.
POSTGRES_EXPORTER = "quay.io/prometheuscommunity/postgres-exporter:v0.20.1"
# v1.88.0 (2026-07-23; the release workflow pushes <tag>-alpine, which has the shell our command needs).
REDIS_EXPORTER = "oliver006/redis_exporter:v1.88.0-alpine"
# v3.14.0 (2026-08-17), the newest 3.x: 3.11 fixed a UI XSS; no [CHANGE] since 3.7 touches a flag we use.
PROMETHEUS = "prom/prometheus:v3.14.0"
# v0.35.0 (2026-11-09, its CHANGELOG): the breaking changes are the auto-gomemlimit flag and the event
# recorder, neither of which we use.
ALERTMANAGER = "prom/alertmanager:v0.35.0"
# 13.2.3 (2026-09-29, grafana/grafana CHANGELOG heading): 13.2.0 fixed CVE-2026-17183. GF_*__FILE and
# /api/health unchanged.
GRAFANA = "grafana/grafana:13.2.3"
# 3.7.5 (2026-08-05): `loki -health` exists since 3.7.0.
LOKI = "grafana/loki:3.7.5"
# v1.18.1 (2026-08-06, grafana/alloy CHANGELOG): discovery.docker, discovery.relabel, loki.source.docker
# and loki.write, all we use, unchanged since 1.11.
ALLOY = "grafana/alloy:v1.18.1"
# v0.60.5 (2026-07-11): v0.54.0 fixed container names with Docker 29's containerd store; published on ghcr.io.
CADVISOR = "ghcr.io/google/cadvisor:v0.60.5"
# v1.12.1 (2026-07-14): no flag we use changed.
NODE_EXPORTER = "prom/node-exporter:v1.12.1"
# 3.4.2 (docker-library/haproxy versions.json at ec437dd, 2026-07-22), the newest LTS branch; Alpine 3.24.
DOCKER_API_PROXY = "haproxy:3.4.2-alpine3.24"
# 4.47 (by 2026-09-15; renovate PRs of its Docker tags), the newest tag confirmed here; the proxy serves only a
# later commit (7506e5f9, 2026-11-09, version 4.53), which the test swarm builds. MinIO's community
# images stopped in 2025-10.
SEAWEEDFS = "chrislusf/seaweedfs:4.47"
# 2.46.5 (2026-11-04; marked stable): past the RCE fixed in 2.9.0 and the SQL injection fixed in 2.27.4.
N8N = "n8nio/n8n:2.46.5"
# 2.336.0 (2026-07-20), the newest tag of the image. Auto-update off (DISABLE_AUTO_UPDATE): an updating
# runner exits and Swarm starts the same pinned version again, in a loop (myoung34 #251); GitHub refuses
# a runner 30 days behind its latest release, so this pin must follow the runner's releases.
GITHUB_RUNNER = "myoung34/github-runner:2.336.0-ubuntu-noble"
# Ours (images/postgres-backup, pushed by .github/workflows/backup-image.yml): postgres:17.11-alpine3.24's
# client tools (past the pg_dump fix of CVE-2026-6477 in 17.10), Alpine's aws-cli and our scheduler. No
# third-party backup image is rebuilt on PostgreSQL releases (README, images). The tag is the PostgreSQL
# version and a digest of the directory: `python3 scripts/backup_image.py check`.
POSTGRES_BACKUP = "ghcr.io/nextcandle/postgres-backup:17.11-c9dc91bd1413"
# The same directory built on postgres:18.5-alpine3.24 (18.5: the 18 release of 17.11's day; unconfirmed here,
# the snapshot read ends at 18.3): a major's dumps and base backups need its own client tools.
POSTGRES_BACKUP_18 = "ghcr.io/nextcandle/postgres-backup:18.5-c9dc91bd1413"


@dataclass(frozen=True)
class PostgresRelease:
    """One PostgreSQL major the environments can run: its server image and its backup image."""

    major: int
    image: str
    backup_image: str
    env: tuple[tuple[str, str], ...] = ()
    """What the image needs in its environment to keep the data layout every major shares here."""


POSTGRES_RELEASES = {
    17: PostgresRelease(17, POSTGRES, POSTGRES_BACKUP),
    18: PostgresRelease(18, POSTGRES_18, POSTGRES_BACKUP_18, env=(("PGDATA", "/var/lib/postgresql/data"),)),
}


CONTRACTS: dict[str, Contract] = {
    TRAEFIK: Contract(
        uid=0, gid=0, entrypoint=("/entrypoint.sh",), command=("traefik",), tools=BUSYBOX | {"traefik"}, ports=(80,),
        notes="entrypoint.sh prepends `traefik` when the first argument starts with '-'.",
        source="traefik/traefik-library-image@697393828fd8 v3.7/alpine/{Dockerfile,entrypoint.sh} (alpine:3.24, no USER)",
    ),
    CLOUDFLARED: Contract(
        uid=65532, gid=65532, entrypoint=("cloudflared", "--no-autoupdate"), command=("version",),
        tools=frozenset({"cloudflared"}), ports=(20241,),
        notes="distroless: no shell; health checks call cloudflared itself (`tunnel --metrics <addr> ready`).",
        source="cloudflare/cloudflared@733bfb939963 Dockerfile (gcr.io/distroless/base-debian13:nonroot)",
    ),
    POSTGRES: Contract(
        uid=999, gid=999, starts_as_root=True, entrypoint=("docker-entrypoint.sh",), command=("postgres",),
        tools=DEBIAN | {"postgres", "psql", "pg_isready", "pg_dump", "gosu"},
        writable=("/var/lib/postgresql/data", "/var/run/postgresql"), ports=(5432,),
        notes="As root with `postgres` first: chowns PGDATA and re-runs itself as postgres (gosu). POSTGRES_{USER,PASSWORD,DB,"
              "INITDB_ARGS}_FILE are read as postgres; /docker-entrypoint-initdb.d runs only on an empty PGDATA.",
        source="docker-library/postgres@2603e26e 17/bookworm/Dockerfile; docker-entrypoint.sh@6edb0a8c; "
               "pgvector/pgvector@8ee86c96 Dockerfile (FROM postgres:17-bookworm, adds the extension only)",
    ),
    REDIS: Contract(
        uid=999, gid=999, starts_as_root=True, entrypoint=("docker-entrypoint.sh",), command=("redis-server",),
        tools=DEBIAN | {"redis-server", "redis-cli"}, writable=("/data",), ports=(6379,),
        notes="As root with redis-server first: chowns /data (only rdb/aof content) and drops to redis with setpriv.",
        source="redis/docker-library-redis@74654c61 (tag v7.4.11) debian/{Dockerfile,docker-entrypoint.sh}",
    ),
    POSTGRES_EXPORTER: Contract(
        uid=65534, gid=65534, entrypoint=("/bin/postgres_exporter",), tools=BUSYBOX | {"postgres_exporter"}, ports=(9187,),
        notes="DATA_SOURCE_{USER,PASS,URI}_FILE are read at start; DATA_SOURCE_NAME would win over them.",
        source="prometheus-community/postgres_exporter@867fbcac Dockerfile, exporter/datasource.go (quay.io/prometheus/busybox)",
    ),
    REDIS_EXPORTER: Contract(
        uid=59000, gid=59000, entrypoint=("/redis_exporter",), tools=BUSYBOX | {"redis_exporter"}, ports=(9121,),
        notes="REDIS_PASSWORD_FILE is a JSON map of address to password, not a password file.",
        source="oliver006/redis_exporter@16db88a0 Dockerfile (stage alpine, USER 59000:59000), exporter/pwd_file.go",
    ),
    PROMETHEUS: Contract(
        uid=65534, gid=65534, entrypoint=("/bin/prometheus",),
        command=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
        tools=BUSYBOX | {"prometheus", "promtool"}, writable=("/prometheus",), ports=(9090,),
        source="prometheus/prometheus@d7598b71 Dockerfile (quay.io/prometheus/busybox, USER nobody)",
    ),
    ALERTMANAGER: Contract(
        uid=65534, gid=65534, entrypoint=("/bin/alertmanager",),
        command=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
        tools=BUSYBOX | {"alertmanager", "amtool"}, writable=("/alertmanager",), ports=(9093,),
        source="prometheus/alertmanager v0.35.0 Dockerfile (module zip; same as @085f0ef7 v0.34.0: busybox, USER nobody)",
    ),
    GRAFANA: Contract(
        uid=472, gid=0, entrypoint=("/run.sh",), tools=BUSYBOX | {"bash", "curl", "grafana"},
        writable=("/var/lib/grafana",), ports=(3000,),
        notes="run.sh exports GF_X from GF_X__FILE (and exits if both are set); no user switch.",
        source="grafana/grafana Dockerfile and packaging/docker/run.sh (alpine, USER 472 with group 0)",
    ),
    LOKI: Contract(
        uid=10001, gid=10001, entrypoint=("/usr/bin/loki",), command=("-config.file=/etc/loki/local-config.yaml",),
        tools=frozenset({"/usr/bin/loki"}), writable=("/loki",), ports=(3100,),
        notes="distroless: no shell; `loki -health` GETs http://localhost:3100/ready.",
        source="grafana/loki@5003600d (v3.7.6) cmd/loki/Dockerfile, cmd/loki/health.go",
    ),
    ALLOY: Contract(
        uid=0, gid=0, entrypoint=("/bin/alloy",), command=("run", "/etc/alloy/config.alloy", "--storage.path=/var/lib/alloy/data"),
        tools=DEBIAN | {"alloy"}, writable=("/var/lib/alloy/data",), ports=(12345,),
        notes="Ubuntu noble without curl or wget; listens on 127.0.0.1:12345 unless told otherwise.",
        source="grafana/alloy@6012ec4a (v1.18.1) Dockerfile, internal/alloycli/cmd_run.go",
    ),
    CADVISOR: Contract(
        uid=0, gid=0, entrypoint=("/usr/bin/entrypoint.sh",), tools=BUSYBOX | {"cadvisor", "sleep"}, ports=(8080,),
        notes="entrypoint.sh runs `cadvisor -logtostderr \"$@\"`.",
        source="google/cadvisor@44b8e306 (v0.60.5) deploy/{Dockerfile,entrypoint.sh} (alpine:3.23, no USER)",
    ),
    DOCKER_API_PROXY: Contract(
        uid=99, gid=99, entrypoint=("docker-entrypoint.sh",), command=("haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"),
        tools=BUSYBOX | {"haproxy", "socat"},
        notes="docker-entrypoint.sh runs `haproxy -W -db` with the arguments (no user switch; USER haproxy). STOPSIGNAL "
              "SIGUSR1 (soft stop). The service runs it as root: the Docker socket is root's.",
        source="docker-library/haproxy@ec437dd 3.4/alpine/{Dockerfile,docker-entrypoint.sh} (alpine:3.24, socat, USER haproxy)",
    ),
    NODE_EXPORTER: Contract(
        uid=65534, gid=65534, entrypoint=("/bin/node_exporter",), tools=BUSYBOX | {"node_exporter"}, ports=(9100,),
        source="prometheus/node_exporter@6044da78 (v1.12.1) Dockerfile (busybox, USER nobody)",
    ),
    SEAWEEDFS: Contract(
        uid=1000, gid=1000, starts_as_root=True, entrypoint=("/entrypoint.sh",), command=("mini", "-dir=/data"),
        tools=BUSYBOX | {"weed", "curl"}, writable=("/data",), ports=(8333, 8888, 9333, 8080),
        notes="As root: chowns /data when its owner differs, then re-runs itself as seaweed (su-exec) before weed starts; "
              "`server` gets -dir=/data -volume.max=0 -master.volumeSizeLimitMB=1024 prepended.",
        source="seaweedfs/seaweedfs@35637386 (4.44) docker/{Dockerfile.go_build,entrypoint.sh}; user since PR #7451 (4.01)",
    ),
    N8N: Contract(
        uid=1000, gid=1000, entrypoint=("tini", "--", "/docker-entrypoint.sh"), tools=BUSYBOX | {"node", "n8n", "tini"},
        writable=("/home/node/.n8n",), ports=(5678,),
        notes="No user switch; any N8N setting X is also read from X_FILE (a set X wins, the file is not trimmed).",
        source="n8n-io/n8n docker/images/n8n/Dockerfile, docker-entrypoint.sh; packages/@n8n/config decorators.ts",
    ),
    GITHUB_RUNNER: Contract(
        uid=0, gid=0, entrypoint=("/entrypoint.sh",), command=("./bin/Runner.Listener", "run", "--startuptype", "service"),
        tools=DEBIAN | {"curl", "jq", "docker", "gosu", "dumb-init"}, ports=(),
        notes="Reads ACCESS_TOKEN or RUNNER_TOKEN from the environment only (no *_FILE); DISABLE_AUTO_UPDATE (any value) "
              "passes --disableupdate; no procps, so no pgrep.",
        source="myoung34/docker-github-actions-runner@fcde5d32 (2.336.0) Dockerfile, entrypoint.sh, build/*.sh",
    ),
    POSTGRES_BACKUP: Contract(
        uid=0, gid=0, entrypoint=("backup-cron",),
        tools=BUSYBOX | {"pg_dump", "pg_restore", "pg_basebackup", "psql", "aws", "backup-cron", "python3", "gzip", "tar", "gpg", "find", "stat", "chown"}, ports=(BACKUP_METRICS_PORT,),
        notes="Ours. Alpine's busybox, PostgreSQL 17's client tools, aws-cli (Python 3); STOPSIGNAL SIGINT from "
              "the postgres image, which backup-cron handles like SIGTERM.",
        source="images/postgres-backup/Dockerfile; docker-library/postgres@6edb0a8c4d 17/alpine3.23/Dockerfile "
               "(17.9: no USER, STOPSIGNAL SIGINT, uid 70 for postgres; the 17.11/alpine3.24 file was not in the snapshot read)",
    ),
}


# The next major's images: the same contracts, but for the 18 image's own layout and the sources read.
CONTRACTS[POSTGRES_18] = replace(
    CONTRACTS[POSTGRES],
    writable=("/var/lib/postgresql", "/var/run/postgresql"),
    notes=CONTRACTS[POSTGRES].notes + " PGDATA defaults to /var/lib/postgresql/18/docker and VOLUME is /var/lib/postgresql "
    "(an anonymous volume where nothing is mounted there); the old-layout check runs only at that default PGDATA.",
    source="docker-library/postgres@6edb0a8c 18/bookworm/{Dockerfile,docker-entrypoint.sh}; "
           "pgvector/pgvector@8ee86c96 Dockerfile and README (0.8.6-pg18-bookworm: FROM postgres:18-bookworm)",
)
CONTRACTS[POSTGRES_BACKUP_18] = replace(
    CONTRACTS[POSTGRES_BACKUP],
    notes=CONTRACTS[POSTGRES_BACKUP].notes.replace("PostgreSQL 17's", "PostgreSQL 18's"),
    source="images/postgres-backup/Dockerfile; docker-library/postgres@6edb0a8c4d 18/alpine3.23/Dockerfile "
           "(18.3: no USER, STOPSIGNAL SIGINT, uid 70 for postgres; the 18.5/alpine3.24 file was not in the snapshot read)",
)


def owner(image: str) -> dict[str, str]:
    """file_uid and file_gid for a secret or config that only `image`'s program reads (with mode 0o400)."""
    contract = CONTRACTS[image]
    return {"uid": str(contract.uid), "gid": str(contract.gid)}
