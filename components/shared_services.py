"""SharedServices: S3-compatible object storage and n8n, routed through Traefik.

Object storage is SeaweedFS rather than MinIO: MinIO's community images stopped with the
2025-10-15 release and were removed from Docker Hub in 2026-09, so a pinned MinIO image would never
receive another security fix. SeaweedFS (Apache-2.0) serves the S3 API from one `weed server`,
exports Prometheus metrics, and takes its credentials from a JSON file (a Docker secret here).

Creates (stack `shared`):
- `shared_seaweedfs`: the S3 API on the storage network (routed at s3.<domain> only with
  objectStoragePublic); master, volume and filer on loopback only (no file browser); the S3
  gateway's gRPC port only for clients with a certificate from its own key (none but itself); root
  access key/secret from random values, and per environment an identity that reaches only its own bucket;
- `shared_n8n` 2.x at n8n.<domain>, Asia/Seoul, encryption key from a secret. n8n removed basic auth
  in 1.0: the owner account is created in its setup screen on first visit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components import images
from components.certificates import seeded_tls_secrets
from components.settings import Resources
from components.swarm import (
    Mounted,
    ServiceSpec,
    SharedPlatform,
    StackScope,
    http_check,
    volume_mount,
)
from components.swarm_values import traefik_router_labels
from names import (
    ENVIRONMENTS,
    N8N,
    N8N_NETWORK,
    N8N_PORT,
    OBJECT_STORAGE,
    OBJECT_STORAGE_FILER_PORT,
    OBJECT_STORAGE_HOST,
    OBJECT_STORAGE_MASTER_PORT,
    OBJECT_STORAGE_METRICS_PORT,
    OBJECT_STORAGE_S3_GRPC_PORT,
    OBJECT_STORAGE_S3_PORT,
    SHARED,
    STORAGE_NETWORK,
    env_backup_bucket,
)

STACK = SHARED
OBJECT_STORAGE_RESOURCES = Resources(0.10, 0.50, 128, 512)
# Reserved as it idles; workflows burst to the limit (a reservation of what it bursts to would fill a small node).
N8N_RESOURCES = Resources(0.10, 2.00, 512, 2048)
DASHBOARD_AUTH_MIDDLEWARE = "dashboard-auth@file"
"""Traefik's basic auth of the dashboard (CoreStack's file provider), in front of n8n until its owner exists."""
GRPC_TLS_KEY = "s3_grpc_tls_key"
GRPC_TLS_CERT = "s3_grpc_tls_cert"
"""The S3 gRPC port's key and certificate, as secrets under /run/secrets."""


@dataclass(frozen=True, kw_only=True)
class SharedServicesArgs:
    platform: SharedPlatform
    scope: StackScope
    timezone: str
    n8n_owner_set_up: bool
    """False until the operator has created n8n's owner account: until then n8n sits behind basic auth."""


