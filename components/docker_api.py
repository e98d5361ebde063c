"""DockerApiProxy: the Docker API for the services that read it, one allow-list per client.

Creates (stack `core`): `core_docker-api-proxy`, HAProxy on every node, the only service that mounts the
Docker socket (besides runners that opt in); and, for each client (Traefik, Alloy, cAdvisor), a volume
holding that client's own unix socket. Through it a client gets only the read-only calls it needs
(ALLOWED_CALLS): anything else (a write, an exec, a secret, another client's calls) is answered 403.
A read-only mount of the socket limits nothing (connecting to a socket is not a write), so before this
each of them could do anything the Docker API can, which is root on the node.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi

from components import images
from components.settings import Resources
from components.swarm import Mounted, ServiceSpec, StackScope, bind_mount, http_check, volume_mount
from names import (
    ALLOY,
    CADVISOR,
    CONTAINERD_SOCKET,
    CORE,
    DOCKER_API_DIR,
    DOCKER_API_PROXY,
    DOCKER_API_PROXY_HEALTH_PORT,
    DOCKER_SOCKET,
    TRAEFIK,
)

STACK = CORE
CONFIG_TEMPLATE = Path(__file__).resolve().parent.parent / "configs" / "docker-api-proxy" / "haproxy.cfg"
CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"
PROXY_RESOURCES = Resources(0.01, 0.20, 16, 64)

ID = "[A-Za-z0-9][A-Za-z0-9_.-]*"
"""A container's or node's id or name, as Docker allows them: no slash, no escape, no leading dot."""
ALLOWED_CALLS: dict[str, tuple[str, ...]] = {
    # Its Swarm provider polls, with no event stream (traefik/traefik@d0bd2ec v3.7.9,
    # pkg/provider/docker/pswarm.go): ping, version, the lists of services, networks and tasks, a node's inspect.
    TRAEFIK: ("_ping", "version", "services", "networks", "tasks", f"nodes/{ID}"),
    # discovery.docker (Prometheus discovery/moby) and loki.source.docker (grafana/alloy@6012ec4 v1.18.1):
    # the container and network lists, a container's inspect, and its logs, followed.
    ALLOY: ("_ping", "version", "containers/json", "networks", f"containers/{ID}/json", f"containers/{ID}/logs"),
    # Its docker factory and web UI (google/cadvisor@44b8e30 v0.60.5, container/docker): info, version,
    # a container's inspect, the image list.
    CADVISOR: ("_ping", "version", "info", f"containers/{ID}/json", "images/json"),
}
"""Per client, the API paths (after the optional /v1.xx prefix) it may GET or HEAD, read upstream."""
CONTAINERD_CALLS: dict[str, tuple[str, ...]] = {
    # Where `docker info` says the images are in containerd (Docker 29's default on new installations),
    # cAdvisor's docker factory asks containerd for each container and its task; without an answer it
    # handles no Docker container (google/cadvisor@44b8e30 v0.60.5 container/docker/factory.go,
    # lib/container/containerd/client.go: Containers.Get, Tasks.Get, Version.Version).
    CADVISOR: (
        "/containerd.services.containers.v1.Containers/Get",
        "/containerd.services.tasks.v1.Tasks/Get",
        "/containerd.services.version.v1.Version/Version",
    ),
}
"""Per client, the containerd gRPC methods it may call (on DOCKER_API_CONTAINERD_SOCKET)."""
HOST_RUN = "/host/run"
"""The host's /run in the proxy, where containerd's socket is when the host has one (a bind of the socket
itself would stop the proxy on a host without it)."""


def client_key(client: str) -> str:
    """`core_traefik` -> `traefik`: the client's frontend and socket directory in the proxy."""
    return client.split("_", 1)[1]


def allowed_path_pattern(client: str) -> str:
    return rf"^(/v[0-9.]+)?/({'|'.join(ALLOWED_CALLS[client])})$"


def proxy_config(clients: Sequence[str]) -> str:
    """haproxy.cfg: a frontend per client on its own socket (and cAdvisor's second one, for containerd);
    the node's Docker socket and containerd's as the backends."""
    frontends = []
    for client in clients:
        key = client_key(client)
        frontends.append("\n".join((
            "",
            f"frontend {key}",
            f"    bind unix@{DOCKER_API_DIR}/{key}/docker.sock mode 600",
            "    acl read_only method GET HEAD",
            f"    acl allowed path_reg {allowed_path_pattern(client)}",
            "    http-request set-log-level silent if read_only allowed",
            "    http-request deny deny_status 403 unless read_only allowed",
            "    default_backend docker",
            "",
        )))
        if client in CONTAINERD_CALLS:
            frontends.append("\n".join((
                "",
                f"frontend {key}-containerd",
                f"    bind unix@{DOCKER_API_DIR}/{key}/containerd.sock mode 600 proto h2",
                f"    acl allowed path {' '.join(CONTAINERD_CALLS[client])}",
                "    http-request set-log-level silent if METH_POST allowed",
                "    http-request deny deny_status 403 unless METH_POST allowed",
                "    default_backend containerd",
                "",
            )))
    return string.Template(CONFIG_TEMPLATE.read_text()).substitute(
        health_port=DOCKER_API_PROXY_HEALTH_PORT, frontends="".join(frontends), docker_socket=DOCKER_SOCKET,
        containerd_socket=HOST_RUN + CONTAINERD_SOCKET.removeprefix("/run"),
    )


@dataclass(frozen=True, kw_only=True)
class DockerApiProxyArgs:
    scope: StackScope
    clients: Sequence[str]
    """The services to serve, from ALLOWED_CALLS (the observability agents only when they are deployed)."""


class DockerApiProxy(pulumi.ComponentResource):
    socket_volumes: dict[str, pulumi.Output[str]]
    """Per client, the volume it mounts at DOCKER_API_DIR to find its socket at DOCKER_API_SOCKET."""

    def __init__(self, name: str, args: DockerApiProxyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nextcandle:docker_api:DockerApiProxy", name, None, opts)
        scope, child = args.scope.of(STACK), pulumi.ResourceOptions(parent=self)
        volumes = {
            client: scope.cache_volume(f"{name}-{client_key(client)}", f"{STACK}_docker_api_{client_key(client)}", child)
            for client in args.clients
        }
        self.socket_volumes = {client: volume.name for client, volume in volumes.items()}
        config = scope.config(f"{name}-config", "docker-api-proxy", proxy_config(args.clients), child)
        self.service = scope.service(
            f"{name}-proxy",
            ServiceSpec(
                name=DOCKER_API_PROXY,
                image=images.DOCKER_API_PROXY,
                healthcheck=http_check(f"http://127.0.0.1:{DOCKER_API_PROXY_HEALTH_PORT}/healthz", start_period="10s"),
                resources=PROXY_RESOURCES,
                global_mode=True,
                # Stop first: a stopping HAProxy removes its sockets, which would take the new one's away.
                stateful=True,
                configs=[Mounted(config, CONFIG_PATH)],
                mounts=[
                    bind_mount(DOCKER_SOCKET, DOCKER_SOCKET),
                    bind_mount("/run", HOST_RUN),
                    *(volume_mount(volume.name, f"{DOCKER_API_DIR}/{client_key(client)}") for client, volume in volumes.items()),
                ],
                # The socket is root's (mode 660, group docker, whose id differs between hosts).
                user="0",
                stop_signal="SIGUSR1",
            ),
            child,
        )
        self.register_outputs({"socket_volumes": self.socket_volumes})

