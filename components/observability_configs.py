"""The observability stack's configuration files, built as data (Prometheus, Alertmanager, Loki,
Grafana's provisioning) or rendered from templates under configs/ (Alloy), for SharedObservability
to mount as content-named Swarm configs."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from components.settings import CONFIGS, ObservabilitySettings
from components.swarm_values import dump_yaml
from names import (
    ALERTMANAGER,
    ALERTMANAGER_PORT,
    BACKUP_METRICS_PORT,
    CADVISOR,
    CADVISOR_PORT,
    CLOUDFLARED,
    CLOUDFLARED_METRICS_PORT,
    DOCKER_API_SOCKET,
    LOKI,
    LOKI_GRPC_PORT,
    LOKI_PORT,
    N8N,
    N8N_PORT,
    NODE_EXPORTER,
    NODE_EXPORTER_PORT,
    OBJECT_STORAGE,
    OBJECT_STORAGE_METRICS_PORT,
    PLATFORM_BACKUP,
    POSTGRES_EXPORTER_PORT,
    PROMETHEUS,
    PROMETHEUS_PORT,
    REDIS_EXPORTER_PORT,
    TRAEFIK,
    TRAEFIK_METRICS_PORT,
    env_service,
)

PROMETHEUS_USER = "prometheus"
PROMETHEUS_PASSWORD_FILE = "/run/secrets/prometheus_password"
"""Prometheus answers nobody without basic auth: applications share the monitoring network with it."""
RULES_DIR = "/etc/prometheus/rules"
DASHBOARDS_DIR = "/etc/grafana/dashboards"


def _dns_job(job: str, services: list[str], port: int, path: str = "/metrics") -> dict[str, Any]:
    """Scrape every replica of Swarm services through their `tasks.<service>` DNS records."""
    return {
        "job_name": job,
        "metrics_path": path,
        "dns_sd_configs": [{"names": [f"tasks.{s}" for s in services], "type": "A", "port": port}],
        "relabel_configs": [
            {"source_labels": ["__meta_dns_name"], "regex": r"tasks\.([a-z]+)_.*", "target_label": "environment"},
            {"source_labels": ["__meta_dns_name"], "regex": r"tasks\.(.*)", "target_label": "service"},
        ],
    }


def prometheus_config(settings: ObservabilitySettings, rules_dir: str = RULES_DIR) -> dict[str, Any]:
    envs = list(settings.monitored_environments)
    jobs = [
        {
            "job_name": "prometheus",
            "basic_auth": {"username": PROMETHEUS_USER, "password_file": PROMETHEUS_PASSWORD_FILE},
            "static_configs": [{"targets": [f"localhost:{PROMETHEUS_PORT}"]}],
        },
        _dns_job("traefik", [TRAEFIK], TRAEFIK_METRICS_PORT),
        _dns_job("cloudflared", [CLOUDFLARED], CLOUDFLARED_METRICS_PORT),
        _dns_job("cadvisor", [CADVISOR], CADVISOR_PORT),
        _dns_job("node-exporter", [NODE_EXPORTER], NODE_EXPORTER_PORT),
        _dns_job("redis", [env_service(env, "redis-exporter") for env in envs], REDIS_EXPORTER_PORT),
        _dns_job("postgres", [env_service(env, "postgres-exporter") for env in envs], POSTGRES_EXPORTER_PORT),
        # backup-cron in each backup service (a stack without backups has no such name: no target).
        _dns_job("backups", [*(env_service(env, "postgres-backup") for env in envs), PLATFORM_BACKUP], BACKUP_METRICS_PORT),
        _dns_job("object-storage", [OBJECT_STORAGE], OBJECT_STORAGE_METRICS_PORT),
        _dns_job("n8n", [N8N], N8N_PORT),
        _dns_job("loki", [LOKI], LOKI_PORT),
        _dns_job("alertmanager", [ALERTMANAGER], ALERTMANAGER_PORT),
    ]
    if settings.app_scrape_targets:
        jobs.append(
            {
                "job_name": "applications",
                "static_configs": [{"targets": list(settings.app_scrape_targets)}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "regex": r"([a-z]+)_.*", "target_label": "environment"}
                ],
            }
        )
    return {
        "global": {
            "scrape_interval": settings.scrape_interval,
            "evaluation_interval": settings.scrape_interval,
            "external_labels": {"platform": "nextcandle"},
        },
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{ALERTMANAGER}:{ALERTMANAGER_PORT}"]}]}]},
        "rule_files": [f"{rules_dir}/*.yml"],
        "scrape_configs": jobs,
    }


def alertmanager_config(webhook_url: str | None) -> dict[str, Any]:
    receiver: dict[str, Any] = {"name": "default"}
    if webhook_url:
        receiver["webhook_configs"] = [{"url": webhook_url, "send_resolved": True}]
    return {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "environment"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
        "inhibit_rules": [
            {"source_matchers": ["severity=critical"], "target_matchers": ["severity=warning"], "equal": ["alertname", "environment"]}
        ],
        "receivers": [receiver],
    }


def loki_config(retention_hours: int) -> dict[str, Any]:
    return {
        "auth_enabled": False,
        "server": {"http_listen_port": LOKI_PORT, "grpc_listen_port": LOKI_GRPC_PORT, "log_level": "warn"},
        "common": {
            "instance_addr": "127.0.0.1",
            "path_prefix": "/loki",
            "storage": {"filesystem": {"chunks_directory": "/loki/chunks", "rules_directory": "/loki/rules"}},
            "replication_factor": 1,
            "ring": {"kvstore": {"store": "inmemory"}},
        },
        "schema_config": {
            "configs": [
                {
                    "from": "2024-01-01",
                    "store": "tsdb",
                    "object_store": "filesystem",
                    "schema": "v13",
                    "index": {"prefix": "index_", "period": "24h"},
                }
            ]
        },
        "limits_config": {
            "retention_period": f"{retention_hours}h",
            "reject_old_samples": True,
            "reject_old_samples_max_age": f"{retention_hours}h",
        },
        # Retention is only enforced when the compactor deletes: retention_enabled is the switch.
        "compactor": {
            "working_directory": "/loki/compactor",
            "compaction_interval": "10m",
            "retention_enabled": True,
            "retention_delete_delay": "2h",
            "delete_request_store": "filesystem",
        },
        "analytics": {"reporting_enabled": False},
    }


def alloy_config() -> str:
    template = (CONFIGS / "alloy" / "config.alloy").read_text()
    return string.Template(template).substitute(
        loki_push_url=f"http://{LOKI}:{LOKI_PORT}/loki/api/v1/push", docker_host=f"unix://{DOCKER_API_SOCKET}"
    )


def grafana_datasources() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {"name": "Prometheus", "uid": "prometheus", "type": "prometheus", "access": "proxy",
             "url": f"http://{PROMETHEUS}:{PROMETHEUS_PORT}", "isDefault": True, "editable": False,
             "basicAuth": True, "basicAuthUser": PROMETHEUS_USER,
             # Grafana expands $__file{} in provisioning files: the password stays in the secret file.
             "secureJsonData": {"basicAuthPassword": f"$__file{{{PROMETHEUS_PASSWORD_FILE}}}"}},
            {"name": "Loki", "uid": "loki", "type": "loki", "access": "proxy", "url": f"http://{LOKI}:{LOKI_PORT}", "editable": False},
            {"name": "Alertmanager", "uid": "alertmanager", "type": "alertmanager", "access": "proxy",
             "url": f"http://{ALERTMANAGER}:{ALERTMANAGER_PORT}", "jsonData": {"implementation": "prometheus"}, "editable": False},
        ],
    }


def prometheus_web_config(bcrypt_hash: str) -> str:
    """--web.config.file: basic auth on every endpoint (the health check logs in too)."""
    return dump_yaml({"basic_auth_users": {PROMETHEUS_USER: bcrypt_hash}})


def grafana_dashboard_provider() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {"name": "nextcandle", "folder": "NextCandle", "type": "file", "disableDeletion": True,
             "allowUiUpdates": False, "options": {"path": DASHBOARDS_DIR}}
        ],
    }


def dashboard_files() -> list[Path]:
    return sorted((CONFIGS / "grafana" / "dashboards").glob("*.json"))


def rule_files() -> list[Path]:
    return sorted((CONFIGS / "prometheus" / "rules").glob("*.yml"))
