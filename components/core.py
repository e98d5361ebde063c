"""CoreStack: the shared overlay networks, Traefik and the Cloudflare Tunnel connector.

Creates:
- overlay networks `traefik-public` (routing) and `monitoring` (metrics scraping), attachable; and, not
  attachable, `core_n8n` (Traefik, Prometheus, n8n) and `core_tunnel_metrics` (cloudflared, Prometheus);
- Traefik v3.6 on a manager: Swarm provider, dashboard on :8080 behind basic auth (bcrypt hash of a
  random password, as a Docker secret), security headers and rate limit on every router, Prometheus
  metrics on :8082, JSON access logs;
- cloudflared, when tunnelMode is `token` (token from the dashboard) or `managed` (tunnel, ingress
  rules and proxied DNS records declared here with pulumi-cloudflare).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components import images
from components.settings import CoreSettings, Hostnames, Resources
from components.swarm import (
    Healthcheck,
    Mounted,
    ServiceSpec,
    StackScope,
    docker_api_mount,
)
from components.swarm_values import dump_yaml
from names import (
    CLOUDFLARED,
    CLOUDFLARED_METRICS_PORT,
    CORE,
    DOCKER_API_SOCKET,
    MONITORING_NETWORK,
    N8N_NETWORK,
    PUBLIC_NETWORK,
    STORAGE_NETWORK,
    TRAEFIK,
    TRAEFIK_DASHBOARD_PORT,
    TRAEFIK_METRICS_PORT,
    TRAEFIK_TUNNEL_PORT,
    TRAEFIK_WEB_PORT,
    TUNNEL_METRICS_NETWORK,
    TUNNEL_NETWORK,
    TUNNEL_SUBNET,
)

TRAEFIK_ORIGIN = f"http://{TRAEFIK}:{TRAEFIK_TUNNEL_PORT}"
"""Where cloudflared sends every public hostname (managed mode; set the same in the dashboard in token mode)."""
DASHBOARD_USERS_FILE = "/run/secrets/traefik_dashboard_users"
DASHBOARD_AUTH = "dashboard-auth"
"""The basic-auth middleware other routers reuse as `dashboard-auth@file`."""
TRAEFIK_RESOURCES = Resources(0.10, 0.50, 64, 256)
CLOUDFLARED_RESOURCES = Resources(0.05, 0.20, 64, 128)


@dataclass(frozen=True, kw_only=True)
class CoreStackArgs:
    settings: CoreSettings
    hostnames: Hostnames
    scope: StackScope
    docker_api_volume: pulumi.Input[str]
    """The volume with Traefik's socket to the Docker API proxy (components/docker_api.py)."""


def traefik_static_config() -> dict[str, Any]:
    """Traefik's static configuration (install configuration), as data.

    Two doors for traffic: `web` (:80, published) trusts no forwarded header, so a client there cannot pose as
    another address, and is rate-limited by its connection's address; `tunnel` (:8000, not
    published) trusts X-Forwarded-For only from the tunnel network, where cloudflared is alone,
    and is rate-limited by the visitor's address that Cloudflare appended last."""
    direct = ["security-headers@file", "rate-limit@file"]
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            # No :443. TLS ends at Cloudflare's edge and the tunnel carries it to `tunnel`; a published
            # 443 would serve a self-signed default certificate and route nothing more than :80.
            "web": {"address": f":{TRAEFIK_WEB_PORT}", "http": {"middlewares": direct}},
            "tunnel": {
                "address": f":{TRAEFIK_TUNNEL_PORT}",
                "forwardedHeaders": {"trustedIPs": [TUNNEL_SUBNET]},
                "http": {"middlewares": ["security-headers@file", "rate-limit-tunnel@file"]},
            },
            "traefik": {"address": f":{TRAEFIK_DASHBOARD_PORT}"},
            "metrics": {"address": f":{TRAEFIK_METRICS_PORT}"},
        },
        "api": {"dashboard": True},
        "ping": {"entryPoint": "traefik"},
        "providers": {
            "swarm": {
                "endpoint": f"unix://{DOCKER_API_SOCKET}",
                "exposedByDefault": False,
                "network": PUBLIC_NETWORK,
                "watch": True,
            },
            "file": {"filename": "/etc/traefik/dynamic.yml", "watch": False},
        },
        "metrics": {
            "prometheus": {"entryPoint": "metrics", "addRoutersLabels": True, "addServicesLabels": True}
        },
        "log": {"level": "INFO", "format": "json"},
        "accessLog": {
            "format": "json",
            "fields": {"headers": {"defaultMode": "drop", "names": {"CF-Connecting-IP": "keep", "User-Agent": "keep"}}},
        },
    }


