"""Conventions every service and secret meets, checked as properties over everything the program
registers: each stack file, plus a run with every optional component switched on."""

from __future__ import annotations

import ast
import base64
import json
import re

import bcrypt

from components.swarm_values import is_pinned
from names import STACK_LABEL
from tests.conftest import ProgramRuns
from tests.harness import CONFIG, SECRET, ProgramRun, Resource, environment

DOCKER_SOCKET_ALLOWED = {"core_docker-api-proxy", "runner_github-runner"}
SOCKET_DIRECTORIES = {"/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run"}


def spec(service: Resource) -> dict:
    return service.inputs["taskSpec"]


def test_every_image_is_pinned(any_run: ProgramRun) -> None:
    for service in any_run.services:
        image = spec(service)["containerSpec"]["image"]
        assert is_pinned(image), f"{service.swarm_name}: {image}"


def test_every_service_has_a_health_check(any_run: ProgramRun) -> None:
    for service in any_run.services:
        check = spec(service)["containerSpec"]["healthcheck"]
        assert check["tests"][0] in ("CMD", "CMD-SHELL") and len(check["tests"]) >= 2, service.swarm_name
        assert check["retries"] >= 1 and check["interval"].endswith("s") and check["timeout"].endswith("s")


def test_every_service_has_limits_and_reservations(any_run: ProgramRun) -> None:
    for service in any_run.services:
        resources = spec(service)["resources"]
        limits, reservation = resources["limits"], resources["reservation"]
        # nanoCpus are 1e-9 CPU; at least 0.01 CPU and at most 8 CPUs means the unit is right.
        assert 10_000_000 <= reservation["nanoCpus"] <= limits["nanoCpus"] <= 8_000_000_000, service.swarm_name
        assert 16 * 2**20 <= reservation["memoryBytes"] <= limits["memoryBytes"] <= 16 * 2**30, service.swarm_name


def test_every_service_has_restart_update_and_rollback_policies(any_run: ProgramRun) -> None:
    for service in any_run.services:
        restart = spec(service)["restartPolicy"]
        assert restart["condition"] in ("on-failure", "any")
        # Unlimited restarts (0) only for services that exit by design after each unit of work.
        assert restart["maxAttempts"] >= 1 or restart["condition"] == "any", service.swarm_name
        assert restart["delay"] and restart["window"], "explicit values keep previews free of perpetual diffs"
        update, rollback = service.inputs["updateConfig"], service.inputs["rollbackConfig"]
        assert update["failureAction"] == "rollback" and update["monitor"]
        assert update["order"] == rollback["order"]


def test_stateful_services_stop_first_and_stateless_start_first(any_run: ProgramRun) -> None:
    for service in any_run.services:
        # A read-only volume (a Docker API client's socket) holds nothing the service writes.
        writes = any(m["type"] == "volume" and not m.get("readOnly") for m in spec(service)["containerSpec"].get("mounts", []))
        expected = "stop-first" if writes else "start-first"
        assert service.inputs["updateConfig"]["order"] == expected, service.swarm_name


def test_stateful_services_resolve_to_their_task_without_a_virtual_ip(any_run: ProgramRun) -> None:
    for service in any_run.services:
        stateful = service.inputs["updateConfig"]["order"] == "stop-first"
        assert service.inputs["endpointSpec"]["mode"] == ("dnsrr" if stateful else "vip"), service.swarm_name


def test_traefik_labels_only_on_routed_services_and_complete(any_run: ProgramRun) -> None:
    for service in any_run.services:
        labels = service.labels
        assert labels[STACK_LABEL]
        traefik = {k: v for k, v in labels.items() if k.startswith("traefik.")}
        if not traefik:
            continue
        assert traefik["traefik.enable"] == "true"
        routers = {k.split(".")[3] for k in traefik if k.startswith("traefik.http.routers.")}
        assert routers, f"{service.swarm_name} has Traefik labels but no router"
        for router in routers:
            host = r"Host\(`[a-z0-9.-]+`\)"
            hosts = rf"{host}( \|\| {host})*"
            rule = traefik[f"traefik.http.routers.{router}.rule"]
            assert re.fullmatch(rf"{hosts}|\({hosts}\) && !PathPrefix\(`/[a-z]+`\)", rule), rule
            assert traefik[f"traefik.http.routers.{router}.entrypoints"] == "web,tunnel"
            port = traefik.get(f"traefik.http.services.{router}.loadbalancer.server.port")
            assert port and port.isdigit(), f"{router}: Swarm services need an explicit port"
        network = traefik["traefik.swarm.network"]
        assert network in any_run.network_names(any_run.service("core_traefik")), f"{service.swarm_name}: Traefik is not on {network}"
        assert network in any_run.network_names(service), f"{service.swarm_name} is routed through {network} but not on it"


