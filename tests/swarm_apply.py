"""Creates what a mocked program run registers on a real swarm, through the Docker Engine API.

pulumi-docker maps its resources field by field onto the Engine API (kreuzwerker's provider); this
does the same mapping for the fields we use, so the engine itself validates names, references,
mounts, resources, health checks, update policies and published ports. Images cannot be pulled
here, so tasks are rejected later; creating the objects is what is checked.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.harness import CONFIG, NETWORK, SECRET, VOLUME, ProgramRun

_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def nanoseconds(duration: str) -> int:
    """A Go duration ("1m30s", "500ms") in nanoseconds, as the Engine API wants them."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return int(sum(float(n) * _UNITS[u] for n, u in parts))


def _labels(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {item["label"]: item["value"] for item in items or []}


def _policy(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "Parallelism": int(config["parallelism"]),
        "Delay": nanoseconds(config["delay"]),
        "FailureAction": config["failureAction"],
        "Monitor": nanoseconds(config["monitor"]),
        "MaxFailureRatio": float(config["maxFailureRatio"]),
        "Order": config["order"],
    }


class SwarmApplier:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.api = client.api
        self.ids: dict[str, str] = {}  # mock id -> real id

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.api._result(self.api._post_json(self.api._url(path), data=body), True)
        return result

    def network_id(self, mock_id: str) -> str:
        if mock_id in self.ids:
            return self.ids[mock_id]
        # A network another stack owns, looked up by name (the mocks answer "<name>-existing-id").
        name = mock_id.removesuffix("-existing-id")
        (found,) = self.api.networks(names=[name])
        return str(found["Id"])

    def apply(self, run: ProgramRun) -> list[str]:
        """Create the run's networks, volumes, secrets, configs and services; return the service ids."""
        from tests.harness import mock_id

        for resource in run.of_type(NETWORK):
            inputs = resource.inputs
            created = self.api.create_network(
                inputs["name"], driver=inputs["driver"], attachable=inputs["attachable"], labels=_labels(inputs.get("labels"))
            )
            self.ids[mock_id(resource.typ, resource.name)] = created["Id"]
        for resource in run.of_type(VOLUME):
            self.api.create_volume(resource.inputs["name"], driver=resource.inputs["driver"], labels=_labels(resource.inputs.get("labels")))
        secret_names = {
            mount["secretId"]: mount["secretName"]
            for service in run.services
            for mount in service.inputs["taskSpec"]["containerSpec"].get("secrets", [])
        }
        for resource in run.of_type(SECRET):
            key = mock_id(resource.typ, resource.name)
            if key not in secret_names:
                continue
            data = base64.b64decode(resource.inputs["data"])
            self.ids[key] = self.api.create_secret(secret_names[key], data, labels=_labels(resource.inputs.get("labels")))["ID"]
        for resource in run.of_type(CONFIG):
            key = mock_id(resource.typ, resource.name)
            data = resource.inputs["dataRaw"].encode()
            self.ids[key] = self.api.create_config(resource.inputs["name"], data, labels=_labels(resource.inputs.get("labels")))["ID"]
        return [self._post("/services/create", self.service_spec(service.inputs))["ID"] for service in run.services]

    def service_spec(self, inputs: dict[str, Any]) -> dict[str, Any]:
        task = inputs["taskSpec"]
        container = task["containerSpec"]
        check = container["healthcheck"]
        spec_container: dict[str, Any] = {
            "Image": container["image"],
            "Labels": _labels(container.get("labels")),
            "Env": [f"{k}={v}" for k, v in (container.get("env") or {}).items()],
            "StopGracePeriod": nanoseconds(container["stopGracePeriod"]),
            "Healthcheck": {
                "Test": check["tests"],
                "Interval": nanoseconds(check["interval"]),
                "Timeout": nanoseconds(check["timeout"]),
                "Retries": int(check["retries"]),
                "StartPeriod": nanoseconds(check["startPeriod"]),
            },
            "Secrets": [
                {"File": {"Name": m["fileName"], "UID": m["fileUid"], "GID": m["fileGid"], "Mode": int(m["fileMode"])},
                 "SecretID": self.ids[m["secretId"]], "SecretName": m["secretName"]}
                for m in container.get("secrets", [])
            ],
            "Configs": [
                {"File": {"Name": m["fileName"], "UID": m["fileUid"], "GID": m["fileGid"], "Mode": int(m["fileMode"])},
                 "ConfigID": self.ids[m["configId"]], "ConfigName": m["configName"]}
                for m in container.get("configs", [])
            ],
            "Mounts": [self._mount(m) for m in container.get("mounts", [])],
        }
        for key, engine_key in (("args", "Args"), ("commands", "Command"), ("hostname", "Hostname"), ("user", "User")):
            if container.get(key):
                spec_container[engine_key] = container[key]
        resources = task["resources"]
        template: dict[str, Any] = {
            "ContainerSpec": spec_container,
            "Resources": {
                "Limits": {"NanoCPUs": int(resources["limits"]["nanoCpus"]), "MemoryBytes": int(resources["limits"]["memoryBytes"])},
                "Reservations": {"NanoCPUs": int(resources["reservation"]["nanoCpus"]), "MemoryBytes": int(resources["reservation"]["memoryBytes"])},
            },
            "RestartPolicy": {
                "Condition": task["restartPolicy"]["condition"],
                "Delay": nanoseconds(task["restartPolicy"]["delay"]),
                "MaxAttempts": int(task["restartPolicy"]["maxAttempts"]),
                "Window": nanoseconds(task["restartPolicy"]["window"]),
            },
            "Placement": {"Constraints": (task.get("placement") or {}).get("constraints", [])},
            "Networks": [{"Target": self.network_id(n["id"])} for n in task.get("networksAdvanceds", [])],
            "LogDriver": {"Name": task["logDriver"]["name"], "Options": task["logDriver"]["options"]},
        }
        mode = inputs["mode"]
        return {
            "Name": inputs["name"],
            "Labels": _labels(inputs.get("labels")),
            "TaskTemplate": template,
            "Mode": {"Global": {}} if mode.get("global") else {"Replicated": {"Replicas": int(mode["replicated"]["replicas"])}},
            "UpdateConfig": _policy(inputs["updateConfig"]),
            "RollbackConfig": _policy(inputs["rollbackConfig"]),
            "EndpointSpec": {
                "Mode": inputs["endpointSpec"]["mode"],
                "Ports": [
                    {"Protocol": p["protocol"], "TargetPort": int(p["targetPort"]), "PublishedPort": int(p["publishedPort"]),
                     "PublishMode": p["publishMode"]}
                    for p in inputs["endpointSpec"].get("ports", [])
                ],
            },
        }

    @staticmethod
    def _mount(mount: dict[str, Any]) -> dict[str, Any]:
        engine: dict[str, Any] = {"Type": mount["type"], "Target": mount["target"], "ReadOnly": bool(mount.get("readOnly", False))}
        if mount.get("source"):
            engine["Source"] = mount["source"]
        if mount.get("tmpfsOptions"):
            engine["TmpfsOptions"] = {"SizeBytes": int(mount["tmpfsOptions"]["sizeBytes"]), "Mode": int(mount["tmpfsOptions"]["mode"])}
        return engine
