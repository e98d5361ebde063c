"""SharedServices: S3-compatible object storage and n8n, routed through Traefik.

Object storage is SeaweedFS rather than MinIO: MinIO's community images stopped with the
2025-10-15 release and were removed from Docker Hub in 2026-09, so a pinned MinIO image would never
receive another security fix. SeaweedFS (Apache-2.0) serves the S3 API from one `weed server`,
exports Prometheus metrics, and takes its credentials from a JSON file (a Docker secret here).

Creates (stack `shared`):
- `shared_seaweedfs`: S3 API at s3.<domain>, its file browser ("console") at minio.<domain> behind
  the dashboard's basic auth, root access key/secret from random values;
- `shared_n8n` 2.x at n8n.<domain>, Asia/Seoul, encryption key from a secret. n8n removed basic auth
  in 1.0: the owner account is created in its setup screen on first visit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components import images
from components.observability import N8N, OBJECT_STORAGE, SharedPlatform
from components.settings import PUBLIC_NETWORK, Resources
from components.swarm import (
    Mounted,
    ServiceSpec,
    data_volume,
    http_check,
    swarm_secret,
    swarm_service,
    traefik_router_labels,
    volume_mount,
)

STACK = "shared"
S3_PORT = 8333
FILER_PORT = 8888
N8N_PORT = 5678
OBJECT_STORAGE_RESOURCES = Resources(0.10, 0.50, 128, 512)
N8N_RESOURCES = Resources(0.50, 2.00, 512, 2048)


@dataclass(frozen=True, kw_only=True)
class SharedServicesArgs:
    platform: SharedPlatform
    timezone: str
    internal_network_id: pulumi.Input[str]


def s3_identities(access_key: str, secret_key: str) -> str:
    """SeaweedFS's S3 identity file: one administrator with every action."""
    return json.dumps(
        {
            "identities": [
                {
                    "name": "root",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        },
        indent=2,
    )


class SharedServices(pulumi.ComponentResource):
    s3_access_key: pulumi.Output[str]
    s3_secret_key: pulumi.Output[str]

    def __init__(self, name: str, args: SharedServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nextcandle:shared_services:SharedServices", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The object store and n8n's encryption key hold data every environment relies on.
        platform = args.platform
        data = pulumi.ResourceOptions(parent=self, protect=platform.protect_data, retain_on_delete=platform.protect_data)
        networks = [args.internal_network_id, platform.monitoring_network_id, platform.public_network_id]

        access_key = random.RandomString(f"{name}-s3-access-key", length=20, special=False, lower=False, opts=data)
        secret_key = random.RandomPassword(f"{name}-s3-secret-key", length=40, special=False, opts=data)
        self.s3_access_key = access_key.result
        self.s3_secret_key = pulumi.Output.secret(secret_key.result)
        identities = swarm_secret(
            f"{name}-s3-identities",
            pulumi.Output.all(access_key.result, secret_key.result).apply(lambda keys: s3_identities(keys[0], keys[1])),
            STACK,
            data,
        )
        storage_volume = data_volume(f"{name}-object-storage-data", f"{STACK}_seaweedfs_data", STACK, data)
        routes = {
            **traefik_router_labels("s3", platform.hostnames.routed(platform.hostnames.s3), S3_PORT, PUBLIC_NETWORK),
            **traefik_router_labels("s3-console", platform.hostnames.routed(platform.hostnames.s3_console), FILER_PORT, PUBLIC_NETWORK),
            # The file browser has no login of its own: reuse the dashboard's basic auth.
            "traefik.http.routers.s3-console.middlewares": "dashboard-auth@file",
            "traefik.http.routers.s3.service": "s3",
            "traefik.http.routers.s3-console.service": "s3-console",
        }
        self.object_storage = swarm_service(
            f"{name}-object-storage",
            ServiceSpec(
                name=OBJECT_STORAGE,
                stack=STACK,
                image=images.SEAWEEDFS,
                args=[
                    "server",
                    "-dir=/data",
                    "-ip.bind=0.0.0.0",
                    "-s3",
                    f"-s3.port={S3_PORT}",
                    "-s3.config=/run/secrets/s3_identities.json",
                    f"-filer.port={FILER_PORT}",
                    "-metricsPort=9324",
                    "-volume.max=0",
                ],
                healthcheck=http_check("http://127.0.0.1:9333/cluster/status", start_period="30s"),
                resources=OBJECT_STORAGE_RESOURCES,
                restart_max_attempts=platform.restart_max_attempts,
                stateful=True,
                networks=networks,
                secrets=[Mounted(identities, "s3_identities.json", mode=0o400)],
                mounts=[volume_mount(storage_volume.name, "/data")],
                placement=platform.stateful_placement,
                labels=routes,
                stop_grace_period="60s",
            ),
            child,
        )

        encryption_key = random.RandomPassword(f"{name}-n8n-encryption-key", length=48, special=False, opts=data)
        # Changing this key makes every stored n8n credential undecryptable: protected with the data.
        key_secret = swarm_secret(f"{name}-n8n-encryption-key", encryption_key.result, STACK, data)
        n8n_volume = data_volume(f"{name}-n8n-data", f"{STACK}_n8n_data", STACK, data)
        host = platform.hostnames.n8n
        self.n8n = swarm_service(
            f"{name}-n8n",
            ServiceSpec(
                name=N8N,
                stack=STACK,
                image=images.N8N,
                env={
                    "N8N_ENCRYPTION_KEY_FILE": "/run/secrets/n8n_encryption_key",
                    "GENERIC_TIMEZONE": args.timezone,
                    "TZ": args.timezone,
                    "N8N_HOST": host,
                    "N8N_PORT": str(N8N_PORT),
                    "N8N_PROTOCOL": "https",
                    "WEBHOOK_URL": f"https://{host}/",
                    "N8N_EDITOR_BASE_URL": f"https://{host}/",
                    "N8N_PROXY_HOPS": "1",
                    "N8N_METRICS": "true",
                    "N8N_DIAGNOSTICS_ENABLED": "false",
                    "N8N_PERSONALIZATION_ENABLED": "false",
                },
                healthcheck=http_check(f"http://127.0.0.1:{N8N_PORT}/healthz", start_period="60s"),
                resources=N8N_RESOURCES,
                restart_max_attempts=platform.restart_max_attempts,
                stateful=True,
                networks=networks,
                secrets=[Mounted(key_secret, "n8n_encryption_key", uid="1000", gid="1000", mode=0o400)],
                mounts=[volume_mount(n8n_volume.name, "/home/node/.n8n")],
                placement=platform.stateful_placement,
                labels=traefik_router_labels("n8n", platform.hostnames.routed(host), N8N_PORT, PUBLIC_NETWORK),
            ),
            child,
        )

        self.register_outputs({"s3_access_key": self.s3_access_key, "s3_secret_key": self.s3_secret_key})
