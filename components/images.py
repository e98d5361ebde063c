"""Every container image the platform runs, pinned. Bump them here (one place, one review)."""

# v3.6.12: the release the edge tests build and run (scripts/tools/traefik/go.mod, the newest v3.6 the
# Go module proxy lists); includes the v3.6.4 fixes for CVE-2025-66490/66491.
TRAEFIK = "traefik:v3.6.12"
CLOUDFLARED = "cloudflare/cloudflared:2025.11.1"
POSTGRES = "pgvector/pgvector:0.8.1-pg17"
REDIS = "redis:7.4.6-alpine"
POSTGRES_EXPORTER = "quay.io/prometheuscommunity/postgres-exporter:v0.18.1"
REDIS_EXPORTER = "oliver006/redis_exporter:v1.80.0-alpine"
PROMETHEUS = "prom/prometheus:v3.7.3"
ALERTMANAGER = "prom/alertmanager:v0.29.0"
GRAFANA = "grafana/grafana:12.3.1"
# Loki 3.6 images have no shell, wget or health command; 3.7 adds `loki -health` (grafana/loki#20313).
LOKI = "grafana/loki:3.7.2"
ALLOY = "grafana/alloy:v1.11.3"
CADVISOR = "gcr.io/cadvisor/cadvisor:v0.52.1"
NODE_EXPORTER = "prom/node-exporter:v1.10.2"
# MinIO's community images stopped in 2025-10 and left Docker Hub in 2026-09; SeaweedFS is Apache-2.0.
SEAWEEDFS = "chrislusf/seaweedfs:3.97"
N8N = "n8nio/n8n:2.1.2"
GITHUB_RUNNER = "myoung34/github-runner:2.329.0-ubuntu-noble"
POSTGRES_BACKUP = "eeshugerman/postgres-backup-s3:17"
