"""Runs __main__.py under Pulumi mocks, the way Pulumi documents unit tests, and records every
registered resource with its inputs (camelCase engine names, secrets unwrapped) and options.

Mocked providers return realistic, deterministic outputs: a random value is derived from its
resource name, so two runs of the program give the same values and can be compared.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import runpy
import socket
import string
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from names import (  # noqa: E402
    ENVIRONMENTS,
    MONITORING_NETWORK,
    PROJECT,
    PUBLIC_NETWORK,
    RUNNER_NETWORK,
    STORAGE_NETWORK,
    PlatformOutputs,
    declared_environment,
)

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
RANDOM_STRING = "random:index/randomString:RandomString"
RANDOM_BYTES = "random:index/randomBytes:RandomBytes"
TUNNEL = "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared"
TUNNEL_CONFIG = "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig"
DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
REFERENCED_ID_SUFFIX = "-platform-id"
def mock_env_s3_keys(env: str) -> tuple[str, str]:
    """The keys of an environment's own S3 identity, as the platform exports them under mocks."""
    return f"{env.upper()}S3ACCESSKEY".ljust(20, "0"), f"{env}-s3-secret-key-0123456789abcdefghijklmnop"


MOCK_PLATFORM_S3_ACCESS_KEY = "PLATFORMS3ACCESSKEY0"
MOCK_PLATFORM_S3_SECRET_KEY = "platform-s3-secret-key-0123456789abcdefghij"
PLATFORM_OUTPUTS = {
    PlatformOutputs.PUBLIC_NETWORK_ID: PUBLIC_NETWORK + REFERENCED_ID_SUFFIX,
    PlatformOutputs.MONITORING_NETWORK_ID: MONITORING_NETWORK + REFERENCED_ID_SUFFIX,
    PlatformOutputs.STORAGE_NETWORK_ID: STORAGE_NETWORK + REFERENCED_ID_SUFFIX,
    PlatformOutputs.RUNNER_NETWORK_ID: RUNNER_NETWORK + REFERENCED_ID_SUFFIX,
    PlatformOutputs.OBJECT_STORAGE_ENDPOINT: "http://object-storage:8333",
    PlatformOutputs.S3_ACCESS_KEY: MOCK_PLATFORM_S3_ACCESS_KEY,
    PlatformOutputs.S3_SECRET_KEY: MOCK_PLATFORM_S3_SECRET_KEY,
    **{PlatformOutputs.env_s3_access_key(env): mock_env_s3_keys(env)[0] for env in ENVIRONMENTS},
    **{PlatformOutputs.env_s3_secret_key(env): mock_env_s3_keys(env)[1] for env in ENVIRONMENTS},
}
"""What the platform stack exports, as the environments' StackReference reads it under mocks."""
BCRYPT_ALPHABET = "./" + string.ascii_uppercase + string.ascii_lowercase + string.digits
MOCK_TUNNEL_TOKEN = "mock-tunnel-token-from-cloudflare-api"


def environment(container: Mapping[str, Any]) -> dict[str, str]:
    """A container spec's environment: its env and the `env NAME=VALUE` assignments of its command."""
    return declared_environment(container.get("env"), container.get("commands"))


