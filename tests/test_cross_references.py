"""Names that one generated file uses and another declares must agree: a typo here is a silent
outage (an empty scrape job, a 404 router, a dashboard folder with nothing in it)."""

from __future__ import annotations

import re

import pytest
import yaml

from components.observability_configs import DASHBOARDS_DIR, grafana_dashboard_provider, grafana_datasources
from tests.conftest import ProgramRuns
from tests.harness import ProgramRun, Resource, environment

Services = dict[str, tuple[ProgramRun, Resource]]


@pytest.fixture(scope="module")
def services(runs: ProgramRuns) -> Services:
    """Every service of every stack, by its name and by its network aliases: the platform with all its
    parts, and the three environments."""
    found: Services = {}
    for run in (runs.full, runs("dev"), runs("stg"), runs("prod")):
        for service in run.services:
            found[service.swarm_name] = (run, service)
            for network in service.inputs["taskSpec"].get("networksAdvanceds", []):
                found.update({alias: (run, service) for alias in network.get("aliases", [])})
    return found


def networks_of(services: Services, name: str) -> set[str]:
    run, service = services[name]
    return run.network_names(service)


def test_every_scrape_target_is_a_declared_service_on_the_monitoring_network(runs: ProgramRuns, services: Services) -> None:
    run = runs.full
    config = yaml.safe_load(run.mounted_config(run.service("shared_prometheus"), "/etc/prometheus/prometheus.yml"))
    services = services
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                service = name.removeprefix("tasks.")
                assert service in services, f"job {job['job_name']} scrapes {service}, which no stack declares"
                assert networks_of(services, "shared_prometheus") & networks_of(services, service), f"Prometheus cannot reach {service}"
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["shared_alertmanager:9093"]
    assert "shared_alertmanager" in services


def test_every_middleware_a_router_uses_is_defined(runs: ProgramRuns, services: Services) -> None:
    run = runs.full
    traefik = run.service("core_traefik")
    static = yaml.safe_load(run.mounted_config(traefik, "/etc/traefik/traefik.yml"))
    dynamic = yaml.safe_load(run.mounted_config(traefik, "/etc/traefik/dynamic.yml"))
    defined = {f"{name}@file" for name in dynamic["http"]["middlewares"]}
    used = {m for entry in static["entryPoints"].values() for m in entry.get("http", {}).get("middlewares", [])}
    for service in run.services:
        for label, value in service.labels.items():
            if label.endswith(".middlewares"):
                used |= set(value.split(","))
    assert used and used <= defined
    for router in dynamic["http"]["routers"].values():
        assert set(router["middlewares"]) <= set(dynamic["http"]["middlewares"])
        assert set(router["entryPoints"]) <= set(static["entryPoints"])


def test_routed_services_name_their_own_routers(services: Services) -> None:
    for name, (_, service) in services.items():
        labels = service.labels
        routers = {k.split(".")[3] for k in labels if k.startswith("traefik.http.routers.")}
        services = {k.split(".")[3] for k in labels if k.startswith("traefik.http.services.")}
        assert routers <= services, f"{name}: every router has its own load-balancer port"


def test_grafana_reads_dashboards_where_they_are_mounted(services: Services) -> None:
    (provider,) = grafana_dashboard_provider()["providers"]
    assert provider["options"]["path"] == DASHBOARDS_DIR
    sources = grafana_datasources()["datasources"]
    for source in sources:
        host = re.match(r"http://([^:]+):", source["url"])
        assert host and host[1] in services, source["url"]
    for source in sources:
        target = re.match(r"http://([^:]+):", source["url"])[1]  # type: ignore[index]
        assert networks_of(services, "shared_grafana") & networks_of(services, target), f"Grafana cannot reach {source['url']}"


def test_backup_reaches_the_database_and_the_object_storage(services: Services) -> None:
    for env in ("dev", "stg", "prod"):
        _, backup = services[f"{env}_postgres-backup"]
        env_vars = environment(backup.inputs["taskSpec"]["containerSpec"])
        storage = re.match(r"http://([^:]+):", env_vars["S3_ENDPOINT"])[1]  # type: ignore[index]
        backup_networks = networks_of(services, f"{env}_postgres-backup")
        assert backup_networks & networks_of(services, env_vars["POSTGRES_HOST"]), f"{env}: backup cannot reach PostgreSQL"
        assert backup_networks & networks_of(services, storage), f"{env}: backup cannot reach {storage}"