def test_no_secret_in_plain_env_args_or_labels(any_run: ProgramRun) -> None:
    assert any_run.secret_values
    for service in any_run.services:
        container = spec(service)["containerSpec"]
        visible = json.dumps(
            [container.get("env", {}), container.get("args", []), container.get("commands", []), service.inputs["labels"]]
        )
        for value in any_run.secret_values:
            assert value not in visible, f"{service.swarm_name} exposes a secret"
        for name, value in environment(container).items():
            if re.search(r"PASS|SECRET|TOKEN|KEY", name):
                assert name.endswith("_FILE") or value.startswith("/run/secrets/"), f"{service.swarm_name}: {name}"


def test_no_secret_in_a_plain_stack_output(any_run: ProgramRun) -> None:
    for name, (value, is_secret) in any_run.outputs.items():
        if is_secret:
            continue
        text = json.dumps(value)
        for secret in any_run.secret_values:
            assert secret not in text, f"stack output {name} holds a secret in plain text"


def test_secret_data_is_standard_base64_of_the_value(any_run: ProgramRun) -> None:
    secrets = any_run.of_type(SECRET)
    assert secrets
    for secret in secrets:
        data = secret.inputs["data"]
        decoded = base64.b64decode(data, validate=True).decode()
        assert base64.b64encode(decoded.encode()).decode() == data
        assert secret.has_secret_input, f"{secret.name}: data must stay a Pulumi secret"
    decoded_all = [base64.b64decode(s.inputs["data"]).decode() for s in secrets]
    for name, value in any_run.random_values.items():
        if "password" in name:
            assert any(value in text or _holds_bcrypt_of(text, value) for text in decoded_all), (
                f"{name} is never delivered as a Docker secret (nor its bcrypt hash)"
            )


def _holds_bcrypt_of(text: str, password: str) -> bool:
    hashes = re.findall(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}", text)
    return any(bcrypt.checkpw(password.encode(), h.encode()) for h in hashes)


def test_secrets_are_auto_named_and_configs_named_by_content(any_run: ProgramRun) -> None:
    for secret in any_run.of_type(SECRET):
        assert "name" not in secret.inputs, "a fixed secret name collides when the value changes"
    for config in any_run.of_type(CONFIG):
        assert re.fullmatch(r"[a-z0-9_-]+-[0-9a-f]{12}", config.inputs["name"]), config.inputs["name"]


def test_every_mounted_secret_and_config_exists(any_run: ProgramRun) -> None:
    for service in any_run.services:
        container = spec(service)["containerSpec"]
        for mount in container.get("secrets", []):
            assert any_run.by_id(mount["secretId"]).typ == SECRET
        for mount in container.get("configs", []):
            assert any_run.by_id(mount["configId"]).typ == CONFIG


def test_only_the_socket_proxy_and_opted_in_runners_reach_the_docker_socket(any_run: ProgramRun) -> None:
    """Read-only or not, the socket is root on the node; a bind of `/` brings it along unless /run is masked."""
    for service in any_run.services:
        if service.swarm_name in DOCKER_SOCKET_ALLOWED:
            continue
        mounts = spec(service)["containerSpec"].get("mounts", [])
        masked = {m["target"] for m in mounts if m["type"] == "tmpfs"}
        for mount in (m for m in mounts if m["type"] == "bind"):
            assert mount["source"] not in SOCKET_DIRECTORIES, (service.swarm_name, mount)
            if mount["source"] == "/":
                assert f"{mount['target']}/run" in masked, (service.swarm_name, mount)


def test_service_names_are_unique_and_stack_prefixed(any_run: ProgramRun) -> None:
    names = [s.swarm_name for s in any_run.services]
    assert len(names) == len(set(names))
    for service in any_run.services:
        labels = service.labels
        assert service.swarm_name.startswith(labels[STACK_LABEL] + "_")


def test_published_ports_are_unique(any_run: ProgramRun) -> None:
    ports = [
        p["publishedPort"]
        for s in any_run.services
        for p in (s.inputs.get("endpointSpec") or {}).get("ports", [])
    ]
    assert len(ports) == len(set(ports))



