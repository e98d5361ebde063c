"""Building blocks shared by every component: services that meet the platform's conventions,
immutable Swarm configs and secrets, volumes and networks.

Conventions every service gets here: a pinned image, a health check, CPU/memory limits and
reservations, a restart policy, explicit update and rollback policies (start-first with automatic
rollback for stateless services, stop-first for stateful ones), rotated json-file logs, and the
`com.docker.stack.namespace` label so `docker stack services <stack>` keeps working.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pulumi
import pulumi_docker as docker

from components.images import CONTRACTS
from components.settings import Hostnames, Resources, Settings
from components.swarm_values import b64, content_hash, is_pinned, mebibytes, nano_cpus, provider_duration
from names import CACHE_LABEL, DOCKER_API_DIR, STACK_LABEL, STOPPED_LABEL

STOPPED_CONSTRAINT = f"node.labels.{STOPPED_LABEL}==true"
"""A global service cannot scale to zero; this constraint, which no node meets, leaves it no task."""
RUNNING_CONSTRAINT = f"node.labels.{STOPPED_LABEL}!=true"
"""Its opposite, which every node meets, stands in its place while the service runs: with no placement
block at all, the provider leaves the old constraint on the service (start then brought no task back)."""


@dataclass(frozen=True)
class Healthcheck:
    tests: Sequence[str]
    interval: str = "30s"
    timeout: str = "10s"
    retries: int = 3
    start_period: str = "30s"


def http_check(url: str, start_period: str = "30s") -> Healthcheck:
    """A health check with busybox/alpine wget, which the pinned images ship."""
    return Healthcheck(["CMD", "wget", "-q", "--spider", url], start_period=start_period)


@dataclass(frozen=True)
class Mounted:
    """A Swarm secret or config mounted into a service."""

    resource: docker.Secret | docker.ServiceConfig
    file_name: str
    """Path in the container; a bare name lands in /run/secrets/ (secrets) or / (configs)."""
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444


@dataclass(frozen=True, kw_only=True)
class ServiceSpec:
    """What differs between services; everything else is the platform's convention."""

    name: str
    """Swarm service name, <stack>_<service> as `docker stack deploy` would name it."""
    image: str
    healthcheck: Healthcheck
    resources: Resources
    stateful: bool = False
    global_mode: bool = False
    replicas: int = 1
    networks: Sequence[pulumi.Input[str]] = ()
    aliases: Sequence[str] = ()
    """More DNS names for the service on each of its networks."""
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    args: Sequence[str] = ()
    commands: Sequence[str] = ()
    secrets: Sequence[Mounted] = ()
    configs: Sequence[Mounted] = ()
    mounts: Sequence[docker.ServiceTaskSpecContainerSpecMountArgs] = ()
    ports: Sequence[tuple[int, int]] = ()
    """(published, target) pairs."""
    publish_mode: str = "ingress"
    """ingress (every node, the client's address hidden behind the mesh) or host (the task's node, the
    client's own address, which pg_hba can check)."""
    placement: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    """Service labels: Traefik routing, policy exceptions."""
    restart_condition: str = "on-failure"
    user: str | None = None
    stop_grace_period: str = "30s"
    stop_signal: str | None = None
    """Set where the image's STOPSIGNAL matters (PostgreSQL's fast shutdown), so it holds whatever the image says."""
    hostname: str | None = None


