"""SharedObservability: metrics, logs, alerts and dashboards for the whole swarm.

Creates (stack `shared`):
- Prometheus v3 (15 s scrapes, 15 days retention) that discovers every replica through Swarm DNS
  (`tasks.<service>`): Traefik, cloudflared, cAdvisor, node-exporter, each environment's Redis and
  PostgreSQL exporters, object storage, n8n, Loki, Alertmanager and the configured application targets;
  reached at prometheus.localhost only;
- Alertmanager with the rules in configs/prometheus/rules/ (optional webhook receiver);
- Loki (TSDB schema v13, retention enforced by the compactor) and Grafana Alloy on every node, shipping
  container logs with their Swarm labels (Promtail reached end of life in 2026);
- Grafana with the Prometheus, Loki and Alertmanager data sources and our dashboards provisioned;
- cAdvisor and node-exporter on every node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components import images
from components.observability_configs import (
    DASHBOARDS_DIR,
    PROMETHEUS_PASSWORD_FILE,
    PROMETHEUS_USER,
    RULES_DIR,
    alertmanager_config,
    alloy_config,
    dashboard_files,
    grafana_dashboard_provider,
    grafana_datasources,
    loki_config,
    prometheus_config,
    prometheus_web_config,
    rule_files,
)
from components.settings import ObservabilitySettings, Resources
from components.swarm import (
    Healthcheck,
    Mounted,
    ServiceSpec,
    SharedPlatform,
    StackScope,
    bind_mount,
    docker_api_mount,
    http_check,
    mask_mount,
    volume_mount,
)
from components.swarm_values import dump_yaml, traefik_router_labels
from names import (
    ALERTMANAGER,
    ALERTMANAGER_PORT,
    ALLOY,
    ALLOY_PORT,
    CADVISOR,
    CADVISOR_PORT,
    DOCKER_API_CONTAINERD_SOCKET,
    DOCKER_API_SOCKET,
    GRAFANA,
    GRAFANA_PORT,
    LOKI,
    NODE_EXPORTER,
    NODE_EXPORTER_PORT,
    PROMETHEUS,
    PROMETHEUS_PORT,
    PUBLIC_NETWORK,
    SHARED,
    SHARED_INTERNAL_NETWORK,
)

STACK = SHARED
MONITORING_RESOURCES = Resources(0.05, 0.30, 64, 256)
PROMETHEUS_RESOURCES = Resources(0.10, 0.50, 128, 512)
GRAFANA_RESOURCES = Resources(0.10, 0.50, 128, 256)
AGENT_RESOURCES = Resources(0.05, 0.20, 32, 128)


@dataclass(frozen=True, kw_only=True)
class SharedObservabilityArgs:
    platform: SharedPlatform
    scope: StackScope
    settings: ObservabilitySettings
    alert_webhook_url: pulumi.Output[str] | None
    docker_api_volumes: Mapping[str, pulumi.Input[str]]
    """Alloy's and cAdvisor's volumes with their sockets to the Docker API proxy (components/docker_api.py)."""


class SharedObservability(pulumi.ComponentResource):
    grafana_admin_user: pulumi.Output[str]
    grafana_admin_password: pulumi.Output[str]
    prometheus_password: pulumi.Output[str]

    def __init__(self, name: str, args: SharedObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nextcandle:observability:SharedObservability", name, None, opts)
        self._name, self._platform, self._settings = name, args.platform, args.settings
        self._docker_api = args.docker_api_volumes
        self._scope = args.scope.of(STACK)
        self._child = pulumi.ResourceOptions(parent=self)
        self._data = self._scope.data_options(self)

        # Applications join `monitoring` (to be scraped) and `traefik-public` (to be routed): what holds
        # data without a login of its own (Loki, Alertmanager, Alloy) is on `shared_internal` only.
        internal = self._scope.network(f"{name}-internal", SHARED_INTERNAL_NETWORK, self._child)
        platform = args.platform
        monitoring, public, storage = platform.monitoring_network_id, platform.public_network_id, platform.storage_network_id

        # Prometheus's login: Prometheus checks its bcrypt hash, Grafana's datasource sends it.
        password = random.RandomPassword(f"{name}-prometheus-password", length=32, special=False, opts=self._child)
        self.prometheus_password = pulumi.Output.secret(password.result)
        password_file = self._scope.secret(f"{name}-prometheus-password", password.result, self._child)
        # Also the private networks of what it scrapes there alone: n8n, and cloudflared's metrics.
        scraped_privately = [platform.n8n_network_id, platform.tunnel_metrics_network_id]
        self.prometheus = self._prometheus(password, password_file, [monitoring, internal.id, storage, *scraped_privately])
        self.alertmanager = self._alertmanager(args.alert_webhook_url, [internal.id])
        self.loki = self._loki([internal.id])
        self.alloy = self._alloy([internal.id])
        self.cadvisor = self._cadvisor([monitoring])
        self.node_exporter = self._node_exporter([monitoring])
        self.grafana = self._grafana(password_file, [internal.id, public])

        self.register_outputs(
            {"grafana_admin_user": self.grafana_admin_user, "grafana_admin_password": self.grafana_admin_password}
        )

    def _config(self, key: str, content: str) -> docker.ServiceConfig:
        return self._scope.config(f"{self._name}-{key}", key, content, self._child)

    def _volume(self, key: str) -> docker.Volume:
        # The seeds kept Prometheus's and Grafana's data in .data/<key>; Loki's schema differs, logs start afresh.
        adopt = key if key in ("prometheus", "grafana") else ""
        return self._scope.volume(f"{self._name}-{key}-data", f"{STACK}_{key}_data", self._data, adopt=adopt)

    def _service(self, key: str, spec: ServiceSpec) -> docker.Service:
        return self._scope.service(f"{self._name}-{key}", spec, self._child)

    def _prometheus(
        self, password: random.RandomPassword, password_file: docker.Secret, networks: list[pulumi.Input[str]]
    ) -> docker.Service:
        settings = self._settings
        rules = [Mounted(self._config(f"rules-{p.stem}", p.read_text()), f"{RULES_DIR}/{p.name}") for p in rule_files()]
        config = self._config("prometheus", dump_yaml(prometheus_config(settings)))
        volume = self._volume("prometheus")
        web = self._scope.secret(f"{self._name}-prometheus-web", password.bcrypt_hash.apply(prometheus_web_config), self._child)
        return self._service(
            "prometheus",
            ServiceSpec(
                name=PROMETHEUS,
                image=images.PROMETHEUS,
                args=[
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/prometheus",
                    f"--storage.tsdb.retention.time={settings.prometheus_retention}",
                    "--web.config.file=/run/secrets/prometheus_web.yml",
                ],
                healthcheck=Healthcheck(
                    ["CMD-SHELL", f'wget -q --spider "http://{PROMETHEUS_USER}:$(cat {PROMETHEUS_PASSWORD_FILE})@127.0.0.1:{PROMETHEUS_PORT}/-/healthy"']
                ),
                resources=PROMETHEUS_RESOURCES,
                stateful=True,
                networks=networks,
                configs=[Mounted(config, "/etc/prometheus/prometheus.yml"), *rules],
                secrets=[
                    Mounted(web, "prometheus_web.yml", **images.owner(images.PROMETHEUS), mode=0o400),
                    Mounted(password_file, "prometheus_password", **images.owner(images.PROMETHEUS), mode=0o400),
                ],
                mounts=[volume_mount(volume.name, "/prometheus")],
                placement=self._scope.stateful_placement,
            ),
        )

    def _alertmanager(self, webhook_url: pulumi.Output[str] | None, networks: list[pulumi.Input[str]]) -> docker.Service:
        # Its config is a secret, as the webhook URL carries a token.
        webhook = webhook_url or pulumi.Output.from_input("")
        config = self._scope.secret(
            f"{self._name}-alertmanager-config", webhook.apply(lambda url: dump_yaml(alertmanager_config(url or None))), self._child
        )
        volume = self._volume("alertmanager")
        return self._service(
            "alertmanager",
            ServiceSpec(
                name=ALERTMANAGER,
                image=images.ALERTMANAGER,
                args=["--config.file=/run/secrets/alertmanager.yml", "--storage.path=/alertmanager"],
                healthcheck=http_check(f"http://127.0.0.1:{ALERTMANAGER_PORT}/-/healthy"),
                resources=AGENT_RESOURCES,
                stateful=True,
                networks=networks,
                secrets=[Mounted(config, "alertmanager.yml", **images.owner(images.ALERTMANAGER), mode=0o400)],
                mounts=[volume_mount(volume.name, "/alertmanager")],
                placement=self._scope.stateful_placement,
            ),
        )

    def _loki(self, networks: list[pulumi.Input[str]]) -> docker.Service:
        config = self._config("loki", dump_yaml(loki_config(self._settings.loki_retention_hours)))
        volume = self._volume("loki")
        return self._service(
            "loki",
            ServiceSpec(
                name=LOKI,
                image=images.LOKI,
                args=["-config.file=/etc/loki/loki.yml"],
                # The image has no shell or wget; Loki checks its own /ready.
                healthcheck=Healthcheck(["CMD", "/usr/bin/loki", "-health"], start_period="60s"),
                resources=MONITORING_RESOURCES,
                stateful=True,
                networks=networks,
                configs=[Mounted(config, "/etc/loki/loki.yml")],
                mounts=[volume_mount(volume.name, "/loki")],
                placement=self._scope.stateful_placement,
            ),
        )

    def _alloy(self, networks: list[pulumi.Input[str]]) -> docker.Service:
        config = self._config("alloy", alloy_config())
        # Read positions survive restarts (a local volume on each node), so no log is shipped twice or missed.
        volume = self._volume("alloy")
        return self._service(
            "alloy",
            ServiceSpec(
                name=ALLOY,
                image=images.ALLOY,
                args=["run", f"--server.http.listen-addr=0.0.0.0:{ALLOY_PORT}", "--storage.path=/var/lib/alloy/data", "/etc/alloy/config.alloy"],
                # The image has bash but no curl or wget.
                healthcheck=Healthcheck(
                    ["CMD", "bash", "-c", f'exec 3<>/dev/tcp/127.0.0.1/{ALLOY_PORT} && printf "GET /-/ready HTTP/1.0\\r\\n\\r\\n" >&3 && head -1 <&3 | grep -q " 200 "'],
                ),
                resources=AGENT_RESOURCES,
                global_mode=True,
                stateful=True,
                networks=networks,
                configs=[Mounted(config, "/etc/alloy/config.alloy")],
                mounts=[docker_api_mount(self._docker_api[ALLOY]), volume_mount(volume.name, "/var/lib/alloy/data")],
            ),
        )

    def _cadvisor(self, networks: list[pulumi.Input[str]]) -> docker.Service:
        return self._service(
            "cadvisor",
            ServiceSpec(
                name=CADVISOR,
                image=images.CADVISOR,
                # Its docker factory registers once, at start, and never again if Docker does not answer then:
                # wait for the proxy's socket (google/cadvisor@44b8e30 lib/container/factory.go).
                commands=["/bin/sh", "-c", f"until [ -S {DOCKER_API_SOCKET} ]; do sleep 1; done; exec /usr/bin/entrypoint.sh \"$@\"", "cadvisor"],
                args=[f"--docker=unix://{DOCKER_API_SOCKET}", f"--containerd={DOCKER_API_CONTAINERD_SOCKET}", "--docker_only=true", "--housekeeping_interval=30s", "--store_container_labels=true"],
                healthcheck=http_check(f"http://127.0.0.1:{CADVISOR_PORT}/healthz"),
                resources=MONITORING_RESOURCES,
                global_mode=True,
                networks=networks,
                # No /var/run (the usual recipe's, with the raw socket): the Docker API comes through the proxy.
                mounts=[
                    bind_mount("/", "/rootfs"),
                    mask_mount("/rootfs/run"),
                    docker_api_mount(self._docker_api[CADVISOR]),
                    bind_mount("/sys", "/sys"),
                    bind_mount("/var/lib/docker", "/var/lib/docker"),
                    bind_mount("/dev/disk", "/dev/disk"),
                ],
            ),
        )

    def _node_exporter(self, networks: list[pulumi.Input[str]]) -> docker.Service:
        return self._service(
            "node-exporter",
            ServiceSpec(
                name=NODE_EXPORTER,
                image=images.NODE_EXPORTER,
                args=[
                    "--path.procfs=/host/proc",
                    "--path.sysfs=/host/sys",
                    "--path.rootfs=/rootfs",
                    "--collector.filesystem.mount-points-exclude=^/(sys|proc|dev|host|etc)($|/)",
                ],
                healthcheck=http_check(f"http://127.0.0.1:{NODE_EXPORTER_PORT}/"),
                resources=AGENT_RESOURCES,
                global_mode=True,
                networks=networks,
                hostname="{{.Node.Hostname}}",
                # /rootfs/run masked: the host's Docker and containerd sockets are there.
                mounts=[bind_mount("/proc", "/host/proc"), bind_mount("/sys", "/host/sys"), bind_mount("/", "/rootfs"), mask_mount("/rootfs/run")],
            ),
        )

    def _grafana(self, password_file: docker.Secret, networks: list[pulumi.Input[str]]) -> docker.Service:
        name, platform = self._name, self._platform
        admin_user = random.RandomString(f"{name}-grafana-admin-user", length=8, special=False, upper=False, numeric=False, opts=self._child)
        admin_password = random.RandomPassword(f"{name}-grafana-admin-password", length=32, special=False, opts=self._data)
        self.grafana_admin_user = admin_user.result.apply(lambda r: f"admin_{r}")
        self.grafana_admin_password = pulumi.Output.secret(admin_password.result)
        volume = self._volume("grafana")
        self.grafana_volume_name = volume.name
        dashboards = [Mounted(self._config(f"dashboard-{p.stem}", p.read_text()), f"{DASHBOARDS_DIR}/{p.name}") for p in dashboard_files()]
        return self._service(
            "grafana",
            ServiceSpec(
                name=GRAFANA,
                image=images.GRAFANA,
                env={
                    "GF_SECURITY_ADMIN_USER__FILE": "/run/secrets/grafana_admin_user",
                    "GF_SECURITY_ADMIN_PASSWORD__FILE": "/run/secrets/grafana_admin_password",
                    "GF_SERVER_ROOT_URL": f"https://{platform.hostnames.grafana}/",
                    "GF_USERS_ALLOW_SIGN_UP": "false",
                    "GF_ANALYTICS_REPORTING_ENABLED": "false",
                    "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
                },
                healthcheck=http_check(f"http://127.0.0.1:{GRAFANA_PORT}/api/health"),
                resources=GRAFANA_RESOURCES,
                stateful=True,
                networks=networks,
                secrets=[
                    Mounted(self._scope.secret(f"{name}-grafana-admin-user", self.grafana_admin_user, self._child), "grafana_admin_user"),
                    Mounted(self._scope.secret(f"{name}-grafana-admin-password", admin_password.result, self._data), "grafana_admin_password"),
                    Mounted(password_file, "prometheus_password", **images.owner(images.GRAFANA), mode=0o400),
                ],
                configs=[
                    Mounted(self._config("grafana-datasources", dump_yaml(grafana_datasources())), "/etc/grafana/provisioning/datasources/nextcandle.yml"),
                    Mounted(self._config("grafana-dashboards", dump_yaml(grafana_dashboard_provider())), "/etc/grafana/provisioning/dashboards/nextcandle.yml"),
                    *dashboards,
                ],
                mounts=[volume_mount(volume.name, "/var/lib/grafana")],
                placement=self._scope.stateful_placement,
                labels=traefik_router_labels("grafana", platform.hostnames.routed(platform.hostnames.grafana), GRAFANA_PORT, PUBLIC_NETWORK),
            ),
        )
