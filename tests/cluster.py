"""A multi-node swarm on one machine: each node a dockerd in its own network namespace, the nodes
wired to one bridge that lives in a namespace of its own (the machine's own network and firewall
are never touched). Node 0 is the manager, the others are workers."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.dockerd import bind_sources_of_a_docker_host, import_busybox, load_local_images, start_dockerd, stop_dockerd

SUBNET = "192.168.231"
"""The nodes' own network (node i at .10+i); outside Swarm's 10.0.0.0/8 overlay pool and Docker's 172.16/12 bridges."""
SWITCH = "nc-switch"


@dataclass
class Node:
    name: str
    address: str
    client: Any
    docker_host: str

    @property
    def node_id(self) -> str:
        return str(self.client.info()["Swarm"]["NodeID"])


def _ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


def _wire(namespace: str, index: int) -> None:
    """A veth pair from the switch's bridge to the node's eth0."""
    _ip("netns", "add", namespace)
    outside = f"nc-port{index}"
    _ip("link", "add", outside, "netns", SWITCH, "type", "veth", "peer", "name", "eth0", "netns", namespace)
    _ip("link", "set", outside, "master", "br0", "up", namespace=SWITCH)
    _ip("addr", "add", f"{SUBNET}.{10 + index}/24", "dev", "eth0", namespace=namespace)
    for device in ("lo", "eth0"):
        _ip("link", "set", device, "up", namespace=namespace)


def _inside(namespace: str) -> list[str]:
    """Run in the node's network namespace under the node's own hostname; the machine's mounts stay
    (`ip netns exec` would remount /sys, hiding the cgroups dockerd needs)."""
    return ["nsenter", f"--net=/run/netns/{namespace}", "unshare", "--uts", "sh", "-c", f'hostname {namespace} && exec "$@"', "sh"]


def _unwire(namespaces: list[str]) -> None:
    for namespace in [*namespaces, SWITCH]:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


@contextlib.contextmanager
def multi_node_swarm(nodes: int = 3) -> Iterator[list[Node]]:
    """`nodes` dockerd, each in its own network namespace, joined as one swarm (node 0 manages)."""
    base = Path(tempfile.mkdtemp(prefix="nextcandle-cluster-"))
    namespaces = [f"nc-node{i}" for i in range(nodes)]
    _unwire(namespaces)  # what an interrupted session left
    daemons: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        _ip("netns", "add", SWITCH)
        _ip("link", "add", "br0", "type", "bridge", namespace=SWITCH)
        _ip("link", "set", "br0", "up", namespace=SWITCH)
        members: list[Node] = []
        for index, namespace in enumerate(namespaces):
            _wire(namespace, index)
            home = base / namespace
            process, client = start_dockerd(home, prefix=_inside(namespace))
            daemons.append((process, home))
            import_busybox(client, home)
            members.append(Node(namespace, f"{SUBNET}.{10 + index}", client, f"unix://{home / 'docker.sock'}"))
        manager = members[0]
        manager.client.swarm.init(advertise_addr=manager.address, listen_addr=f"{manager.address}:2377")
        token = manager.client.swarm.attrs["JoinTokens"]["Worker"]
        for worker in members[1:]:
            worker.client.swarm.join(remote_addrs=[f"{manager.address}:2377"], join_token=token,
                                     listen_addr=f"{worker.address}:2377", advertise_addr=worker.address)
        deadline = time.monotonic() + 60
        while sum(n.attrs["Status"]["State"] == "ready" for n in manager.client.nodes.list()) < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not join the swarm")
            time.sleep(0.5)
        yield members
    finally:
        for process, home in reversed(daemons):
            stop_dockerd(process, home)
        _unwire(namespaces)
        _unmount_below(base)
        shutil.rmtree(base, ignore_errors=True)


def _unmount_below(base: Path) -> None:
    """Whatever the daemons left mounted under `base` (their network namespaces' nsfs files)."""
    mounted = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounted if m.startswith(f"{base}/")), reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


def load_images_everywhere(members: list[Node]) -> None:
    """Each node imports the local images itself (a swarm pulls on each node; nothing can be pulled here)."""
    with concurrent.futures.ThreadPoolExecutor(len(members)) as pool:
        for member, images in zip(members, pool.map(lambda m: load_local_images(m.client), members), strict=True):
            member.client.local_images = images


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[Node]]:
    """Three nodes, one manager and two workers, with the local images on each."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("ip") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs the three-node tests: they need root, dockerd and iproute2 (scripts/run-tests.sh installs them)")
        pytest.skip("needs root, dockerd and iproute2 (scripts/run-tests.sh installs them)")
    with multi_node_swarm() as members:
        bind_sources_of_a_docker_host()
        load_images_everywhere(members)
        yield members
