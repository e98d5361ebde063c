"""Values as Swarm and the Docker provider write them: CPUs, bytes, Go durations (read back the
provider's way, so previews stay clean), base64 secret data, content hashes, YAML, pinned images,
and the labels Traefik's Swarm provider routes by."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import yaml

_PINNED_IMAGE = re.compile(r"^[a-z0-9./_-]+(:[A-Za-z0-9._-]+)(@sha256:[0-9a-f]{64})?$")


def nano_cpus(cpus: float) -> int:
    """Docker counts CPU in units of 1e-9 CPU."""
    return round(cpus * 1_000_000_000)


def mebibytes(mb: int) -> int:
    return mb * 1024 * 1024


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NANOSECONDS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _go_duration_string(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    if ns < 10**9:
        unit, size = ("ns", 1) if ns < 10**3 else ("µs", 10**3) if ns < 10**6 else ("ms", 10**6)
        return _decimal_text(Decimal(ns) / size) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds = _decimal_text(Decimal(rest) / 10**9) + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    return f"{minutes}m{seconds}" if minutes else seconds


def provider_duration(value: str) -> str:
    """A Go duration written the way the Docker provider reads it back from Swarm.

    The provider stores Go's Duration.String() with a trailing "m0s" cut to "m" and "h0m" to "h"
    (kreuzwerker's shortDur), and nothing suppresses the difference: written as "60s", a duration
    reads back as "1m" and every preview shows the service changing.
    """
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        raise ValueError(f"not a Go duration: {value!r}")
    text = _go_duration_string(int(sum(Decimal(number) * _NANOSECONDS[unit] for number, unit in parts)))
    text = text[:-2] if text.endswith("m0s") else text
    return text[:-2] if text.endswith("h0m") else text


def is_pinned(image: str) -> bool:
    """A tag other than latest (optionally with a digest)."""
    match = _PINNED_IMAGE.match(image)
    return bool(match) and not image.split("@")[0].endswith(":latest")


def b64(value: str) -> str:
    """Standard base64, which is what the Docker provider decodes for secret data."""
    return base64.b64encode(value.encode()).decode()


def dump_yaml(data: Mapping[str, Any]) -> str:
    """Structured config files are built as data and written with PyYAML, keys in our order."""
    return yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False)


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()[:12]


def traefik_router_labels(
    name: str, hosts: Sequence[str], port: int, network: str, middlewares: Sequence[str] = (), rule_suffix: str = ""
) -> dict[str, str]:
    """Labels that route `hosts` to the service's `port` through Traefik's Swarm provider, from the
    published entry point (web) and the tunnel's (tunnel)."""
    hosts_rule = " || ".join(f"Host(`{host}`)" for host in hosts)
    labels = {
        "traefik.enable": "true",
        f"traefik.http.routers.{name}.rule": f"({hosts_rule}){rule_suffix}" if rule_suffix else hosts_rule,
        f"traefik.http.routers.{name}.entrypoints": "web,tunnel",
        f"traefik.http.services.{name}.loadbalancer.server.port": str(port),
        # Services on several networks: tell Traefik which one reaches them (traefik.docker.* is deprecated).
        "traefik.swarm.network": network,
    }
    if middlewares:
        labels[f"traefik.http.routers.{name}.middlewares"] = ",".join(middlewares)
    return labels
