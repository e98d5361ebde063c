"""The edge, checked by a real Traefik (built from Go modules by scripts/traefik.sh at the pinned
release) running the static and dynamic configuration the program generates, with its Swarm
provider reading our services' labels from the tests' swarm (busybox stands in for the services).

Changed for the test only: entry points listen on free loopback ports, the providers point at the
test's files and dockerd, 127.0.0.2 stands in for cloudflared's address on the tunnel network, and
the dashboard's web pages are off (a build from Go modules has no web UI assets, and without them
Traefik drops the whole API router; the API itself, behind the same router and auth, stays).
The backends themselves are never reached (their overlay addresses are not routable from here):
every check below is decided by Traefik before a request would leave it."""

from __future__ import annotations

import base64
import http.client
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ProgramRuns
from tests.dockerd import LOCAL_IMAGE, ensure_swarm
from tests.harness import free_port

pytestmark = pytest.mark.tools

CLOUDFLARED = "127.0.0.2"
"""Stands in for cloudflared's address on the tunnel network (the only trusted forwarder)."""
ROUTED = ("shared_n8n", "shared_seaweedfs", "shared_grafana")


def traefik_binary() -> str:
    found = os.environ.get("NEXTCANDLE_TRAEFIK")
    if found and Path(found).is_file():
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("CI runs the real Traefik: scripts/run-tests.sh builds it (scripts/traefik.sh) and sets NEXTCANDLE_TRAEFIK")
    pytest.skip("no Traefik binary: bash scripts/run-tests.sh builds one with Go (scripts/traefik.sh)")