def test_placement_for_many_nodes() -> None:
    """Stateful services follow the configured node labels, Traefik stays on managers, runners on
    labelled CI workers, node agents (and the Docker API proxy they read through) run everywhere."""
    from tests.conftest import FULL, FULL_SECRETS
    from tests.harness import run_program

    label = "node.labels.nextcandle.data==true"
    run = run_program("platform", {**FULL, "statefulPlacement": label}, FULL_SECRETS)
    dev = run_program("dev", {"statefulPlacement": label})
    assert spec(dev.service("dev_postgres"))["placement"]["constraints"] == [label]
    for service in run.services:
        task = spec(service)
        constraints = (task.get("placement") or {}).get("constraints", [])
        stateful = any(m["type"] == "volume" for m in task["containerSpec"].get("mounts", []))
        if service.inputs["mode"].get("global"):
            assert constraints == ["node.labels.nextcandle.stopped!=true"], f"{service.swarm_name} must run on every node"
        elif service.swarm_name == "core_traefik":
            assert constraints == ["node.role==manager"]
        elif service.swarm_name == "runner_github-runner":
            assert constraints == ["node.role==worker", "node.labels.nextcandle.ci==true"], "CI jobs never on a manager"
        elif stateful:
            assert constraints == [label], service.swarm_name
    assert {s.swarm_name for s in run.services if s.inputs["mode"].get("global")} == {
        "core_docker-api-proxy", "shared_alloy", "shared_cadvisor", "shared_node-exporter"
    }


def test_components_own_their_resources(any_run: ProgramRun) -> None:
    """Every resource is a child of one of our components, whose type token is
    nextcandle:<module>:<Type> with the module under components/."""
    from tests.harness import ROOT

    components = [r for r in any_run.resources if r.typ.startswith("nextcandle:")]
    expected = {"nextcandle:core:CoreStack"} if any_run.stack == "platform" else {"nextcandle:env_database:EnvDatabaseStack"}
    assert {r.typ for r in components} >= expected
    for component in components:
        _, module, kind = component.typ.split(":")
        source = ROOT / "components" / f"{module}.py"
        assert source.is_file() and f"class {kind}(pulumi.ComponentResource)" in source.read_text()
        assert component.parent.endswith("pulumi:pulumi:Stack::nextcandle-" + any_run.stack)
    for resource in any_run.resources:
        if not resource.typ.startswith("nextcandle:") and resource.typ != "pulumi:pulumi:StackReference":
            assert "$nextcandle:" in resource.parent, f"{resource.typ} {resource.name} is not inside a component"


def _component_modules() -> dict[str, ast.Module]:
    from tests.harness import ROOT

    modules = {}
    for path in sorted((ROOT / "components").glob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.ClassDef) and any("ComponentResource" in ast.unparse(b) for b in n.bases) for n in tree.body):
            modules[path.stem] = tree
    return modules


def test_components_are_siblings() -> None:
    """No component imports another: what they share is a name in names.py or a helper in swarm.py."""
    components = _component_modules()
    assert set(components) == {"app_secrets", "backup", "core", "docker_api", "env_database", "observability", "runner", "shared_services"}
    for module, tree in components.items():
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {f"components.{other}" for other in components} & imported, module


def test_no_component_constructor_is_long() -> None:
    """One method per service: no constructor over 60 lines."""
    for module, tree in _component_modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length <= 60, f"{module}: __init__ is {length} lines"


# Services that answer without a login of their own (or hold data behind an API anyone on their
# network could call): never on a network that applications join.
NO_LOGIN = {"shared_seaweedfs", "shared_loki", "shared_alertmanager", "shared_alloy"}
APPLICATION_NETWORKS = {"traefik-public", "monitoring"}


def test_nothing_without_a_login_shares_a_network_with_applications(any_run: ProgramRun) -> None:
    for service in any_run.services:
        if service.swarm_name in NO_LOGIN:
            assert not any_run.network_names(service) & APPLICATION_NETWORKS, service.swarm_name


def test_n8n_and_cloudflareds_metrics_share_a_network_only_with_traefik_and_prometheus(runs: ProgramRuns) -> None:
    """n8n's basic auth is at Traefik, and cloudflared's metrics port also serves its configuration and
    pprof: nothing but Traefik and Prometheus may reach either around that."""
    run = runs.full
    for name, allowed in (("shared_n8n", {"core_traefik", "shared_prometheus"}), ("core_cloudflared", {"core_traefik", "shared_prometheus"})):
        networks = run.network_names(run.service(name))
        neighbours = {s.swarm_name for s in run.services if s.swarm_name != name and run.network_names(s) & networks}
        assert neighbours == allowed, name
    private = [n for n in run.of_type("docker:index/network:Network") if n.inputs["name"] in ("core_n8n", "core_tunnel_metrics")]
    assert len(private) == 2 and not any(n.inputs["attachable"] for n in private), "no `docker run` or other stack joins them"


def test_only_the_object_store_and_its_clients_are_on_the_storage_network(runs: ProgramRuns) -> None:
    on_storage = {
        s.swarm_name for run in (runs.full, runs("dev"), runs("stg"), runs("prod")) for s in run.services
        if "storage" in run.network_names(s)
    }
    assert on_storage == {
        "shared_seaweedfs", "core_traefik", "shared_prometheus", "shared_backup",
        "dev_postgres-backup", "stg_postgres-backup", "prod_postgres-backup",
    }
