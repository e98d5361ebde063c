"""SharedObservability: generated configs checked by the real tools where they exist here (promtool,
amtool), by structure where they do not (Loki, Alloy, Grafana)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import bcrypt
import pytest
import yaml

from components.observability_configs import RULES_DIR, prometheus_config
from components.settings import ObservabilitySettings
from tests.conftest import require_tool
from tests.harness import ROOT, ProgramRun, environment, run_program

promtool = require_tool("promtool")
amtool = require_tool("amtool")


def container(run: ProgramRun, service: str) -> dict:
    return run.service(service).inputs["taskSpec"]["containerSpec"]


@pytest.mark.tools
def test_promtool_accepts_the_generated_config_and_rules(tmp_path: Path, platform_run: ProgramRun) -> None:
    run = platform_run
    prometheus = run.service("shared_prometheus")
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    mounted_rules = [c["fileName"] for c in container(run, "shared_prometheus")["configs"] if c["fileName"].startswith(RULES_DIR)]
    assert mounted_rules, "alert rules are mounted"
    for file_name in mounted_rules:
        (rules_dir / Path(file_name).name).write_text(run.mounted_config(prometheus, file_name))
    config = run.mounted_config(prometheus, "/etc/prometheus/prometheus.yml").replace(RULES_DIR, str(rules_dir))
    (tmp_path / "prometheus.yml").write_text(config)
    checked = subprocess.run([promtool(), "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(mounted_rules)} rule files found" in checked.stdout
    rules = subprocess.run([promtool(), "check", "rules", *map(str, rules_dir.iterdir())], capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_alert_rules_cover_every_failure_domain(platform_run: ProgramRun) -> None:
    run = platform_run
    text = run.mounted_config(run.service("shared_prometheus"), f"{RULES_DIR}/alerts.yml")
    groups = {g["name"]: g["rules"] for g in yaml.safe_load(text)["groups"]}
    assert {"host", "containers", "traefik", "postgres", "redis"} <= set(groups)
    for rules in groups.values():
        for rule in rules:
            assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]


@pytest.mark.tools
def test_promtool_rejects_a_broken_config(tmp_path: Path) -> None:
    """The check above can fail: a bad scrape interval is refused."""
    broken = prometheus_config(ObservabilitySettings(("dev",), (), "15d", "15s", 168, None))
    broken["global"]["scrape_interval"] = "soon"
    (tmp_path / "p.yml").write_text(yaml.safe_dump(broken))
    assert subprocess.run([promtool(), "check", "config", str(tmp_path / "p.yml")], capture_output=True).returncode != 0


def test_prometheus_scrapes_everything_the_seeds_list(platform_run: ProgramRun) -> None:
    run = platform_run
    config = yaml.safe_load(run.mounted_config(run.service("shared_prometheus"), "/etc/prometheus/prometheus.yml"))
    assert config["global"]["scrape_interval"] == "15s"
    names = {
        name
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    for env in ("dev", "stg", "prod"):
        assert f"tasks.{env}_redis-exporter" in names and f"tasks.{env}_postgres-exporter" in names
    for service in ("core_traefik", "shared_cadvisor", "shared_node-exporter", "shared_seaweedfs"):
        assert f"tasks.{service}" in names
    static = [t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert "dev_auth:8080" in static
    args = container(run, "shared_prometheus")["args"]
    assert "--storage.tsdb.retention.time=15d" in args


def test_scrape_targets_are_configurable_per_stack() -> None:
    run = run_program("platform", {"appScrapeTargets": "dev_api:9000,dev_auth:8080", "monitoredEnvironments": "dev"})
    config = yaml.safe_load(run.mounted_config(run.service("shared_prometheus"), "/etc/prometheus/prometheus.yml"))
    text = json.dumps(config)
    assert "dev_api:9000" in text and "tasks.prod_redis-exporter" not in text


def test_prometheus_is_not_routed_and_demands_a_login(platform_run: ProgramRun) -> None:
    prometheus = platform_run.service("shared_prometheus")
    assert not [k for k in prometheus.labels if k.startswith("traefik.")], "no route from a published port"
    web = yaml.safe_load(platform_run.mounted_secret(prometheus, "prometheus_web.yml"))
    password = platform_run.outputs["prometheus_password"]
    assert password[1], "a secret output"
    assert bcrypt.checkpw(password[0].encode(), web["basic_auth_users"]["prometheus"].encode())
    assert platform_run.mounted_secret(prometheus, "prometheus_password") == password[0]
    health = prometheus.inputs["taskSpec"]["containerSpec"]["healthcheck"]["tests"]
    assert "prometheus:$(cat /run/secrets/prometheus_password)@127.0.0.1:9090/-/healthy" in health[-1]
    grafana = platform_run.service("shared_grafana")
    assert platform_run.mounted_secret(grafana, "prometheus_password") == password[0]


@pytest.mark.tools
def test_amtool_accepts_alertmanager_config(tmp_path: Path) -> None:
    for webhook in (None, "https://hooks.slack.com/services/T000/B000/XXXXXXXX"):
        run = run_program("platform", secrets={"alertWebhookUrl": webhook} if webhook else None)
        text = run.mounted_secret(run.service("shared_alertmanager"), "alertmanager.yml")
        (tmp_path / "am.yml").write_text(text)
        checked = subprocess.run([amtool(), "check-config", str(tmp_path / "am.yml")], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        if webhook:
            assert yaml.safe_load(text)["receivers"][0]["webhook_configs"][0]["url"] == webhook
        else:
            assert "webhook_configs" not in text


def test_loki_schema_v13_and_retention_enforced(platform_run: ProgramRun) -> None:
    run = platform_run
    loki = run.service("shared_loki")
    config = yaml.safe_load(run.mounted_config(loki, "/etc/loki/loki.yml"))
    (schema,) = config["schema_config"]["configs"]
    assert schema["store"] == "tsdb" and schema["schema"] == "v13" and schema["index"]["period"] == "24h"
    assert config["limits_config"]["retention_period"] == "168h"
    compactor = config["compactor"]
    assert compactor["retention_enabled"] is True and compactor["delete_request_store"] == "filesystem"
    assert compactor["working_directory"].startswith(config["common"]["path_prefix"])
    image = container(run, "shared_loki")["image"]
    assert re.fullmatch(r"grafana/loki:3\.\d+\.\d+", image)
    assert container(run, "shared_loki")["healthcheck"]["tests"] == ["CMD", "/usr/bin/loki", "-health"]


def test_alloy_ships_logs_with_swarm_labels_from_every_node(platform_run: ProgramRun) -> None:
    run = platform_run
    alloy = run.service("shared_alloy")
    assert alloy.inputs["mode"] == {"global": True}
    text = run.mounted_config(alloy, "/etc/alloy/config.alloy")
    assert text.count("{") == text.count("}")
    assert "$" not in text, "every template placeholder is filled"
    relabels = dict(re.findall(r'source_labels = \["(\w+)"\]\s*(?:regex\s*=\s*"[^"]*"\s*)?target_label\s*=\s*"(\w+)"', text))
    assert relabels["__meta_docker_container_name"] == "container"
    assert relabels["__meta_docker_container_label_com_docker_swarm_service_name"] == "service"
    assert relabels["__meta_docker_container_label_com_docker_stack_namespace"] == "stack"
    assert 'url = "http://shared_loki:3100/loki/api/v1/push"' in text
    # The labels Alloy reads are set on every container by the program.
    for service in run.services:
        labels = {item["label"] for item in service.inputs["taskSpec"]["containerSpec"]["labels"]}
        assert labels == {"com.docker.stack.namespace"}, "container labels force replacement: nothing that changes"


def test_grafana_admin_from_secrets_and_datasources_provisioned(platform_run: ProgramRun) -> None:
    run = platform_run
    grafana = run.service("shared_grafana")
    env = environment(container(run, "shared_grafana"))
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert run.mounted_secret(grafana, "grafana_admin_password") == run.outputs["grafana_admin_password"][0]
    assert run.outputs["grafana_admin_password"][1]
    sources = yaml.safe_load(run.mounted_config(grafana, "/etc/grafana/provisioning/datasources/nextcandle.yml"))
    by_type = {s["type"]: s for s in sources["datasources"]}
    assert by_type["prometheus"]["url"] == "http://shared_prometheus:9090" and by_type["prometheus"]["isDefault"]
    assert by_type["loki"]["url"] == "http://shared_loki:3100"
    labels = grafana.labels
    assert labels["traefik.http.routers.grafana.rule"] == "Host(`grafana.nextcandle.io`) || Host(`grafana.localhost`)"


def test_node_agents_run_on_every_node(platform_run: ProgramRun) -> None:
    run = platform_run
    for name in ("shared_cadvisor", "shared_node-exporter", "shared_alloy"):
        assert run.service(name).inputs["mode"] == {"global": True}


def test_only_the_platform_declares_shared_services(stack_run: ProgramRun) -> None:
    shared = [s for s in stack_run.services if s.swarm_name.startswith("shared_")]
    assert bool(shared) == (stack_run.stack == "platform")


@pytest.mark.tools
def test_a_real_prometheus_demands_the_login_and_its_health_check_gives_it(tmp_path: Path, platform_run: ProgramRun) -> None:
    """Debian's Prometheus with our --web.config.file: no answer without the password, and the
    service's own health check command (busybox wget, as in the image) logs in."""
    import base64
    import shutil
    import time
    import urllib.error
    import urllib.request

    from tests.harness import free_port

    prometheus_binary = shutil.which("prometheus")
    assert prometheus_binary and shutil.which("busybox"), "scripts/run-tests.sh installs prometheus and busybox-static"
    run = platform_run
    service = run.service("shared_prometheus")
    (tmp_path / "web.yml").write_text(run.mounted_secret(service, "prometheus_web.yml"))
    (tmp_path / "prometheus_password").write_text(run.mounted_secret(service, "prometheus_password"))
    (tmp_path / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
    assert subprocess.run([promtool(), "check", "web-config", str(tmp_path / "web.yml")], capture_output=True).returncode == 0
    port = free_port()
    process = subprocess.Popen(
        [prometheus_binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--web.config.file={tmp_path / 'web.yml'}",
         f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.path={tmp_path / 'data'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/-/healthy"
    try:
        status = 0
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=2)
                status = 200
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                time.sleep(0.1)
                continue
            break
        assert status == 401, "no answer without the login"
        password = (tmp_path / "prometheus_password").read_text()
        login = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode()})
        assert urllib.request.urlopen(login, timeout=5).status == 200
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "wget").symlink_to(shutil.which("busybox") or "busybox")
        health = service.inputs["taskSpec"]["containerSpec"]["healthcheck"]["tests"][-1]
        health = health.replace("/run/secrets/", f"{tmp_path}/").replace("127.0.0.1:9090", f"127.0.0.1:{port}")
        checked = subprocess.run(["sh", "-c", health], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.tools
def test_backup_alerts_fire_for_stale_and_failing_backups_only() -> None:
    """promtool test rules: fresh, stale, never successful and failing backup services."""
    for cases in sorted((ROOT / "tests" / "prometheus").glob("*.test.yml")):
        tested = subprocess.run([promtool(), "test", "rules", str(cases)], capture_output=True, text=True, cwd=cases.parent)
        assert tested.returncode == 0, tested.stdout + tested.stderr