def traefik_dynamic_config(settings: CoreSettings) -> dict[str, Any]:
    """Traefik's dynamic configuration (file provider): the edge middlewares and the dashboard router."""
    limit = {"average": settings.rate_limit_average, "burst": settings.rate_limit_burst, "period": "1s"}
    return {
        "http": {
            "middlewares": {
                "security-headers": {
                    "headers": {
                        # HSTS on every response: TLS ends at Cloudflare, so Traefik sees plain HTTP
                        # and would otherwise never send it.
                        "forceSTSHeader": True,
                        "frameDeny": True,
                        "contentTypeNosniff": True,
                        "browserXssFilter": True,
                        "referrerPolicy": "strict-origin-when-cross-origin",
                        "stsSeconds": 31536000,
                        "stsIncludeSubdomains": True,
                        "stsPreload": True,
                        "permissionsPolicy": "camera=(), microphone=(), geolocation=()",
                        "customResponseHeaders": {"X-Powered-By": "", "Server": ""},
                    }
                },
                # No source criterion: Traefik keys by the connection's address, which no header a
                # client sends changes. (An empty ipStrategy is refused as a "standalone element".)
                "rate-limit": {"rateLimit": limit},
                # Keyed by the last X-Forwarded-For entry, which Cloudflare's edge appends (the
                # tunnel entry point keeps the header only when cloudflared sends it).
                "rate-limit-tunnel": {"rateLimit": {**limit, "sourceCriterion": {"ipStrategy": {"depth": 1}}}},
                DASHBOARD_AUTH: {"basicAuth": {"usersFile": DASHBOARD_USERS_FILE, "realm": "traefik", "removeHeader": True}},
            },
            "routers": {
                "dashboard": {
                    "rule": "PathPrefix(`/api`) || PathPrefix(`/dashboard`)",
                    "entryPoints": ["traefik"],
                    "service": "api@internal",
                    "middlewares": [DASHBOARD_AUTH],
                }
            },
        }
    }


def htpasswd_line(user: str, bcrypt_hash: str) -> str:
    return f"{user}:{bcrypt_hash}\n"


