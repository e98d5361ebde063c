"""CoreStack: networks, Traefik and the Cloudflare Tunnel, as a user of the platform relies on them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from names import ENVIRONMENTS
from tests.conftest import FULL, FULL_SECRETS, ProgramRuns, require_tool
from tests.harness import (
    DNS_RECORD,
    MOCK_TUNNEL_TOKEN,
    NETWORK,
    REFERENCED_ID_SUFFIX,
    STACK_REFERENCE,
    TUNNEL,
    TUNNEL_CONFIG,
    ProgramRun,
    run_program,
)

htpasswd = require_tool("htpasswd")


def test_the_platform_owns_the_shared_networks_and_environments_read_them(stack_run: ProgramRun) -> None:
    networks = {n.inputs["name"]: n.inputs for n in stack_run.of_type(NETWORK)}
    if stack_run.stack == "platform":
        for name in ("traefik-public", "monitoring"):
            assert networks[name] == {**networks[name], "driver": "overlay", "attachable": True}
        assert not [s for s in stack_run.services if s.swarm_name.split("_")[0] in ENVIRONMENTS]
        return
    env = stack_run.stack
    assert set(networks) == {f"{env}_internal"} and networks[f"{env}_internal"]["attachable"]
    assert all(s.swarm_name.startswith(f"{env}_") for s in stack_run.services), "no platform resource in an environment"
    (reference,) = stack_run.of_type(STACK_REFERENCE)
    assert reference.inputs["name"] == "platform"
    exporter = stack_run.service(f"{env}_redis-exporter")
    ids = [n["id"] for n in exporter.inputs["taskSpec"]["networksAdvanceds"]]
    assert "monitoring" + REFERENCED_ID_SUFFIX in ids, "joins the monitoring network the platform exports"


def test_traefik_runs_on_a_manager_with_the_swarm_provider(platform_run: ProgramRun) -> None:
    stack_run = platform_run
    traefik = stack_run.service("core_traefik")
    task = traefik.inputs["taskSpec"]
    assert task["containerSpec"]["image"].startswith("traefik:v3.")
    assert task["placement"]["constraints"] == ["node.role==manager"]
    static = yaml.safe_load(stack_run.mounted_config(traefik, "/etc/traefik/traefik.yml"))
    swarm = static["providers"]["swarm"]
    assert swarm["exposedByDefault"] is False and swarm["network"] == "traefik-public"
    assert "docker" not in static["providers"], "v3 uses providers.swarm, not providers.docker.swarmMode"
    assert {name: e["address"] for name, e in static["entryPoints"].items()} == {
        "web": ":80", "tunnel": ":8000", "traefik": ":8080", "metrics": ":8082",
    }
    assert static["metrics"]["prometheus"]["entryPoint"] == "metrics"
    assert static["accessLog"]["format"] == "json"
    assert static["api"] == {"dashboard": True}, "no insecure API: the dashboard router carries basic auth"
    for entry in ("web",):
        assert static["entryPoints"][entry]["http"]["middlewares"] == ["security-headers@file", "rate-limit@file"]
    ports = {(p["publishedPort"], p["targetPort"]) for p in traefik.inputs["endpointSpec"]["ports"]}
    assert ports == {(80, 80)}, "no 443: TLS ends at Cloudflare; the dashboard's plain HTTP only when asked for"
    published = run_program("platform", {"traefikDashboardPublished": "true"}).service("core_traefik")
    assert {(p["publishedPort"], p["targetPort"]) for p in published.inputs["endpointSpec"]["ports"]} == {(80, 80), (8080, 8080)}


def test_traefik_ports_can_stay_closed_for_a_tunnel_only_setup() -> None:
    run = run_program("platform", {"traefikPublishPorts": "false"})
    assert not run.service("core_traefik").inputs["endpointSpec"].get("ports")


def test_dynamic_config_has_headers_rate_limit_and_authenticated_dashboard() -> None:
    run = run_program("platform", {"rateLimitAverage": "42", "rateLimitBurst": "84"})
    traefik = run.service("core_traefik")
    dynamic = yaml.safe_load(run.mounted_config(traefik, "/etc/traefik/dynamic.yml"))
    middlewares = dynamic["http"]["middlewares"]
    headers = middlewares["security-headers"]["headers"]
    assert headers["frameDeny"] and headers["contentTypeNosniff"] and headers["stsSeconds"] >= 31536000
    assert middlewares["rate-limit"]["rateLimit"]["average"] == 42
    assert middlewares["rate-limit"]["rateLimit"]["burst"] == 84
    router = dynamic["http"]["routers"]["dashboard"]
    assert router["service"] == "api@internal" and router["entryPoints"] == ["traefik"]
    assert router["middlewares"] == ["dashboard-auth"]
    users_file = middlewares["dashboard-auth"]["basicAuth"]["usersFile"]
    mounted = {"/run/secrets/" + s["fileName"] for s in traefik.inputs["taskSpec"]["containerSpec"]["secrets"]}
    assert users_file in mounted


@pytest.mark.tools
def test_dashboard_hash_is_accepted_by_htpasswd(tmp_path: Path) -> None:
    run = run_program("platform")
    traefik = run.service("core_traefik")
    users = run.mounted_secret(traefik, "traefik_dashboard_users")
    assert re.fullmatch(r"admin:\$2[aby]\$\d\d\$\S{53}\n", users)
    users_file = tmp_path / "users"
    users_file.write_text(users)
    password = run.outputs["traefik_dashboard_password"]
    assert password[1], "the dashboard password is a secret output"
    ok = subprocess.run([htpasswd(), "-vb", str(users_file), "admin", password[0]], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run([htpasswd(), "-vb", str(users_file), "admin", "not-the-password"], capture_output=True)
    assert wrong.returncode != 0


def test_no_cloudflared_without_a_tunnel() -> None:
    run = run_program("platform")
    assert not [s for s in run.services if "cloudflared" in s.swarm_name]


def test_token_mode_feeds_the_configured_token_from_a_secret() -> None:
    token = "eyJhIjoiYWNjb3VudCIsInQiOiJ0dW5uZWwifQ=="
    run = run_program("platform", {"tunnelMode": "token"}, {"cloudflareTunnelToken": token})
    cloudflared = run.service("core_cloudflared")
    args = cloudflared.inputs["taskSpec"]["containerSpec"]["args"]
    assert args[args.index("--token-file") + 1] == "/run/secrets/cloudflared_token"
    assert token not in str(args)
    assert run.mounted_secret(cloudflared, "cloudflared_token") == token
    assert not run.of_type(TUNNEL), "token mode keeps ingress in the Cloudflare dashboard"


def test_managed_mode_declares_tunnel_ingress_and_dns(full_run: ProgramRun) -> None:
    (tunnel,) = full_run.of_type(TUNNEL)
    assert tunnel.inputs["configSrc"] == "cloudflare"
    assert tunnel.inputs["accountId"] == FULL["cloudflareAccountId"]
    assert len(__import__("base64").b64decode(tunnel.inputs["tunnelSecret"])) == 32
    (config,) = full_run.of_type(TUNNEL_CONFIG)
    ingresses = config.inputs["config"]["ingresses"]
    assert ingresses[-1] == {"service": "http_status:404"}, "the last rule must match everything"
    assert all(i["service"] == "http://core_traefik:8000" for i in ingresses[:-1]), "the tunnel's own entry point"
    records = {r.inputs["name"]: r.inputs for r in full_run.of_type(DNS_RECORD)}
    tunnel_id = "zerotrusttunnelcloudflared:core-tunnel"
    for rule in ingresses[:-1]:
        record = records[rule["hostname"]]
        assert record == {**record, "type": "CNAME", "proxied": True, "ttl": 1, "content": f"{tunnel_id}.cfargotunnel.com"}
    cloudflared = full_run.service("core_cloudflared")
    assert full_run.mounted_secret(cloudflared, "cloudflared_token") == MOCK_TUNNEL_TOKEN
    assert FULL_SECRETS["cloudflareApiToken"] not in str(full_run.services)


def test_every_routed_public_hostname_has_ingress_and_dns(full_run: ProgramRun) -> None:
    routed = set()
    for service in full_run.services:
        for label in service.inputs["labels"]:
            if label["label"].endswith(".rule"):
                routed |= {h for h in re.findall(r"Host\(`([^`]+)`\)", label["value"]) if not h.endswith(".localhost")}
    (config,) = full_run.of_type(TUNNEL_CONFIG)
    ingress_hosts = {i.get("hostname") for i in config.inputs["config"]["ingresses"]}
    dns_hosts = {r.inputs["name"] for r in full_run.of_type(DNS_RECORD)}
    assert routed, "shared services are routed"
    assert routed <= ingress_hosts and routed <= dns_hosts
    assert {"www.nextcandle.io", "stg.nextcandle.io"} <= ingress_hosts


def test_an_existing_traefik_public_is_used_not_created(runs: ProgramRuns) -> None:
    """Adopting the seeds' swarm: their hand-made traefik-public carries the applications; the platform joins it."""
    run = runs("platform", {"externalPublicNetwork": "true"})
    assert "traefik-public" not in {n.inputs["name"] for n in run.of_type(NETWORK)}
    traefik = run.service("core_traefik")
    assert "traefik-public-existing-id" in {n["id"] for n in traefik.inputs["taskSpec"]["networksAdvanceds"]}
    assert run.outputs["public_network_id"][0] == "traefik-public-existing-id"
    assert "traefik-public" in {n.inputs["name"] for n in runs("platform").of_type(NETWORK)}


