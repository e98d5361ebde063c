"""Policies every Docker Swarm service of the platform must meet. They read the engine's view of a
resource (camelCase inputs), so they judge what is really deployed, not the program's helpers."""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy

# The pack runs from policy/ in its own virtualenv; the shared names live one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from names import (  # noqa: E402
    DATABASE_CLIENTS_LABEL,
    DOCKER_SOCKET_ALLOWED,
    DOCKER_SOCKET_REAL_PATH,
    STACK_LABEL,
    declared_environment,
)

SERVICE = "docker:index/service:Service"
DATABASE_IMAGES = ("pgvector/pgvector:", "postgres:", "redis:")
_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|(^|_)KEY($|_)|CREDENTIAL", re.IGNORECASE)
_PINNED = re.compile(r"^[a-z0-9./_-]+:[A-Za-z0-9._-]+(@sha256:[0-9a-f]{64})?$")

Report = Callable[[str, "str | None"], None]


def _services_only(check: Callable[[str, Mapping[str, Any], Report], None]) -> Callable[[ResourceValidationArgs, Report], None]:
    def validate(args: ResourceValidationArgs, report: Report) -> None:
        if args.resource_type == SERVICE:
            check(str(args.props.get("name", args.name)), args.props, report)

    validate.__doc__ = check.__doc__
    return validate


def _container(props: Mapping[str, Any]) -> Mapping[str, Any]:
    container: Mapping[str, Any] = props.get("taskSpec", {}).get("containerSpec", {})
    return container


def _labels(props: Mapping[str, Any]) -> dict[str, str]:
    return {item["label"]: item["value"] for item in props.get("labels") or []}


@_services_only
def pinned_image(name: str, props: Mapping[str, Any], report: Report) -> None:
    """The image has a version tag (not latest)."""
    image = str(_container(props).get("image", ""))
    if not _PINNED.match(image) or image.split("@")[0].endswith(":latest"):
        report(f"{name}: image {image!r} is not pinned to a version tag", None)


@_services_only
def health_check(name: str, props: Mapping[str, Any], report: Report) -> None:
    """The container has a health check, so rollouts can be health-gated."""
    tests = (_container(props).get("healthcheck") or {}).get("tests") or []
    if len(tests) < 2 or tests[0] not in ("CMD", "CMD-SHELL"):
        report(f"{name}: no health check (set healthcheck.tests)", None)


@_services_only
def resource_limits(name: str, props: Mapping[str, Any], report: Report) -> None:
    """CPU and memory have limits and reservations."""
    resources = props.get("taskSpec", {}).get("resources") or {}
    for part in ("limits", "reservation"):
        values = resources.get(part) or {}
        if not values.get("nanoCpus") or not values.get("memoryBytes"):
            report(f"{name}: resources.{part} needs nanoCpus and memoryBytes", None)


@_services_only
def no_secret_in_env(name: str, props: Mapping[str, Any], report: Report) -> None:
    """Secrets arrive as files (*_FILE pointing at /run/secrets), never as environment values."""
    container = _container(props)
    for key, value in declared_environment(container.get("env"), container.get("commands")).items():
        if _SECRET_NAME.search(key) and not (key.endswith("_FILE") or str(value).startswith("/run/secrets/")):
            report(f"{name}: environment variable {key} carries a secret; mount a Docker secret and use {key}_FILE", None)


def _socket_inside(source: str, target: str) -> str | None:
    """Where a bind of `source` at `target` shows the host's Docker socket, if it does (a bind of `/` shows
    it at <target>/run/docker.sock; /var/run links to /run)."""
    host = source.rstrip("/") or "/"
    if host == "/var/run" or host.startswith("/var/run/"):
        host = "/run" + host[len("/var/run"):]
    if host == DOCKER_SOCKET_REAL_PATH:
        return target
    prefix = host.rstrip("/") + "/"
    if DOCKER_SOCKET_REAL_PATH.startswith(prefix):
        return target.rstrip("/") + "/" + DOCKER_SOCKET_REAL_PATH[len(prefix):]
    return None


@_services_only
def docker_socket_only_where_allowed(name: str, props: Mapping[str, Any], report: Report) -> None:
    """The Docker socket is root on the node, read-only or not: only the socket proxy (and runners that opt in)
    mount it; a bind of `/` or `/run` masks <target>/run (an empty tmpfs over it)."""
    if name in DOCKER_SOCKET_ALLOWED:
        return
    mounts = _container(props).get("mounts") or []
    masked = [str(m.get("target", "")).rstrip("/") for m in mounts if m.get("type") == "tmpfs"]
    for mount in mounts:
        if mount.get("type") != "bind":
            continue
        inside = _socket_inside(str(mount.get("source", "")), str(mount.get("target", "")))
        if inside is not None and not any(inside == m or inside.startswith(f"{m}/") for m in masked):
            report(f"{name}: the Docker socket is reachable at {inside} (mount of {mount.get('source')}); only "
                   f"{', '.join(sorted(DOCKER_SOCKET_ALLOWED))} may reach it: read the API through the socket proxy "
                   "(components/docker_api.py), or mask the directory with a tmpfs mount", None)


@_services_only
def published_databases_are_limited(name: str, props: Mapping[str, Any], report: Report) -> None:
    """A database port on the host admits only named client networks: host mode (so the server sees
    the client's address) and a label listing the networks, none wider than a /8. Redis cannot
    limit its clients, so prod never publishes it. No label or setting opts out."""
    image = str(_container(props).get("image", ""))
    if not image.startswith(DATABASE_IMAGES):
        return
    ports = [p for p in (props.get("endpointSpec") or {}).get("ports") or [] if p.get("publishedPort")]
    if not ports:
        return
    labels = _labels(props)
    if labels.get(STACK_LABEL) == "prod" and image.startswith("redis:"):
        report(f"{name}: publishes Redis in prod, which cannot limit its clients; reach it through the tunnel", None)
    if any(p.get("publishMode") != "host" for p in ports):
        report(f"{name}: a published database port must use publish_mode host (ingress hides the client's address)", None)
    networks = [n for n in labels.get(DATABASE_CLIENTS_LABEL, "").split(",") if n]
    too_wide = [n for n in networks if not _narrow(n)]
    if not networks or too_wide:
        report(f"{name}: a published database port needs narrow client networks (label {DATABASE_CLIENTS_LABEL}); got {networks}", None)


def _narrow(network: str) -> bool:
    try:
        return ipaddress.ip_network(network, strict=False).prefixlen >= 8
    except ValueError:
        return False


def _policy(name: str, validate: Callable[[ResourceValidationArgs, Report], None]) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name,
        description=validate.__doc__ or name,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


POLICIES = [
    _policy("pinned-image", pinned_image),
    _policy("health-check", health_check),
    _policy("resource-limits", resource_limits),
    _policy("no-secret-in-env", no_secret_in_env),
    _policy("docker-socket-only-where-allowed", docker_socket_only_where_allowed),
    _policy("published-databases-are-limited", published_databases_are_limited),
]