def unwrap(value: Any) -> tuple[Any, bool]:
    """Strip Pulumi's secret wrappers; also say whether any part was secret."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            inner, _ = unwrap(value["value"])
            return inner, True
        found = False
        plain = {}
        for key, item in value.items():
            plain[key], secret = unwrap(item)
            found |= secret
        return plain, found
    if isinstance(value, list):
        items = [unwrap(item) for item in value]
        return [item for item, _ in items], any(secret for _, secret in items)
    return value, False


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mock_id(typ: str, name: str) -> str:
    """Physical id the mocks give a resource: its type and name (names repeat across types)."""
    return f"{typ.rsplit(':', 1)[-1].lower()}:{name}"


def _digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def _alnum(name: str, length: int, alphabet: str) -> str:
    seed = _digest(name)
    return "".join(alphabet[(seed[i % len(seed)] + i) % len(alphabet)] for i in range(length))


@dataclass
class Resource:
    typ: str
    name: str
    inputs: dict[str, Any]
    has_secret_input: bool
    protect: bool = False
    retain_on_delete: bool = False
    parent: str = ""
    """URN of the parent resource."""

    @property
    def swarm_name(self) -> str:
        return str(self.inputs.get("name", ""))

    @property
    def labels(self) -> dict[str, str]:
        """Resource labels (a list of {label, value} on the wire) as a dict."""
        return {item["label"]: item["value"] for item in self.inputs.get("labels") or []}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Resource] = []
        self.random_values: dict[str, str] = {}
        """The secret random values (RandomPassword, RandomBytes) by resource name."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        inputs, has_secret = unwrap(dict(args.inputs))
        self.resources.append(Resource(args.typ, args.name, inputs, has_secret))
        outputs = dict(args.inputs)
        if args.typ == STACK_REFERENCE:
            secret = [name for name in PLATFORM_OUTPUTS if name.startswith("s3_")]
            return f"{inputs['name']}", {"name": inputs["name"], "outputs": PLATFORM_OUTPUTS, "secretOutputNames": secret}
        if args.typ == RANDOM_PASSWORD:
            value = _alnum(args.name, int(inputs["length"]), string.ascii_letters + string.digits)
            self.random_values[args.name] = value
            outputs["result"] = value
            # Deterministic salt: the real provider keeps the hash in state, so it is stable across runs.
            salt = "$2b$04$" + _alnum(args.name + "salt", 21, BCRYPT_ALPHABET) + "."
            outputs["bcryptHash"] = bcrypt.hashpw(value.encode(), salt.encode()).decode()
        elif args.typ == RANDOM_STRING:
            outputs["result"] = _alnum(args.name, int(inputs["length"]), string.ascii_lowercase)  # not secret
        elif args.typ == RANDOM_BYTES:
            raw = _digest(args.name)[: int(inputs["length"])]
            outputs["base64"] = base64.b64encode(raw).decode()
            outputs["hex"] = raw.hex()
            self.random_values[args.name] = outputs["base64"]
        elif args.typ in (SECRET, CONFIG, NETWORK, VOLUME) and "name" not in outputs:
            outputs["name"] = f"{args.name}-{_digest(args.name).hex()[:7]}"  # Pulumi's auto-naming
        return mock_id(args.typ, args.name), outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        if args.token.startswith("cloudflare:index/getZeroTrustTunnelCloudflaredToken"):
            return {**args.args, "token": MOCK_TUNNEL_TOKEN}, []
        if args.token == "docker:index/getNetwork:getNetwork":
            return {**args.args, "id": f"{args.args['name']}-existing-id", "driver": "overlay", "scope": "swarm"}, []
        raise NotImplementedError(f"no mock for invoke {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Also records the resource options mocks do not see (protect, retainOnDelete)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.options: dict[tuple[str, str], tuple[bool, bool, str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.options[(request.type, request.name)] = (bool(request.protect), bool(request.retainOnDelete), request.parent)
        return super().RegisterResource(request)


@dataclass
class ProgramRun:
    stack: str
    resources: list[Resource]
    outputs: dict[str, tuple[Any, bool]]
    """Stack outputs: name -> (value, is_secret)."""
    random_values: dict[str, str]
    config_secrets: dict[str, str] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, typ: str, name: str) -> Resource:
        (found,) = [r for r in self.resources if r.typ == typ and r.name == name]
        return found

    @property
    def services(self) -> list[Resource]:
        return self.of_type(SERVICE)

    def service(self, swarm_name: str) -> Resource:
        (found,) = [r for r in self.services if r.swarm_name == swarm_name]
        return found

    def by_id(self, resource_id: str) -> Resource:
        (found,) = [r for r in self.resources if mock_id(r.typ, r.name) == resource_id]
        return found

    def network_names(self, service: Resource) -> set[str]:
        """Names of the networks a service joins: its own stack's, or the platform's read by reference."""
        names = set()
        for network in service.inputs["taskSpec"].get("networksAdvanceds", []):
            network_id = network["id"]
            referenced = network_id.endswith(REFERENCED_ID_SUFFIX)
            names.add(network_id.removesuffix(REFERENCED_ID_SUFFIX) if referenced else self.by_id(network_id).inputs["name"])
        return names

    def mounted_secret(self, service: Resource, file_name: str) -> str:
        """The plain text of the Docker secret a service mounts at `file_name`."""
        (mount,) = [s for s in service.inputs["taskSpec"]["containerSpec"]["secrets"] if s["fileName"] == file_name]
        return base64.b64decode(self.by_id(mount["secretId"]).inputs["data"], validate=True).decode()

    def mounted_config(self, service: Resource, file_name: str) -> str:
        (mount,) = [c for c in service.inputs["taskSpec"]["containerSpec"]["configs"] if c["fileName"] == file_name]
        return str(self.by_id(mount["configId"]).inputs["dataRaw"])

    @property
    def secret_values(self) -> set[str]:
        """Every value that must never appear in plain text."""
        return {v for v in (*self.random_values.values(), *self.config_secrets.values()) if len(v) >= 8}