@dataclass(frozen=True, kw_only=True)
class StackScope:
    """What every resource of one stack shares, built once per Pulumi stack from its settings.
    Components make their services, secrets, configs, networks and volumes through it."""

    stack: str
    """The Swarm stack (core, shared, runner, dev...): the namespace label of everything made here."""
    restart_max_attempts: int
    stopped: bool
    """Services scale to zero (a global one gets a constraint no node meets); nothing else changes."""
    protect_data: bool
    data_directory: str
    """The seeds' .data directory to adopt (`adopt=` of `volume`); empty: named volumes."""
    stateful_placement: tuple[str, ...]

    @classmethod
    def of_settings(cls, settings: Settings) -> StackScope:
        return cls(stack=settings.stack, restart_max_attempts=settings.restart_max_attempts, stopped=settings.stopped,
                   protect_data=settings.protect_data, data_directory=settings.data_directory,
                   stateful_placement=settings.stateful_placement)

    def of(self, stack: str) -> StackScope:
        """The same scope for another Swarm stack of this Pulumi stack (the platform's core, shared, runner)."""
        return replace(self, stack=stack)

    def data_options(self, parent: pulumi.Resource) -> pulumi.ResourceOptions:
        """For volumes, keys and passwords: protected (and kept if removed from the program) with protectData."""
        return pulumi.ResourceOptions(parent=parent, protect=self.protect_data, retain_on_delete=self.protect_data)

    def service(self, resource_name: str, spec: ServiceSpec, opts: pulumi.ResourceOptions) -> docker.Service:
        return swarm_service(resource_name, spec, self, opts)

    def secret(self, resource_name: str, value: pulumi.Input[str], opts: pulumi.ResourceOptions) -> docker.Secret:
        return swarm_secret(resource_name, value, self.stack, opts)

    def config(self, resource_name: str, swarm_name: str, content: str, opts: pulumi.ResourceOptions) -> docker.ServiceConfig:
        return swarm_config(resource_name, swarm_name, content, self.stack, opts)

    def network(self, resource_name: str, name: str, opts: pulumi.ResourceOptions, subnet: str | None = None, attachable: bool = True) -> docker.Network:
        return overlay_network(resource_name, name, self.stack, opts, subnet, attachable)

    def volume(self, resource_name: str, name: str, opts: pulumi.ResourceOptions, adopt: str = "") -> docker.Volume:
        """A data volume; `adopt` names the subdirectory of the seeds' data directory it binds to, if one is set."""
        return data_volume(resource_name, name, self.stack, opts, adopted_directory(self.data_directory, adopt) if adopt else "")

    def cache_volume(self, resource_name: str, name: str, opts: pulumi.ResourceOptions) -> docker.Volume:
        return cache_volume(resource_name, name, self.stack, opts)


@dataclass(frozen=True, kw_only=True)
class SharedPlatform:
    """What the platform's core gives its shared components: hostnames and networks."""

    hostnames: Hostnames
    public_network_id: pulumi.Input[str]
    monitoring_network_id: pulumi.Input[str]
    storage_network_id: pulumi.Input[str]
    n8n_network_id: pulumi.Input[str]
    tunnel_metrics_network_id: pulumi.Input[str]


