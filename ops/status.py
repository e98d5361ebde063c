"""Service status from the Docker API: replicas running against desired, and container health."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from names import PLATFORM, PLATFORM_NAMESPACES, STACK_LABEL, STOPPED_LABEL


class State(Enum):
    OK = "ok"
    STOPPED = "stopped"
    STARTING = "starting"
    DEGRADED = "degraded"
    FAILED = "failed"


def pulumi_stack(namespace: str) -> str:
    """The Pulumi stack that owns a swarm namespace: core, shared and runner are the platform's."""
    return PLATFORM if namespace in PLATFORM_NAMESPACES else namespace


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    stack: str
    desired: int
    running: int
    healthy: int
    unhealthy: int
    starting: int
    last_error: str
    stopped: bool = False
    """Its stack stopped it on purpose (`ops stop`)."""
    global_mode: bool = False
    """One task per node: none wanted means every node rejected it, not that none is needed."""

    @property
    def owner(self) -> str:
        """The Pulumi stack the service belongs to."""
        return pulumi_stack(self.stack)

    @property
    def state(self) -> State:
        if self.stopped and self.running == 0:
            return State.STOPPED
        if self.desired == 0 and not self.global_mode:
            return State.OK
        if self.running == 0:
            return State.FAILED if self.last_error else State.STARTING
        if self.unhealthy:
            return State.DEGRADED
        if self.running < self.desired or self.starting:
            return State.STARTING
        return State.OK

    @property
    def replicas(self) -> str:
        return f"{self.running}/{self.desired}"


def summarise(service: Any, tasks: Iterable[dict[str, Any]], health_of: Any) -> ServiceStatus:
    """Build one service's status from its Docker API attributes and tasks.

    `health_of(container_id)` returns "healthy", "unhealthy", "starting" or None (not on this node).
    """
    attrs = service.attrs
    spec = attrs["Spec"]
    labels = spec.get("Labels") or {}
    wanted = [t for t in tasks if t.get("DesiredState") == "running"]
    mode = spec.get("Mode", {})
    desired = mode["Replicated"].get("Replicas", 1) if "Replicated" in mode else len(wanted)
    running = [t for t in wanted if t["Status"]["State"] == "running"]
    health = [health_of(t["Status"].get("ContainerStatus", {}).get("ContainerID", "")) for t in running]
    errors = sorted(
        (t for t in tasks if t["Status"].get("Err")),
        key=lambda t: t["Status"].get("Timestamp", ""),
    )
    return ServiceStatus(
        name=spec["Name"],
        stack=labels.get(STACK_LABEL, "-"),
        desired=desired,
        running=len(running),
        healthy=health.count("healthy"),
        unhealthy=health.count("unhealthy"),
        starting=health.count("starting"),
        last_error=errors[-1]["Status"]["Err"] if errors else "",
        stopped=labels.get(STOPPED_LABEL) == "true",
        global_mode="Global" in mode,
    )


def collect(client: Any, stacks: Iterable[str] | None = None) -> list[ServiceStatus]:
    """Every service of the given Pulumi stacks (all of ours when None) on the swarm `client` talks to."""
    wanted = set(stacks) if stacks is not None else None

    def health_of(container_id: str) -> str | None:
        if not container_id:
            return None
        try:
            state = client.api.inspect_container(container_id)["State"]
        except Exception:  # the container runs on another node
            return None
        health: str | None = state.get("Health", {}).get("Status")
        return health

    statuses = []
    for service in client.services.list(filters={"label": STACK_LABEL}):
        namespace = (service.attrs["Spec"].get("Labels") or {}).get(STACK_LABEL, "")
        if wanted is not None and pulumi_stack(namespace) not in wanted:
            continue
        statuses.append(summarise(service, service.tasks(), health_of))
    order = {PLATFORM: 0}
    return sorted(statuses, key=lambda s: (order.get(s.owner, 1), s.owner, s.name))


@dataclass(frozen=True)
class Detail:
    """`ops status -v`: what the original status.sh -v showed besides services."""

    networks: list[tuple[str, str, str]]
    """(name, owning stack, subnet) of our networks."""
    volumes: list[tuple[str, str, int]]
    """(name, owning stack, bytes used; -1 if Docker has not measured it) of our volumes on this node."""
    node: str
    disk: dict[str, int]
    """Bytes this node's Docker uses for images, containers and volumes."""
    other_nodes: list[str]
    containers: list[tuple[str, str, str]] = field(default_factory=list)
    """(name, owning stack, Docker's status: "Up 5 minutes (healthy)") of our containers on this node."""


def collect_detail(client: Any) -> Detail:
    networks = []
    for network in client.networks.list(filters={"label": STACK_LABEL}):
        labels = network.attrs.get("Labels") or {}
        subnets = ",".join(c.get("Subnet", "") for c in (network.attrs.get("IPAM") or {}).get("Config") or [])
        networks.append((network.name, pulumi_stack(labels.get(STACK_LABEL, "")), subnets or "-"))
    usage = client.df()
    volumes = [
        (v["Name"], pulumi_stack((v.get("Labels") or {})[STACK_LABEL]), int((v.get("UsageData") or {}).get("Size", -1)))
        for v in usage.get("Volumes") or []
        if STACK_LABEL in (v.get("Labels") or {})
    ]
    disk = {
        "images": sum(int(i.get("Size", 0)) for i in usage.get("Images") or []),
        "containers": sum(int(c.get("SizeRw", 0) or 0) for c in usage.get("Containers") or []),
        "volumes": sum(size for _, _, size in volumes if size > 0),
    }
    containers = [
        (c["Names"][0].lstrip("/"), pulumi_stack(c["Labels"][STACK_LABEL]), c.get("Status") or c.get("State", "?"))
        for c in usage.get("Containers") or []
        if STACK_LABEL in (c.get("Labels") or {}) and c.get("Names")
    ]
    info = client.info()
    this = info.get("Swarm", {}).get("NodeID", "")
    others = [n.attrs["Description"]["Hostname"] for n in client.nodes.list() if n.id != this] if this else []
    return Detail(sorted(networks), sorted(volumes), info.get("Name", "?"), disk, sorted(others), sorted(containers))


def only_local_backups(client: Any, stacks: Iterable[str] | None = None) -> list[str]:
    """Backup services whose target is the swarm's own object store (BACKUP_OFF_SITE=false): their
    copy is lost with that store's disk."""
    wanted = set(stacks) if stacks is not None else None
    found = []
    for service in client.services.list(filters={"label": STACK_LABEL}):
        spec = service.attrs["Spec"]
        namespace = (spec.get("Labels") or {}).get(STACK_LABEL, "")
        container = spec["TaskTemplate"]["ContainerSpec"]
        # Several variables reach the container as `env NAME=VALUE ... program` (components/swarm.py).
        words = [*(container.get("Command") or []), *(container.get("Env") or [])]
        if "BACKUP_OFF_SITE=false" in words and (wanted is None or pulumi_stack(namespace) in wanted):
            found.append(spec["Name"])
    return sorted(found)
