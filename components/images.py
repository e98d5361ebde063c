"""Every container image the platform runs, pinned. Bump them here (one place, one review).

Where a comment gives a release and its date, the tag was confirmed in the upstream repository
(its tags, changelog and image publishing workflow) on 2026-11-23.
"""

# v3.6.12: the release the edge tests build and run (scripts/tools/traefik/go.mod, the newest v3.6 the
# Go module proxy lists); includes the v3.6.4 fixes for CVE-2025-66490/66491.
TRAEFIK = "traefik:v3.6.12"
# 2026.8.2 (2026-08-14, cloudflare/cloudflared RELEASE_NOTES): Go and path-normalisation security fixes;
# `tunnel --token-file`, `--no-autoupdate` and `tunnel ready` unchanged.
CLOUDFLARED = "cloudflare/cloudflared:2026.8.2"
# pgvector 0.8.6 (2026-07-29; tags listed in its README): 0.8.2 fixes a buffer overflow in parallel HNSW
# builds, 0.8.3 HNSW index corruption. Debian bookworm, as before.
POSTGRES = "pgvector/pgvector:0.8.6-pg17-bookworm"
# 7.4.11 (2026-08-18, docker-library/official-images library/redis): the 7.4 line the seeds run, with the
# 7.4.8/7.4.10 RCE fixes and the 2026-08-18 security release. 8.x is newer but a major we did not choose.
REDIS = "redis:7.4.11-alpine"
# v0.20.1 (2026-07-07): 0.20.0 renamed the replication_slot collector and metrics, which we use in no
# flag, rule or dashboard; DATA_SOURCE_URI and *_FILE unchanged.
POSTGRES_EXPORTER = "quay.io/prometheuscommunity/postgres-exporter:v0.20.1"
# v1.88.0 (2026-07-23; release workflow pushes <tag>-alpine, which has the shell our command needs).
REDIS_EXPORTER = "oliver006/redis_exporter:v1.88.0-alpine"
# v3.14.0 (2026-08-17): 3.11 fixed a UI XSS; no [CHANGE] since 3.7 touches a flag or field we use.
PROMETHEUS = "prom/prometheus:v3.14.0"
# v0.34.0 (2026-08-16): the breaking changes since 0.29 are a metric label, a removed no-op feature flag
# and Go package moves; none is in our configuration.
ALERTMANAGER = "prom/alertmanager:v0.34.0"
# 13.0.2 (2026-05; grafana/grafana#124896 "[release-13.0.2] Apply security patches"): the newest release
# whose changes we could read. 13.1 and 13.2 are out (versioned docs; 13.1.0 shipped by 2026-06-26), but
# neither their patch tags nor their breaking changes could be read here: bump after reading them.
# 13.0's breaking changes (legacy Alertmanager API paths, removed plugin UI components) touch nothing we
# provision; file-provisioned v1 dashboards are migrated on load. GF_*__FILE and /api/health are unchanged.
GRAFANA = "grafana/grafana:13.0.2"
# 3.7.5 (2026-08-05, the release-please manifest; the v3.7.6 tag carries no release): Go CVE fixes since
# 3.7.4. The image has no shell or wget; `loki -health` exists since 3.7.0 and was backported to 3.6.5.
LOKI = "grafana/loki:3.7.5"
# v1.18.1 (2026-08-06, grafana/alloy CHANGELOG): the breaking changes since 1.11 are in otelcol, beyla,
# loki.secretfilter and exporter instance labels; discovery.docker, discovery.relabel, loki.source.docker
# and loki.write, all we use, are unchanged. Still Ubuntu noble with bash, and root by default (docker.sock).
ALLOY = "grafana/alloy:v1.18.1"
# v0.60.5 (2026-07-11): v0.54.0 fixed empty container names and labels with Docker 29's containerd image
# store (google/cadvisor#3749); since v0.53.0 images are published on ghcr.io, not gcr.io. Our flags exist.
CADVISOR = "ghcr.io/google/cadvisor:v0.60.5"
# v1.12.1 (2026-07-14): new collectors and bug fixes, no flag we use changed.
NODE_EXPORTER = "prom/node-exporter:v1.12.1"
# MinIO's community images stopped in 2025-10 and left Docker Hub in 2026-09; SeaweedFS is Apache-2.0.
# 4.44 (2026-08-22; its release workflow pushes <tag> to Docker Hub and ghcr.io): 4.x fixes the
# unauthenticated filer IAM gRPC among others. Every `weed server` flag we pass, and the master's
# /cluster/status, are in 4.44's source. It is only on the `storage` network in any case.
SEAWEEDFS = "chrislusf/seaweedfs:4.44"
# 2.46.5 (2026-11-04; n8n-io/n8n release, marked stable; 2.47.x is beta): past the RCE fixed in 2.9.0
# and the SQL injection fixed in 2.27.4. The N8N_* variables we set are read by its @n8n/config source.
N8N = "n8nio/n8n:2.46.5"
# 2.336.0 (2026-07-20; release workflow tags <version>-ubuntu-<release>). The runner updates itself past it.
GITHUB_RUNNER = "myoung34/github-runner:2.336.0-ubuntu-noble"
# siemens/postgres-backup-s3 (the maintained fork; eeshugerman's never built 17 and is archived): its CI
# rebuilds `17` weekly from postgres:17-alpine (last commit 2025-10-31), so `17` is the only tag there is.
# It brings what our scripts in configs/backup use: pg_dump/pg_restore 17, the aws CLI (Alpine's, on
# python3 with its sqlite3 module, for SQLite snapshots), tar, gzip and go-cron.
POSTGRES_BACKUP = "siemens/postgres-backup-s3:17"