def project_defaults() -> dict[str, str]:
    """The defaults of Pulumi.yaml's config block: the engine hands them to the program as values."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    return {key: str(spec["default"]).lower() if isinstance(spec["default"], bool) else str(spec["default"])
            for key, spec in project["config"].items() if "default" in spec}


def stack_config(stack: str) -> dict[str, str]:
    """The stack file's plain values for this project, without the namespace (a secret a deployment in
    this checkout set is encrypted with its passphrase, not the tests')."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    data = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    prefix = f"{PROJECT}:"
    return {k[len(prefix):]: str(v) for k, v in (data.get("config") or {}).items()
            if k.startswith(prefix) and not isinstance(v, dict)}


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_program(
    stack: str,
    config: Mapping[str, str | None] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> ProgramRun:
    """Run __main__.py for `stack` with its stack file, `config` overrides (None removes a key) and
    secret config values, as `pulumi up` would."""
    values: dict[str, str | None] = {**project_defaults(), **stack_config(stack), **(config or {})}
    plain = {f"{PROJECT}:{k}": v for k, v in values.items() if v is not None}
    secret_values = dict(secrets or {})
    plain.update({f"{PROJECT}:{k}": v for k, v in secret_values.items()})
    env = {
        "PULUMI_CONFIG": json.dumps(plain),
        "PULUMI_CONFIG_SECRET_KEYS": json.dumps([f"{PROJECT}:{k}" for k in secret_values]),
    }
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    outputs: dict[str, tuple[Any, bool]] = {}
    with _environment(env):
        pulumi_settings.ROOT.set(None)  # a fresh root stack, so exports do not leak between runs
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)

        @pulumi.runtime.test
        def evaluate() -> None:
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

        evaluate()

        root = pulumi_settings.get_root_resource()
        exported: dict[str, Any] = dict(getattr(root, "outputs", {}))

        async def resolve() -> None:
            for name, value in exported.items():
                output = pulumi.Output.from_input(value)
                outputs[name] = (await output.future(), bool(await output.is_secret()))

        @pulumi.runtime.test
        def collect() -> Any:
            return pulumi.Output.from_input(resolve_future())

        def resolve_future() -> Any:
            import asyncio

            return asyncio.ensure_future(resolve())

        collect()

    for resource in mocks.resources:
        resource.protect, resource.retain_on_delete, resource.parent = monitor.options.get(
            (resource.typ, resource.name), (False, False, "")
        )
    platform_secrets = {"platform_s3_secret_key": MOCK_PLATFORM_S3_SECRET_KEY, "env_s3_secret_key": mock_env_s3_keys(stack)[1]} \
        if stack != "platform" else {}
    return ProgramRun(stack, mocks.resources, outputs, mocks.random_values, {**secret_values, **platform_secrets})


def changed_resources(before: ProgramRun, after: ProgramRun) -> set[tuple[str, str]]:
    """Resources an update would touch: inputs that differ, plus services mounting a secret or config
    that changes (Swarm replaces it under a new name, so the service is updated to the new one)."""
    old = {(r.typ, r.name): r.inputs for r in before.resources}
    new = {(r.typ, r.name): r.inputs for r in after.resources}
    changed = {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
    replaced_ids = {mock_id(typ, name) for typ, name in changed if typ in (SECRET, CONFIG)}
    for service in after.services:
        container = service.inputs["taskSpec"]["containerSpec"]
        mounted = {m["secretId"] for m in container.get("secrets", [])} | {m["configId"] for m in container.get("configs", [])}
        if mounted & replaced_ids:
            changed.add((service.typ, service.name))
    return changed
