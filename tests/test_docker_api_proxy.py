"""The Docker API proxy: who reaches the Docker socket, and what a client gets through its own socket.

The allow-lists run in a real HAProxy (Debian's) with the configuration the program mounts; behind it a
recording server on a unix socket stands in for the Docker API, so each test sees which requests got
through. The engine tests run the same configuration against a real dockerd (tests/test_engine.py).
"""

from __future__ import annotations

import http.client
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from names import (
    ALLOY,
    CADVISOR,
    DOCKER_API_CLIENTS,
    DOCKER_API_DIR,
    DOCKER_API_PROXY,
    DOCKER_API_PROXY_HEALTH_PORT,
    DOCKER_SOCKET,
    TRAEFIK,
)
from tests.conftest import require_tool
from tests.harness import ProgramRun, free_port

haproxy = require_tool("haproxy")
containerd_bin = require_tool("containerd")
CONFIG = "/usr/local/etc/haproxy/haproxy.cfg"


def container(run: ProgramRun, name: str) -> dict:
    return run.service(name).inputs["taskSpec"]["containerSpec"]


def test_only_the_proxy_mounts_the_socket_and_each_client_only_its_own_socket(full_run: ProgramRun) -> None:
    proxy = container(full_run, DOCKER_API_PROXY)
    # The host's /run holds containerd's socket where the host has one (a missing bind source stops a task).
    assert {m["source"]: m["target"] for m in proxy["mounts"] if m["type"] == "bind"} == {DOCKER_SOCKET: DOCKER_SOCKET, "/run": "/host/run"}
    served = {m["target"]: m["source"] for m in proxy["mounts"] if m["type"] == "volume"}
    client_volumes = {}
    for client in (TRAEFIK, ALLOY, CADVISOR):
        (volume,) = [m for m in container(full_run, client)["mounts"] if m["type"] == "volume" and m["target"] == DOCKER_API_DIR]
        assert volume["readOnly"], client
        client_volumes[client] = volume["source"]
    assert sorted(served.values()) == sorted(client_volumes.values()), "each client's volume is one the proxy serves"
    assert len(set(client_volumes.values())) == 3, "no two clients share a socket"


def test_every_client_has_an_allow_list_read_upstream() -> None:
    from components.docker_api import ALLOWED_CALLS

    assert set(ALLOWED_CALLS) == set(DOCKER_API_CLIENTS)
    assert all("_ping" in calls for calls in ALLOWED_CALLS.values()), "every Docker client pings first"


def test_a_core_only_platform_serves_traefik_alone(runs) -> None:  # type: ignore[no-untyped-def]
    core_only = runs("platform", {"platformCoreOnly": "true"})
    proxy = container(core_only, DOCKER_API_PROXY)
    assert [m["target"] for m in proxy["mounts"] if m["type"] == "volume"] == [f"{DOCKER_API_DIR}/traefik"]


class Recorder(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str) -> None:
        self.seen: list[tuple[str, str]] = []
        super().__init__(path, DockerStandIn)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the proxy's health check hangs up once it has the status line


class DockerStandIn(BaseHTTPRequestHandler):
    """Answers every request 200 and records it (the stand-in for the Docker API behind the proxy)."""

    def _answer(self) -> None:
        server = self.server
        assert isinstance(server, Recorder)
        server.seen.append((self.command, self.path))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"OK")

    do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = _answer

    def address_string(self) -> str:
        return "proxy"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("docker", timeout=5)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(str(self.path))


