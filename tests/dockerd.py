"""A real Docker engine for tests: its own dockerd (overlay2 where the kernel allows, else vfs; own socket), a single-node swarm,
a local busybox image (images cannot be pulled here, so it is imported from busybox-static) and,
where scripts/images.sh built them (NEXTCANDLE_IMAGES), the local images of every pinned image."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

LOCAL_IMAGE = "local/busybox:1"


def _busybox_tar(path: Path) -> Path:
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox is not installed; scripts/run-tests.sh installs busybox-static")
    archive = path / "busybox.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(busybox, arcname="bin/busybox")
        for applet in ("sh", "sleep", "true", "false", "wget", "cat"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return archive


def volume_identities(client: Any) -> dict[str, tuple[int, int]]:
    """Each volume by the inode of its directory: a volume removed and created again under its name
    gets a new one. (CreatedAt is no identity: it moved when a task first mounted the volume.)"""
    identities = {}
    for volume in client.volumes.list():
        found = os.stat(volume.attrs["Mountpoint"])
        identities[volume.name] = (found.st_dev, found.st_ino)
    return identities


def ensure_swarm(client: Any) -> None:
    if client.info()["Swarm"]["LocalNodeState"] != "active":
        client.swarm.init(advertise_addr="127.0.0.1")


def remove_everything(client: Any) -> None:
    """Leave the swarm as a test found it: no services, secrets, configs, networks or volumes."""
    for service in client.services.list():
        service.remove()
    deadline = time.monotonic() + 180  # stateful services stop within their grace period (up to 60 s)
    while client.api.containers(all=True) and time.monotonic() < deadline:  # ids only: they vanish meanwhile
        time.sleep(0.5)
    for kind in (client.secrets, client.configs):
        for item in kind.list():
            item.remove()
    for network in client.networks.list():
        if network.attrs.get("Scope") == "swarm" and network.name != "ingress":
            network.remove()
    for volume in client.volumes.list():
        volume.remove(force=True)


def load_local_images(client: Any) -> list[str]:
    """The pinned images, built by scripts/images.sh; none without NEXTCANDLE_IMAGES (tasks then cannot start)."""
    cache = os.environ.get("NEXTCANDLE_IMAGES")
    if not cache:
        return []
    from scripts.local_images import load

    return load(Path(cache), client)


def import_busybox(client: Any, home: Path) -> None:
    with _busybox_tar(home).open("rb") as image:
        client.images.client.api.import_image_from_data(image.read(), repository="local/busybox", tag="1")


PRIVATE_RUN = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"', "sh"]
"""Each test engine sees a /run of its own: its containers that bind /var/run/docker.sock (or /run)
get that engine's socket, never the machine's own Docker (README command 1 deploys onto it)."""

OWN_NETWORK = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
"""A network namespace of its own: the swarm's ports (2377, published ones), bridges and firewall
rules never meet a swarm the machine runs itself."""


def start_dockerd(home: Path, prefix: Sequence[str] = OWN_NETWORK) -> tuple[subprocess.Popen[bytes], Any]:
    """A dockerd with everything under `home` (dockerd picks overlay2 where the filesystem allows it, else vfs; its own socket), started through
    `prefix` (its own network namespace, or e.g. `nsenter --net=<namespace>`) with a /run of its own, and a docker SDK client on it."""
    import docker

    home.mkdir(parents=True, exist_ok=True)
    socket = home / "docker.sock"
    with (home / "log").open("w") as log:
        process = subprocess.Popen(
            [*prefix, *PRIVATE_RUN, "dockerd", f"--data-root={home / 'root'}", f"--exec-root={home / 'exec'}",
             f"--pidfile={home / 'pid'}", "-H", f"unix://{socket}", "-H", "unix:///run/docker.sock"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    for _ in range(120):
        try:  # the client asks the daemon for its API version when it is created
            client = docker.DockerClient(base_url=f"unix://{socket}")
            client.ping()
            client.docker_host = f"unix://{socket}"
            return process, client
        except Exception:
            time.sleep(0.25)
    stop_dockerd(process, home)
    raise RuntimeError("dockerd did not start: " + (home / "log").read_text()[-2000:])


def stop_dockerd(process: subprocess.Popen[bytes], home: Path) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
    for mounted in ("exec", "root"):  # dockerd bind-mounts its directories
        subprocess.run(["umount", "-R", "-l", str(home / mounted)], capture_output=True)


def bind_sources_of_a_docker_host() -> None:
    """The bind sources a Docker host has that cAdvisor mounts (/var/lib/docker, /dev/disk), created if missing."""
    for directory in ("/var/lib/docker", "/dev/disk"):
        Path(directory).mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def running_dockerd() -> Iterator[Any]:
    """A docker SDK client on its own dockerd (own storage and socket), with busybox imported;
    `client.docker_host` is the address for programs that talk to this engine themselves."""
    # Not under pytest's tmp dir: dockerd leaves mounts behind that pytest could not clean up.
    base = Path(tempfile.mkdtemp(prefix="nextcandle-dockerd-"))
    process, client = start_dockerd(base)
    try:
        import_busybox(client, base)
        client.local_images = load_local_images(client)
        bind_sources_of_a_docker_host()
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.swarm.leave(force=True)
        stop_dockerd(process, base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def swarm() -> Iterator[Any]:
    """A docker SDK client on a fresh single-node swarm."""
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("dockerd", "unshare", "ip")):
        pytest.skip("needs root, dockerd, unshare and ip (scripts/run-tests.sh installs docker.io and iproute2 in CI)")
    with running_dockerd() as client:
        yield client