def named(opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
    """Options for a resource with a fixed Swarm name whose replacement the provider may force
    (a service's name, mode or networks; a network's driver or labels): the old one must go first,
    or Docker refuses the new one's name. Never for volumes: a volume "replaced" under the same
    name would be the same volume, then deleted."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=True))


def command_line(spec: ServiceSpec) -> tuple[list[pulumi.Input[str]] | None, list[str] | None, dict[str, pulumi.Input[str]] | None]:
    """(commands, args, env) for the container. Two or more environment variables are passed by
    `env NAME=VALUE ... <the image's entrypoint>`, in a fixed order, not as the service's env: the
    provider writes an env map to Swarm in Go's random map order (kreuzwerker's
    mapTypeMapValsToStringSlice), and Swarm restarts every task whose spec differs, so any update
    (a label, the replicas) could restart a database. A value with a Swarm template ({{.Node.Hostname}})
    stays in env, where Swarm expands it; at most one may."""
    env = dict(spec.env)
    if len(env) <= 1:
        return list(spec.commands) or None, list(spec.args) or None, env or None
    templated: dict[str, pulumi.Input[str]] = {k: v for k, v in env.items() if isinstance(v, str) and "{{" in v}
    if len(templated) > 1:
        raise ValueError(f"{spec.name}: at most one environment variable may use a Swarm template")
    image = CONTRACTS[spec.image]
    if "env" not in image.tools:
        raise ValueError(f"{spec.name}: {spec.image} has no `env` program to pass environment variables")
    program, args = (list(spec.commands), list(spec.args)) if spec.commands else (list(image.entrypoint), list(spec.args or image.command))
    assignments: list[pulumi.Input[str]] = [pulumi.Output.concat(k, "=", v) for k, v in sorted(env.items()) if k not in templated]
    return ["env", *assignments, *program], args or None, templated or None


def endpoint_mode(spec: ServiceSpec) -> str:
    """dnsrr for a stateful service: its name resolves to its one task, with no IPVS virtual IP, which
    drops a connection idle for 15 minutes (moby #31208; docker-library/postgres #1110) and gives a
    single replica nothing. A Swarm VIP stays for stateless services and ingress-published ports."""
    if not spec.stateful:
        return "vip"
    if spec.ports and spec.publish_mode == "ingress":
        raise ValueError(f"{spec.name}: a stateful service publishes in host mode (dnsrr has no ingress mesh)")
    return "dnsrr"


def swarm_service(resource_name: str, spec: ServiceSpec, scope: StackScope, opts: pulumi.ResourceOptions) -> docker.Service:
    if not is_pinned(spec.image):
        raise ValueError(f"{spec.name}: image {spec.image!r} must be pinned to a tag other than latest")
    order = "stop-first" if spec.stateful else "start-first"
    stopped = scope.stopped
    labels = {STACK_LABEL: scope.stack, **spec.labels, **({STOPPED_LABEL: "true"} if stopped else {})}
    placement = [*spec.placement, *([STOPPED_CONSTRAINT if stopped else RUNNING_CONSTRAINT] if spec.global_mode else [])]
    commands, args, env = command_line(spec)
    return docker.Service(
        resource_name,
        name=spec.name,
        labels=[docker.ServiceLabelArgs(label=k, value=v) for k, v in labels.items()],
        mode=docker.ServiceModeArgs(global_=True)
        if spec.global_mode
        else docker.ServiceModeArgs(
            replicated=docker.ServiceModeReplicatedArgs(replicas=0 if stopped else spec.replicas)
        ),
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=spec.image,
                args=args,
                commands=commands,
                env=env,
                user=spec.user,
                hostname=spec.hostname,
                stop_grace_period=provider_duration(spec.stop_grace_period),
                stop_signal=spec.stop_signal,
                # Container labels are ForceNew in the provider: only ones that never change belong
                # here (an image label replaced every service on each image bump instead of rolling it).
                labels=[docker.ServiceTaskSpecContainerSpecLabelArgs(label=STACK_LABEL, value=scope.stack)],
                healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                    tests=list(spec.healthcheck.tests),
                    interval=provider_duration(spec.healthcheck.interval),
                    timeout=provider_duration(spec.healthcheck.timeout),
                    retries=spec.healthcheck.retries,
                    start_period=provider_duration(spec.healthcheck.start_period),
                ),
                secrets=[
                    docker.ServiceTaskSpecContainerSpecSecretArgs(
                        secret_id=m.resource.id,
                        secret_name=m.resource.name,
                        file_name=m.file_name,
                        file_uid=m.uid,
                        file_gid=m.gid,
                        file_mode=m.mode,
                    )
                    for m in spec.secrets
                ]
                or None,
                configs=[
                    docker.ServiceTaskSpecContainerSpecConfigArgs(
                        config_id=m.resource.id,
                        config_name=m.resource.name,
                        file_name=m.file_name,
                        file_uid=m.uid,
                        file_gid=m.gid,
                        file_mode=m.mode,
                    )
                    for m in spec.configs
                ]
                or None,
                mounts=list(spec.mounts) or None,
            ),
            networks_advanceds=[
                docker.ServiceTaskSpecNetworksAdvancedArgs(id=n, aliases=list(spec.aliases) or None) for n in spec.networks
            ]
            or None,
            placement=docker.ServiceTaskSpecPlacementArgs(constraints=placement) if placement else None,
            resources=docker.ServiceTaskSpecResourcesArgs(
                limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                    nano_cpus=nano_cpus(spec.resources.cpu_limit),
                    memory_bytes=mebibytes(spec.resources.memory_limit_mb),
                ),
                reservation=docker.ServiceTaskSpecResourcesReservationArgs(
                    nano_cpus=nano_cpus(spec.resources.cpu_reservation),
                    memory_bytes=mebibytes(spec.resources.memory_reservation_mb),
                ),
            ),
            # delay and window are explicit: the daemon echoes them back, so previews stay clean.
            restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
                condition=spec.restart_condition,
                delay=provider_duration("5s"),
                max_attempts=scope.restart_max_attempts,
                window=provider_duration("120s"),
            ),
            log_driver=docker.ServiceTaskSpecLogDriverArgs(
                name="json-file", options={"max-size": "10m", "max-file": "3"}
            ),
        ),
        # A task that fails its health check within `monitor` fails the update, and Swarm rolls back.
        update_config=docker.ServiceUpdateConfigArgs(
            parallelism=1, order=order, failure_action="rollback", monitor=provider_duration("60s"),
            delay=provider_duration("10s"), max_failure_ratio="0",
        ),
        rollback_config=docker.ServiceRollbackConfigArgs(
            parallelism=1, order=order, failure_action="pause", monitor=provider_duration("60s"),
            delay=provider_duration("5s"), max_failure_ratio="0",
        ),
        endpoint_spec=docker.ServiceEndpointSpecArgs(
            mode=endpoint_mode(spec),
            ports=[
                docker.ServiceEndpointSpecPortArgs(
                    target_port=target, published_port=published, publish_mode=spec.publish_mode, protocol="tcp"
                )
                for published, target in spec.ports
            ]
            or None,
        ),
        opts=named(opts),
    )


def swarm_secret(
    resource_name: str, value: pulumi.Input[str], stack: str, opts: pulumi.ResourceOptions
) -> docker.Secret:
    """A Docker secret holding `value` (standard base64 on the wire).

    No fixed name: Pulumi names it `<resource_name>-<suffix>`, so a new value creates a new secret,
    rolls only the services that mount it, then deletes the old one (Swarm secrets are immutable).
    """
    return docker.Secret(
        resource_name,
        data=pulumi.Output.secret(value).apply(b64),
        labels=[docker.SecretLabelArgs(label=STACK_LABEL, value=stack)],
        opts=opts,
    )


def swarm_config(
    resource_name: str, swarm_name: str, content: str, stack: str, opts: pulumi.ResourceOptions
) -> docker.ServiceConfig:
    """A Swarm config named after its content hash: an edit creates a new config and rolls only
    the services that mount it. `data_raw` keeps the text readable in `pulumi preview` diffs.

    delete_before_replace=False, explicitly: the Terraform bridge asks to delete a resource with a
    name it did not generate before creating its replacement, and Swarm refuses to delete a config
    a service still mounts (found on the real engine). The new name differs, so the new config can
    come first, then the services move to it, then the old one goes."""
    return docker.ServiceConfig(
        resource_name,
        name=f"{swarm_name}-{content_hash(content)}",
        data_raw=content,
        labels=[docker.ServiceConfigLabelArgs(label=STACK_LABEL, value=stack)],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=False)),
    )


def overlay_network(
    resource_name: str, name: str, stack: str, opts: pulumi.ResourceOptions, subnet: str | None = None, attachable: bool = True
) -> docker.Network:
    """An overlay network; attachable ones can be joined by services of other stacks (and `docker run`).
    A fixed `subnet` gets its gateway written out: the provider reads the gateway back, and the
    IPAM block forces replacement on any difference."""
    ipam = None
    if subnet:
        gateway = str(next(ipaddress.ip_network(subnet).hosts()))
        ipam = [docker.NetworkIpamConfigArgs(subnet=subnet, gateway=gateway)]
    return docker.Network(
        resource_name,
        name=name,
        driver="overlay",
        attachable=attachable,
        ipam_configs=ipam,
        labels=[docker.NetworkLabelArgs(label=STACK_LABEL, value=stack)],
        opts=named(opts),
    )


def data_volume(
    resource_name: str, name: str, stack: str, opts: pulumi.ResourceOptions, host_directory: str = ""
) -> docker.Volume:
    """A local volume; with `host_directory`, one bound to that existing directory (the compose stacks'
    data, adopted where it lies). Removing such a volume never removes the directory's content."""
    return docker.Volume(
        resource_name,
        name=name,
        driver="local",
        driver_opts={"type": "none", "o": "bind", "device": host_directory} if host_directory else None,
        labels=[docker.VolumeLabelArgs(label=STACK_LABEL, value=stack)],
        opts=opts,
    )


def cache_volume(resource_name: str, name: str, stack: str, opts: pulumi.ResourceOptions) -> docker.Volume:
    """A local volume for a cache (labelled so): never protected, deleted with its stack."""
    return docker.Volume(
        resource_name,
        name=name,
        driver="local",
        labels=[docker.VolumeLabelArgs(label=STACK_LABEL, value=stack), docker.VolumeLabelArgs(label=CACHE_LABEL, value="true")],
        opts=opts,
    )


def adopted_directory(data_directory: str, key: str) -> str:
    """The seeds' subdirectory of `data_directory` holding `key`'s data, or empty (a named volume)."""
    return f"{data_directory}/{key}" if data_directory else ""


def volume_mount(source: pulumi.Input[str], target: str, read_only: bool = False) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    return docker.ServiceTaskSpecContainerSpecMountArgs(type="volume", source=source, target=target, read_only=read_only)


def docker_api_mount(volume: pulumi.Input[str]) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    """A Docker API client's socket volume (components/docker_api.py), its socket at DOCKER_API_SOCKET. Read-only:
    connecting to a socket is no write."""
    return volume_mount(volume, DOCKER_API_DIR, read_only=True)


def mask_mount(target: str) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    """An empty tmpfs over `target`: hides what a bind of a host directory brings there (the host's /run, with
    its Docker and containerd sockets, under a bind of `/`)."""
    return docker.ServiceTaskSpecContainerSpecMountArgs(
        type="tmpfs", target=target, read_only=True,
        tmpfs_options=docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(size_bytes=1024 * 1024, mode=0o755),
    )


def bind_mount(source: str, target: str, read_only: bool = True) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    return docker.ServiceTaskSpecContainerSpecMountArgs(type="bind", source=source, target=target, read_only=read_only)