def s3_identities(access_key: str, secret_key: str, environments: Mapping[str, tuple[str, str]] | None = None) -> str:
    """SeaweedFS's S3 identity file: the administrator with every action, and per environment an
    identity whose only action is Admin on its own bucket. SeaweedFS matches an action without a
    wildcard against the bucket alone, so that covers every key of that bucket, creating it included,
    and nothing else (Identity.CanDo, weed/s3api/auth_credentials.go@cc8364a0); ListBuckets shows
    such an identity only its bucket."""
    identities = [
        {
            "name": "root",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
    ]
    for env, (env_access_key, env_secret_key) in (environments or {}).items():
        identities.append({
            "name": env,
            "credentials": [{"accessKey": env_access_key, "secretKey": env_secret_key}],
            "actions": [f"Admin:{env_backup_bucket(env)}"],
        })
    return json.dumps({"identities": identities}, indent=2)


class SharedServices(pulumi.ComponentResource):
    s3_access_key: pulumi.Output[str]
    s3_secret_key: pulumi.Output[str]
    environment_keys: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]]
    """Per environment, the access and secret key of the identity that reaches only its bucket."""
    s3_internal_endpoint: str

    def __init__(self, name: str, args: SharedServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nextcandle:shared_services:SharedServices", name, None, opts)
        self._name, self._platform = name, args.platform
        self._scope = args.scope.of(STACK)
        self._child = pulumi.ResourceOptions(parent=self)
        # The object store and n8n's encryption key hold data every environment relies on.
        self._data = self._scope.data_options(self)
        platform = args.platform
        self.s3_internal_endpoint = f"http://{OBJECT_STORAGE_HOST}:{OBJECT_STORAGE_S3_PORT}"
        # Only on `storage` (Traefik, Prometheus, backups): applications reach the object store through
        # Traefik's route to its authenticated S3 API, never its filer, master or volume ports.
        self.object_storage = self._object_storage([platform.storage_network_id])
        # n8n runs users' workflows: it stays off the platform's internal network, and on a network of its
        # own with Traefik and Prometheus, so no application reaches its port around Traefik's basic auth.
        self.n8n = self._n8n(args.timezone, args.n8n_owner_set_up, [platform.n8n_network_id])

        self.register_outputs({"s3_access_key": self.s3_access_key, "s3_secret_key": self.s3_secret_key, "environment_keys": self.environment_keys})

    def _object_storage(self, networks: list[pulumi.Input[str]]) -> docker.Service:
        name, hostnames = self._name, self._platform.hostnames
        access_key = random.RandomString(f"{name}-s3-access-key", length=20, special=False, lower=False, opts=self._data)
        secret_key = random.RandomPassword(f"{name}-s3-secret-key", length=40, special=False, opts=self._data)
        self.s3_access_key = pulumi.Output.secret(access_key.result)
        self.s3_secret_key = pulumi.Output.secret(secret_key.result)
        # One identity per environment, which reaches only that environment's bucket: dev's key reads no prod dump.
        keys: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]] = {}
        for env in ENVIRONMENTS:
            env_access = random.RandomString(f"{name}-s3-{env}-access-key", length=20, special=False, lower=False, opts=self._data)
            env_secret = random.RandomPassword(f"{name}-s3-{env}-secret-key", length=40, special=False, opts=self._data)
            keys[env] = (env_access.result, env_secret.result)
        self.environment_keys = {env: (pulumi.Output.secret(a), pulumi.Output.secret(b)) for env, (a, b) in keys.items()}
        flat = [access_key.result, secret_key.result, *(key for pair in keys.values() for key in pair)]
        identities = self._scope.secret(
            f"{name}-s3-identities",
            pulumi.Output.all(*flat).apply(
                lambda found: s3_identities(found[0], found[1], {env: (found[2 + 2 * i], found[3 + 2 * i]) for i, env in enumerate(keys)})
            ),
            # Made from the protected keys, so not protected itself: a new identity set replaces it.
            self._child,
        )
        grpc_tls = self._grpc_tls_secrets()
        volume = self._scope.volume(f"{name}-object-storage-data", f"{STACK}_seaweedfs_data", self._data)
        # Routed only when clients outside the swarm need it (objectStoragePublic).
        routes = {} if not hostnames.object_storage_public else {
            **traefik_router_labels("s3", hostnames.routed(hostnames.s3), OBJECT_STORAGE_S3_PORT, STORAGE_NETWORK),
            "traefik.http.routers.s3.service": "s3",
        }
        return self._scope.service(
            f"{name}-object-storage",
            ServiceSpec(
                name=OBJECT_STORAGE,
                image=images.SEAWEEDFS,
                args=[
                    "server",
                    "-dir=/data",
                    # Master, volume and filer (HTTP and gRPC) answer on loopback only, where the S3
                    # gateway in the same process reaches them; only the S3 API (with its identities) and
                    # the metrics face the storage network (weed/command/server.go: -ip, -ip.bind,
                    # -s3.ip.bind, -metricsIp; seaweedfs@cc8364a0).
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    "-s3",
                    "-s3.ip.bind=0.0.0.0",
                    "-metricsIp=0.0.0.0",
                    f"-s3.port={OBJECT_STORAGE_S3_PORT}",
                    f"-s3.port.grpc={OBJECT_STORAGE_S3_GRPC_PORT}",
                    "-s3.config=/run/secrets/s3_identities.json",
                    f"-filer.port={OBJECT_STORAGE_FILER_PORT}",
                    f"-metricsPort={OBJECT_STORAGE_METRICS_PORT}",
                    "-volume.max=0",
                    # On by default: anonymous usage reports to the SeaweedFS project, which no one here agreed to.
                    "-master.telemetry=false",
                ],
                # The S3 gateway's gRPC port (IAM changes: PutIdentity) binds where S3 does: it asks every
                # client for a certificate signed by this key, which no other container holds
                # (weed/security/tls.go LoadServerTLS reads grpc.s3.cert/key and grpc.ca; viper maps
                # WEED_GRPC_S3_CERT to grpc.s3.cert, weed/util/config.go; seaweedfs@cc8364a0).
                env={"WEED_GRPC_CA": f"/run/secrets/{GRPC_TLS_CERT}", "WEED_GRPC_S3_CERT": f"/run/secrets/{GRPC_TLS_CERT}",
                     "WEED_GRPC_S3_KEY": f"/run/secrets/{GRPC_TLS_KEY}"},
                healthcheck=http_check(f"http://127.0.0.1:{OBJECT_STORAGE_MASTER_PORT}/cluster/status", start_period="30s"),
                resources=OBJECT_STORAGE_RESOURCES,
                networks=networks,
                aliases=[OBJECT_STORAGE_HOST],
                # weed reads it after the entrypoint switched to the seaweed user (images.CONTRACTS).
                secrets=[Mounted(identities, "s3_identities.json", **images.owner(images.SEAWEEDFS), mode=0o400), *grpc_tls],
                mounts=[volume_mount(volume.name, "/data")],
                labels=routes,
                stop_grace_period="60s",
                stateful=True,
                placement=self._scope.stateful_placement,
            ),
            self._child,
        )

    def _grpc_tls_secrets(self) -> list[Mounted]:
        """The S3 gRPC port's key and self-signed certificate (also its only CA), from a protected seed."""
        key, cert = seeded_tls_secrets(self._scope, f"{self._name}-s3-grpc-tls", OBJECT_STORAGE_HOST, self._data, self._child)
        owner = images.owner(images.SEAWEEDFS)
        return [Mounted(key, GRPC_TLS_KEY, **owner, mode=0o400), Mounted(cert, GRPC_TLS_CERT, **owner, mode=0o444)]

    def _n8n(self, timezone: str, owner_set_up: bool, networks: list[pulumi.Input[str]]) -> docker.Service:
        name = self._name
        encryption_key = random.RandomPassword(f"{name}-n8n-encryption-key", length=48, special=False, opts=self._data)
        # Changing this key makes every stored n8n credential undecryptable: protected with the data.
        key_secret = self._scope.secret(f"{name}-n8n-encryption-key", encryption_key.result, self._data)
        # Not adopted from .data/n8n: that n8n's key is in its config file, and n8n refuses to start with
        # another. Its workflows and credentials move with n8n's export and import (README, "Adopting").
        volume = self._scope.volume(f"{name}-n8n-data", f"{STACK}_n8n_data", self._data)
        self.n8n_volume_name = volume.name
        self.n8n_encryption_key: pulumi.Output[str] = pulumi.Output.secret(encryption_key.result)
        host = self._platform.hostnames.n8n
        return self._scope.service(
            f"{name}-n8n",
            ServiceSpec(
                name=N8N,
                image=images.N8N,
                env={
                    "N8N_ENCRYPTION_KEY_FILE": "/run/secrets/n8n_encryption_key",
                    "GENERIC_TIMEZONE": timezone,
                    "TZ": timezone,
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
                networks=networks,
                secrets=[Mounted(key_secret, "n8n_encryption_key", **images.owner(images.N8N), mode=0o400)],
                mounts=[volume_mount(volume.name, "/home/node/.n8n")],
                # The first visitor of a new n8n creates its owner account: basic auth until that is
                # done (n8nOwnerSetUp). /metrics is for Prometheus (on core_n8n too), never routed.
                labels=traefik_router_labels(
                    "n8n", self._platform.hostnames.routed(host), N8N_PORT, N8N_NETWORK,
                    middlewares=[] if owner_set_up else [DASHBOARD_AUTH_MIDDLEWARE],
                    rule_suffix=" && !PathPrefix(`/metrics`)",
                ),
                stateful=True,
                placement=self._scope.stateful_placement,
            ),
            self._child,
        )