class CoreStack(pulumi.ComponentResource):
    public_network_id: pulumi.Output[str]
    monitoring_network_id: pulumi.Output[str]
    storage_network_id: pulumi.Output[str]
    n8n_network_id: pulumi.Output[str]
    tunnel_metrics_network_id: pulumi.Output[str]
    dashboard_password: pulumi.Output[str]
    tunnel_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: CoreStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nextcandle:core:CoreStack", name, None, opts)
        self._name, self._args, self._scope = name, args, args.scope.of(CORE)
        self._child = pulumi.ResourceOptions(parent=self)

        public = self._public_network()
        monitoring = self._scope.network(f"{name}-monitoring", MONITORING_NETWORK, self._child)
        tunnel = self._scope.network(f"{name}-tunnel", TUNNEL_NETWORK, self._child, subnet=TUNNEL_SUBNET)
        storage = self._scope.network(f"{name}-storage", STORAGE_NETWORK, self._child)
        # Not attachable: only the platform's own services join them, named by the program.
        n8n = self._scope.network(f"{name}-n8n", N8N_NETWORK, self._child, attachable=False)
        tunnel_metrics = self._scope.network(f"{name}-tunnel-metrics", TUNNEL_METRICS_NETWORK, self._child, attachable=False)
        self.public_network_id = public
        self.monitoring_network_id = monitoring.id
        self.storage_network_id = storage.id
        self.n8n_network_id = n8n.id
        self.tunnel_metrics_network_id = tunnel_metrics.id

        self.traefik = self._traefik([public, monitoring.id, tunnel.id, storage.id, n8n.id])
        self.tunnel_id = None
        tunnel_token = self._tunnel_token(name, args, self._child)
        self.cloudflared = self._cloudflared(tunnel_token, [tunnel.id, tunnel_metrics.id]) if tunnel_token is not None else None

        self.register_outputs(
            {
                "public_network_id": self.public_network_id,
                "monitoring_network_id": self.monitoring_network_id,
                "storage_network_id": self.storage_network_id,
                "n8n_network_id": self.n8n_network_id,
                "tunnel_metrics_network_id": self.tunnel_metrics_network_id,
                "dashboard_password": self.dashboard_password,
            }
        )

    def _public_network(self) -> pulumi.Output[str]:
        """traefik-public's id: ours, or the one the seeds' setup created, which applications still use."""
        if self._args.settings.external_public_network:
            return docker.get_network_output(name=PUBLIC_NETWORK, opts=pulumi.InvokeOptions(parent=self)).id
        return self._scope.network(f"{self._name}-traefik-public", PUBLIC_NETWORK, self._child).id

    def _traefik(self, networks: list[pulumi.Output[str]]) -> docker.Service:
        name, args, child = self._name, self._args, self._child
        dashboard_password = random.RandomPassword(f"{name}-dashboard-password", length=24, special=False, opts=child)
        self.dashboard_password = pulumi.Output.secret(dashboard_password.result)
        users = self._scope.secret(
            f"{name}-dashboard-users", dashboard_password.bcrypt_hash.apply(lambda h: htpasswd_line(args.settings.dashboard_user, h)), child
        )
        static = self._scope.config(f"{name}-traefik-static", "traefik-static", dump_yaml(traefik_static_config()), child)
        dynamic = self._scope.config(f"{name}-traefik-dynamic", "traefik-dynamic", dump_yaml(traefik_dynamic_config(args.settings)), child)
        return self._scope.service(
            f"{name}-traefik",
            ServiceSpec(
                name=TRAEFIK,
                image=images.TRAEFIK,
                args=["--configFile=/etc/traefik/traefik.yml"],
                healthcheck=Healthcheck(
                    ["CMD", "traefik", "healthcheck", "--configFile=/etc/traefik/traefik.yml"],
                    interval="10s", timeout="5s", retries=3, start_period="10s",
                ),
                resources=TRAEFIK_RESOURCES,
                networks=networks,
                configs=[Mounted(static, "/etc/traefik/traefik.yml"), Mounted(dynamic, "/etc/traefik/dynamic.yml")],
                secrets=[Mounted(users, "traefik_dashboard_users", mode=0o400)],
                # The Swarm provider reads the manager's API (services, tasks, networks, nodes), through the proxy.
                mounts=[docker_api_mount(args.docker_api_volume)],
                placement=["node.role==manager"],
                ports=[
                    *([(TRAEFIK_WEB_PORT, TRAEFIK_WEB_PORT)] if args.settings.publish_ports else []),
                    # Plain HTTP with basic auth on every node: only when asked for (traefikDashboardPublished).
                    *([(TRAEFIK_DASHBOARD_PORT, TRAEFIK_DASHBOARD_PORT)] if args.settings.publish_dashboard else []),
                ],
            ),
            child,
        )

    def _cloudflared(self, tunnel_token: pulumi.Output[str], networks: list[pulumi.Output[str]]) -> docker.Service:
        name, child = self._name, self._child
        token_secret = self._scope.secret(f"{name}-tunnel-token", tunnel_token, child)
        return self._scope.service(
            f"{name}-cloudflared",
            ServiceSpec(
                name=CLOUDFLARED,
                image=images.CLOUDFLARED,
                args=[
                    "tunnel", "--no-autoupdate", "--metrics", f"0.0.0.0:{CLOUDFLARED_METRICS_PORT}",
                    "run", "--token-file", "/run/secrets/cloudflared_token",
                ],
                healthcheck=Healthcheck(
                    ["CMD", "cloudflared", "tunnel", "--metrics", f"localhost:{CLOUDFLARED_METRICS_PORT}", "ready"],
                    interval="15s", timeout="5s", retries=3, start_period="20s",
                ),
                resources=CLOUDFLARED_RESOURCES,
                networks=networks,
                secrets=[Mounted(token_secret, "cloudflared_token")],
                replicas=2,
            ),
            child,
        )

    def _tunnel_token(self, name: str, args: CoreStackArgs, child: pulumi.ResourceOptions) -> pulumi.Output[str] | None:
        tunnel = args.settings.tunnel
        if tunnel.mode == "token":
            return tunnel.token
        if tunnel.mode == "managed":
            return self._managed_tunnel(name, args, child)
        return None

    def _managed_tunnel(self, name: str, args: CoreStackArgs, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        # Imported here: pulumi_cloudflare costs ~2 s to import and a provider plugin to run.
        import pulumi_cloudflare as cloudflare

        tunnel_settings = args.settings.tunnel
        provider = cloudflare.Provider(f"{name}-cloudflare", api_token=tunnel_settings.api_token, opts=child)
        cf = pulumi.ResourceOptions(parent=self, provider=provider)
        secret = random.RandomBytes(f"{name}-tunnel-secret", length=32, opts=child)
        tunnel = cloudflare.ZeroTrustTunnelCloudflared(
            f"{name}-tunnel",
            account_id=tunnel_settings.account_id,
            name=f"nextcandle-{pulumi.get_stack()}",
            config_src="cloudflare",
            tunnel_secret=secret.base64,
            opts=cf,
        )
        self.tunnel_id = tunnel.id
        hostnames = args.hostnames.public
        cloudflare.ZeroTrustTunnelCloudflaredConfig(
            f"{name}-tunnel-config",
            account_id=tunnel_settings.account_id,
            tunnel_id=tunnel.id,
            config=cloudflare.ZeroTrustTunnelCloudflaredConfigConfigArgs(
                ingresses=[
                    *(
                        cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgs(hostname=host, service=TRAEFIK_ORIGIN)
                        for host in hostnames
                    ),
                    # Cloudflare requires a last rule that matches everything.
                    cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgs(service="http_status:404"),
                ]
            ),
            opts=cf,
        )
        for host in hostnames:
            cloudflare.DnsRecord(
                f"{name}-dns-{host.replace('.', '-')}",
                zone_id=tunnel_settings.zone_id,
                name=host,
                type="CNAME",
                content=tunnel.id.apply(lambda tunnel_id: f"{tunnel_id}.cfargotunnel.com"),
                proxied=True,
                ttl=1,
                comment="Managed by Pulumi (nextcandle): Cloudflare Tunnel",
                opts=cf,
            )
        token = cloudflare.get_zero_trust_tunnel_cloudflared_token_output(
            account_id=tunnel_settings.account_id,
            tunnel_id=tunnel.id,
            opts=pulumi.InvokeOutputOptions(provider=provider, parent=self),
        )
        return pulumi.Output.secret(token.token)