@dataclass
class Proxy:
    ports: dict[str, int]
    dashboard_auth: str

    def get(self, entry_point: str, host: str, path: str = "/", headers: dict[str, str] | None = None,
            source: str = "127.0.0.1") -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.ports[entry_point], timeout=10, source_address=(source, 0))
        connection.request("GET", path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        response.read()
        connection.close()
        return response


@pytest.fixture(scope="module")
def proxy(swarm: Any, runs: ProgramRuns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    binary = traefik_binary()
    ensure_swarm(swarm)
    # A low rate limit, so that the tests reach it in a few requests.
    run = runs("platform", {"rateLimitAverage": "1", "rateLimitBurst": "2", "objectStoragePublic": "true"})
    base = tmp_path_factory.mktemp("traefik")
    traefik = run.service("core_traefik")
    (base / "users").write_text(run.mounted_secret(traefik, "traefik_dashboard_users"))
    dynamic = run.mounted_config(traefik, "/etc/traefik/dynamic.yml").replace("/run/secrets/traefik_dashboard_users", str(base / "users"))
    (base / "dynamic.yml").write_text(dynamic)
    static = yaml.safe_load(run.mounted_config(traefik, "/etc/traefik/traefik.yml"))
    ports = {name: free_port() for name in static["entryPoints"]}
    for name, entry_point in static["entryPoints"].items():
        entry_point["address"] = f"127.0.0.1:{ports[name]}"
    static["entryPoints"]["tunnel"]["forwardedHeaders"]["trustedIPs"] = [f"{CLOUDFLARED}/32"]
    static["providers"]["swarm"].update(endpoint=swarm.docker_host, refreshSeconds=1)
    static["providers"]["file"]["filename"] = str(base / "dynamic.yml")
    static["api"]["dashboard"] = False
    (base / "traefik.yml").write_text(yaml.safe_dump(static))

    # The networks the routed services join (Traefik reaches each on the network its labels name).
    network_names = sorted(set().union(*(run.network_names(run.service(name)) for name in ROUTED)))
    networks = [swarm.networks.create(name, driver="overlay", attachable=True) for name in network_names]
    services = [
        swarm.services.create(LOCAL_IMAGE, ["sleep", "3600"], name=name, labels=run.service(name).labels,
                              networks=sorted(run.network_names(run.service(name))))
        for name in ROUTED
    ]
    log = (base / "traefik.log").open("w")
    process = subprocess.Popen([binary, f"--configFile={base / 'traefik.yml'}"], stdout=log, stderr=subprocess.STDOUT)
    password = run.outputs["traefik_dashboard_password"][0]
    handle = Proxy(ports, "Basic " + base64.b64encode(f"admin:{password}".encode()).decode())
    try:
        # One router per entry point, as the entry points carry middlewares of their own.
        routers = {f"{entry}-{router}@swarm" for entry in ("web", "tunnel") for router in ("n8n", "s3", "grafana")}
        _wait_for_routers(handle, routers, base / "traefik.log")
        yield handle
    finally:
        process.terminate()
        process.wait(timeout=30)
        for service in services:
            service.remove()
        deadline = time.monotonic() + 60
        while swarm.containers.list(all=True) and time.monotonic() < deadline:
            time.sleep(0.5)
        for network in networks:
            network.remove()


def _wait_for_routers(proxy: Proxy, expected: set[str], log: Path) -> None:
    import json

    deadline = time.monotonic() + 90
    seen: set[str] = set()
    answer = "no answer"
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", proxy.ports["traefik"], timeout=5)
            connection.request("GET", "/api/http/routers", headers={"Authorization": proxy.dashboard_auth})
            response = connection.getresponse()
            body = response.read()
            answer = f"{response.status} {body[:300]!r}"
            if response.status == 200:
                seen = {router["name"] for router in json.loads(body)}
                if expected <= seen:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"Traefik did not load the routers {expected - seen} from the swarm (seen: {seen}; API: {answer}):\n{log.read_text()[-3000:]}")


def test_a_forged_host_reaches_nothing_unrouted(proxy: Proxy) -> None:
    for host in ("prometheus.localhost", "alertmanager.localhost", "shared_seaweedfs", "traefik.localhost"):
        assert proxy.get("web", host).status == 404, host
    assert proxy.get("web", "anything", "/api/rawdata").status == 404, "the dashboard is not on the published port"


def test_basic_auth_is_demanded(proxy: Proxy) -> None:
    n8n = proxy.get("web", "n8n.nextcandle.io")
    assert n8n.status == 401 and n8n.getheader("WWW-Authenticate", "").startswith("Basic"), "n8n until its owner exists"
    assert proxy.get("tunnel", "n8n.nextcandle.io", source=CLOUDFLARED).status == 401
    assert proxy.get("web", "minio.nextcandle.io").status == 404, "no file browser is routed"
    assert proxy.get("traefik", "x", "/api/rawdata").status == 401
    assert proxy.get("traefik", "x", "/api/rawdata", headers={"Authorization": proxy.dashboard_auth}).status == 200


def test_hsts_is_sent_on_plain_http(proxy: Proxy) -> None:
    """TLS ends at Cloudflare, so Traefik only ever sees HTTP: the header must be forced."""
    response = proxy.get("tunnel", "n8n.nextcandle.io", source=CLOUDFLARED)
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains; preload"
    assert response.getheader("X-Frame-Options") == "DENY"


def _statuses(proxy: Proxy, entry_point: str, forwarded: list[str], source: str) -> list[int]:
    time.sleep(2.5)  # a fresh bucket: the limit is 1 request per second with a burst of 2
    return [proxy.get(entry_point, "n8n.nextcandle.io", headers={"X-Forwarded-For": ip, "CF-Connecting-IP": ip}, source=source).status
            for ip in forwarded]


def test_forged_client_addresses_do_not_escape_the_rate_limit(proxy: Proxy) -> None:
    assert _statuses(proxy, "web", ["198.51.100.1", "198.51.100.2", "198.51.100.3"], "127.0.0.1") == [401, 401, 429]
    # On the tunnel's entry point, only cloudflared's forwarded address counts.
    assert _statuses(proxy, "tunnel", ["198.51.100.4", "198.51.100.5", "198.51.100.6"], "127.0.0.1") == [401, 401, 429]


def test_the_tunnel_limits_each_visitor_by_the_address_cloudflare_appended(proxy: Proxy) -> None:
    visitors = ["192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.1", "forged, 192.0.2.3"]
    assert _statuses(proxy, "tunnel", visitors, CLOUDFLARED) == [401, 401, 401, 429, 401]