@pytest.fixture(scope="module")
def proxy(runs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Recorder, int]]:  # type: ignore[no-untyped-def]
    """Debian's haproxy with the mounted configuration, its paths moved into a temporary directory."""
    run = runs.full
    base, health_port = tmp_path_factory.mktemp("docker-api"), free_port()
    config = run.mounted_config(run.service(DOCKER_API_PROXY), CONFIG)
    backend = base / "docker.sock"
    recorder = Recorder(str(backend))
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    for client in ("traefik", "alloy", "cadvisor"):
        (base / client).mkdir()
    health = f"127.0.0.1:{DOCKER_API_PROXY_HEALTH_PORT}"
    assert health in config
    config = config.replace(f"unix@{DOCKER_SOCKET}", f"unix@{backend}").replace(f"unix@{DOCKER_API_DIR}/", f"unix@{base}/")
    config = config.replace(health, f"127.0.0.1:{health_port}")
    containerd = "unix@/host/run/containerd/containerd.sock"
    assert containerd in config
    config = config.replace(containerd, f"unix@{base}/containerd.sock")  # test_cadvisor_asks_containerd_... starts it there
    (base / "haproxy.cfg").write_text(config)
    checked = subprocess.run([haproxy(), "-c", "-f", str(base / "haproxy.cfg")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    process = subprocess.Popen([haproxy(), "-db", "-f", str(base / "haproxy.cfg")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if all((base / client / "docker.sock").exists() for client in ("traefik", "alloy", "cadvisor")):
                break
            time.sleep(0.05)
        yield base, recorder, health_port
    finally:
        process.terminate()
        process.wait(timeout=10)
        recorder.shutdown()


def ask(proxy: tuple[Path, Recorder, int], client: str, method: str, path: str) -> int:
    base, recorder, _ = proxy
    before = len(recorder.seen)
    connection = UnixConnection(base / client / "docker.sock")
    connection.request(method, path)
    status = connection.getresponse().status
    connection.close()
    reached = (method, path) in recorder.seen[before:]
    assert reached == (status == 200), f"{client} {method} {path}: answered {status}, reached the API: {reached}"
    return status


EVERY_CLIENT = [("HEAD", "/_ping"), ("GET", "/_ping"), ("GET", "/v1.47/version")]
ALLOWED = {
    "traefik": [*EVERY_CLIENT, ("GET", "/v1.47/services?filters=%7B%7D"), ("GET", "/v1.47/tasks"), ("GET", "/v1.47/networks"),
                ("GET", "/v1.47/nodes/abc123")],
    "alloy": [*EVERY_CLIENT, ("GET", "/v1.47/containers/json"), ("GET", "/v1.47/containers/abc123/json"),
              ("GET", "/v1.47/containers/abc123/logs?follow=1&stdout=1"), ("GET", "/v1.47/networks")],
    "cadvisor": [*EVERY_CLIENT, ("GET", "/v1.47/info"), ("GET", "/v1.47/containers/abc123/json"), ("GET", "/v1.47/images/json")],
}
REFUSED_TO_ALL = [
    ("POST", "/v1.47/containers/create"), ("POST", "/v1.47/containers/abc123/exec"), ("POST", "/v1.47/services/create"),
    ("DELETE", "/v1.47/containers/abc123"), ("GET", "/v1.47/secrets"), ("GET", "/v1.47/configs"),
    ("GET", "/v1.47/containers/abc123/archive?path=/run/secrets"), ("GET", "/v1.47/swarm"), ("POST", "/_ping"),
    ("GET", "/v1.47/services/../secrets"), ("GET", "/v1.47/containers/json/../../secrets"),
    ("GET", "/v1.47/containers/..%2F..%2Fsecrets/json"), ("GET", "/v1.47/nodes/%2E%2E"), ("GET", "/v1.47/containers/../logs"),
]


@pytest.mark.tools
@pytest.mark.parametrize("client", sorted(ALLOWED))
def test_a_client_gets_its_read_only_calls_and_nothing_else(proxy: tuple[Path, Recorder, int], client: str) -> None:
    for method, path in ALLOWED[client]:
        assert ask(proxy, client, method, path) == 200, (client, method, path)
    others = {call for other, calls in ALLOWED.items() if other != client for call in calls} - set(ALLOWED[client])
    for method, path in [*REFUSED_TO_ALL, *sorted(others)]:
        assert ask(proxy, client, method, path) == 403, (client, method, path)


@pytest.mark.tools
def test_the_proxy_s_health_is_docker_s_ping(proxy: tuple[Path, Recorder, int]) -> None:
    _, recorder, health_port = proxy
    connection = http.client.HTTPConnection("127.0.0.1", health_port, timeout=5)
    deadline = time.monotonic() + 15  # the first check of the backend runs within its 10 s interval
    while True:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        if response.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.status == 200
    assert ("GET", "/_ping") in recorder.seen, "the health of the proxy is Docker's /_ping"


@pytest.fixture
def containerd(proxy: tuple[Path, Recorder, int]) -> Iterator[Path]:
    """A real containerd (Debian's), listening where the proxy's configuration expects the host's."""
    base = proxy[0]
    work = base / "containerd"
    work.mkdir()
    config = work / "config.toml"
    config.write_text(
        f'version = 2\nroot = "{work}/root"\nstate = "{work}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{base}/containerd.sock"\n[ttrpc]\n  address = "{work}/ttrpc.sock"\n'
    )
    process = subprocess.Popen([containerd_bin(), "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if (base / "containerd.sock").exists():
                break
            time.sleep(0.05)
        yield base / "cadvisor" / "containerd.sock"
    finally:
        process.terminate()
        process.wait(timeout=20)


CONTAINER_ID = b"\x0a\x06abc123"
"""A request whose field 1 (the container id: GetContainerRequest, GetRequest, DeleteContainerRequest) is `abc123`."""


@pytest.mark.tools
def test_cadvisor_asks_containerd_only_for_containers_tasks_and_its_version(containerd: Path) -> None:
    """The gRPC calls cAdvisor's docker factory makes where Docker keeps images in containerd, through the
    proxy to a real containerd; listing, deleting and other services are refused before containerd."""
    import grpc

    def call(method: str, request: bytes = b"") -> tuple[grpc.StatusCode, bytes]:
        with grpc.insecure_channel(f"unix://{containerd}") as channel:
            unary = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            try:
                return grpc.StatusCode.OK, unary(request, timeout=10, metadata=(("containerd-namespace", "moby"),))
            except grpc.RpcError as error:
                return error.code(), str(error.details()).encode()

    status, answer = call("/containerd.services.version.v1.Version/Version")
    assert status == grpc.StatusCode.OK and b"1." in answer, (status, answer)
    for reached in ("/containerd.services.containers.v1.Containers/Get", "/containerd.services.tasks.v1.Tasks/Get"):
        assert call(reached, CONTAINER_ID)[0] == grpc.StatusCode.NOT_FOUND, reached
    for refused, request in (("/containerd.services.containers.v1.Containers/List", b""),
                             ("/containerd.services.containers.v1.Containers/Delete", CONTAINER_ID),
                             ("/containerd.services.tasks.v1.Tasks/List", b""),
                             ("/containerd.services.namespaces.v1.Namespaces/List", b""),
                             ("/containerd.services.images.v1.Images/List", b"")):
        status, details = call(refused, request)
        assert status == grpc.StatusCode.PERMISSION_DENIED and b"403" in details, (refused, status, details)
