"""`python -m ops prune`: the seeds' `stop.sh --cleanup`, without touching data.

Removes stopped containers, dangling images (every unused one with --all-images: a stopped stack then
pulls its images again on start) and unused volumes we labelled as caches. Never a data volume, an
unlabelled volume (someone's data, for all we know) or a network (ours are Pulumi's resources)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from names import CACHE_LABEL


@dataclass(frozen=True)
class Pruned:
    containers: list[str]
    images: int
    volumes: list[str]
    reclaimed: int
    """Bytes freed, as Docker counts them."""


def prune(client: Any, all_images: bool = False) -> Pruned:
    containers = client.containers.prune()
    images = client.images.prune(filters={"dangling": not all_images})
    cache = {"label": f"{CACHE_LABEL}=true"}
    try:  # Docker 23 and later prune only anonymous volumes unless asked for all
        volumes = client.volumes.prune(filters={**cache, "all": "true"})
    except Exception:  # older engines know no `all` filter and prune named volumes too
        volumes = client.volumes.prune(filters=cache)
    return Pruned(
        containers=containers.get("ContainersDeleted") or [],
        images=len(images.get("ImagesDeleted") or []),
        volumes=volumes.get("VolumesDeleted") or [],
        reclaimed=sum(int(r.get("SpaceReclaimed") or 0) for r in (containers, images, volumes)),
    )