def test_outputs_show_the_urls_a_person_can_reach() -> None:
    """Public URLs through a tunnel; a local-only deployment (no tunnel) shows its *.localhost aliases."""
    local = run_program("platform", {"tunnelMode": "none", "localAliases": "true", "objectStoragePublic": "true"})
    assert local.outputs["grafana_url"][0] == "http://grafana.localhost/" and local.outputs["s3_endpoint"][0] == "http://s3.localhost"
    unrouted = run_program("platform", {"tunnelMode": "none", "localAliases": "true"})
    assert unrouted.outputs["s3_endpoint"][0].startswith("http://object-storage:8333 (inside the swarm only")
    tunneled = run_program("platform", {"tunnelMode": "token"}, {"cloudflareTunnelToken": "eyJhIjoiZW5naW5lLXRlc3QifQ"})
    assert tunneled.outputs["grafana_url"][0].startswith("https://grafana.") and not tunneled.outputs["n8n_url"][0].endswith(".localhost/")


def _reserved(run: ProgramRun) -> tuple[float, float]:
    """CPUs and MiB the stack's services reserve."""
    reservations = [s.inputs["taskSpec"]["resources"]["reservation"] for s in run.services]
    return sum(r["nanoCpus"] for r in reservations) / 1e9, sum(r["memoryBytes"] for r in reservations) / 2**20


def test_a_core_only_platform_fits_a_laptop_like_the_seeds_start_dev() -> None:
    """platformCoreOnly: Traefik (and its Docker API proxy) and the networks, no observability, object store, n8n or backups; with dev
    backing up nowhere (or off-site), core and dev reserve what the seeds' `start.sh dev` did (0.30 CPU)."""
    platform = run_program("platform", {"platformCoreOnly": "true"})
    assert sorted(s.swarm_name for s in platform.services) == ["core_docker-api-proxy", "core_traefik"]
    assert {"public_network_id", "monitoring_network_id", "storage_network_id"} <= set(platform.outputs)
    assert not [name for name in platform.outputs if name.startswith("s3_") or name == "object_storage_endpoint"]
    dev = run_program("dev", {"backupEnabled": "false"})
    cpus, memory = (a + b for a, b in zip(_reserved(platform), _reserved(dev), strict=True))
    assert cpus <= 0.30 and memory <= 512, (cpus, memory)
    full_cpus, _ = _reserved(run_program("platform"))
    assert full_cpus > 2 * _reserved(platform)[0], "the full platform is what the setting saves"
