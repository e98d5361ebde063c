"""Our Grafana dashboards: valid JSON, provisioned, and every query valid and about metrics we scrape."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.observability_configs import DASHBOARDS_DIR, dashboard_files, grafana_datasources
from tests.conftest import ProgramRuns, require_tool

promtool = require_tool("promtool")

# Which scrape job exports each metric family the dashboards use.
METRIC_SOURCES = {"node_": "node-exporter", "container_": "cadvisor", "traefik_": "traefik", "pg_": "postgres", "redis_": "redis"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
ALLOY_LABELS = {"container", "service", "stack", "node_id"}


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in dashboard_files()}


def queries(board: dict[str, Any], kind: str) -> list[str]:
    return [t["expr"] for p in board["panels"] if p["datasource"]["type"] == kind for t in p["targets"]]


def test_dashboards_cover_every_area_with_unique_uids() -> None:
    boards = dashboards()
    assert set(boards) == {"nodes", "containers", "traefik", "postgres", "redis", "logs"}
    uids = [b["uid"] for b in boards.values()]
    assert len(set(uids)) == len(uids)
    for board in boards.values():
        assert board["title"] and board["panels"]
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids)


def test_dashboards_use_provisioned_data_sources() -> None:
    provisioned = {s["uid"] for s in grafana_datasources()["datasources"]}
    for name, board in dashboards().items():
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in provisioned, name
            assert all(t["datasource"]["uid"] in provisioned for t in panel["targets"])


@pytest.mark.tools
def test_every_promql_query_is_valid(tmp_path: Path) -> None:
    rules = []
    for name, board in dashboards().items():
        for n, expr in enumerate(queries(board, "prometheus")):
            # Grafana variables become a match-anything regex for the syntax check.
            rules.append({"record": f"dashboard:{name}:{n}", "expr": re.sub(r"\$\w+", ".*", expr)})
    assert len(rules) >= 25
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_every_metric_comes_from_a_job_we_scrape(runs: ProgramRuns) -> None:
    run = runs("platform")
    config = yaml.safe_load(run.mounted_config(run.service("shared_prometheus"), "/etc/prometheus/prometheus.yml"))
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    functions = {"rate", "increase", "sum", "avg", "max", "changes", "histogram_quantile", "label_values"}
    for name, board in dashboards().items():
        for expr in queries(board, "prometheus"):
            bare = re.sub(r'"[^"]*"', '""', expr)
            bare = re.sub(r"\b(by|without) \([^)]*\)|\{[^}]*\}|\[[^\]]*\]", " ", bare)
            metrics = {m for m in re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*\b", bare) if m not in functions | PROMQL_WORDS}
            assert metrics, f"{name}: {expr}"
            for metric in metrics:
                if metric == "up":
                    continue
                source = next((job for prefix, job in METRIC_SOURCES.items() if metric.startswith(prefix)), None)
                assert source in jobs, f"{name}: {metric} is not scraped ({expr})"


def test_log_queries_use_the_labels_alloy_ships() -> None:
    for expr in queries(dashboards()["logs"], "loki"):
        selectors = re.findall(r"\{([^}]*)\}", expr)
        assert selectors
        for selector in selectors:
            labels = set(re.findall(r"(\w+)\s*=~?", selector))
            assert labels and labels <= ALLOY_LABELS, expr


def test_grafana_mounts_every_dashboard(runs: ProgramRuns) -> None:
    run = runs("platform")
    grafana = run.service("shared_grafana")
    for path in dashboard_files():
        mounted = json.loads(run.mounted_config(grafana, f"{DASHBOARDS_DIR}/{path.name}"))
        assert mounted["uid"] == json.loads(path.read_text())["uid"]
        assert len(path.read_bytes()) < 1000 * 1024, "Swarm configs are limited to 1000 KB"
