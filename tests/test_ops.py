"""The operator command: backend resolution, preflight, status, ordering, progress and error output.
Preflight and status also run against a real Docker engine and swarm."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest

from ops import cli
from ops.backend import LOCAL_STATE, Backend, OpsError, s3_backend_url
from ops.deploy import Progress, lifecycle, plan, require_platform, run, stacks_for
from ops.preflight import check_backend, check_docker, check_swarm
from ops.status import ServiceStatus, State, collect
from tests.dockerd import LOCAL_IMAGE
from tests.harness import ROOT


def test_local_file_backend_by_default() -> None:
    assert Backend.resolve(environ={}).url == f"file://{LOCAL_STATE}"


def test_s3_backend_for_minio_or_seaweedfs() -> None:
    url = s3_backend_url("pulumi-state", "http://s3.internal:8333", "us-east-1")
    assert url == "s3://pulumi-state?endpoint=s3.internal%3A8333&disableSSL=true&s3ForcePathStyle=true&region=us-east-1"
    env = {"NEXTCANDLE_S3_BUCKET": "state", "NEXTCANDLE_S3_ENDPOINT": "https://s3.nextcandle.io"}
    assert Backend.resolve(environ=env).url == "s3://state?endpoint=s3.nextcandle.io&s3ForcePathStyle=true&region=us-east-1"
    assert Backend.resolve("s3://x", environ=env).url == "s3://x"
    assert Backend.resolve(environ={"PULUMI_BACKEND_URL": "s3://y"}).url == "s3://y"
    with pytest.raises(OpsError):
        s3_backend_url("")


def test_backend_problems_name_the_fix() -> None:
    problems = Backend("s3://state").problems(environ={})
    assert any("AWS_ACCESS_KEY_ID" in p for p in problems)
    assert any("PULUMI_CONFIG_PASSPHRASE" in p for p in problems)
    assert Backend("file:///x").problems(environ={"PULUMI_CONFIG_PASSPHRASE": ""}) == []


def test_an_empty_passphrase_only_for_a_local_dev_deployment() -> None:
    empty = {"PULUMI_CONFIG_PASSPHRASE": "", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    assert Backend("file:///x").problems(environ=empty, stacks=["platform", "dev"]) == []
    (local_prod,) = Backend("file:///x").problems(environ=empty, stacks=["platform", "prod"])
    assert "prod's passwords" in local_prod and "export a long PULUMI_CONFIG_PASSPHRASE" in local_prod
    (shared,) = Backend("s3://state").problems(environ=empty, stacks=["dev"])
    assert "shared state's passwords" in shared
    assert Backend("s3://state").problems(environ={**empty, "PULUMI_CONFIG_PASSPHRASE": "long enough"}, stacks=["prod"]) == []


def test_the_platform_goes_up_first_and_down_last() -> None:
    assert stacks_for("all") == ["platform", "dev", "stg", "prod"]
    assert stacks_for("all", destroying=True) == ["prod", "stg", "dev", "platform"]
    assert stacks_for("stg") == ["stg"]


def test_an_environment_brings_the_platform_up_first_and_the_platform_outlives_them() -> None:
    backend = Backend("file:///nowhere")
    fresh: dict[str, int] = {}
    assert plan("up", "dev", backend, lambda _: fresh) == ["platform", "dev"]
    assert plan("up", "dev", backend, lambda _: {"platform": 60}) == ["dev"]
    assert plan("preview", "prod", backend, lambda _: fresh) == ["prod"]
    with pytest.raises(OpsError, match="the platform stack is not deployed yet: run python -m ops up platform"):
        require_platform("prod", backend, lambda _: fresh)  # said when prod's preview fails
    require_platform("prod", backend, lambda _: {"platform": 60})
    assert plan("destroy", "dev", backend, lambda _: {"platform": 60, "dev": 30}) == ["dev"]
    with pytest.raises(OpsError, match="the platform is still referenced by dev, prod; nothing was destroyed"):
        plan("destroy", "platform", backend, lambda _: {"platform": 60, "dev": 30, "prod": 30})
    assert plan("destroy", "platform", backend, lambda _: {"platform": 60}) == ["platform"]


def test_everything_after_pulumi_goes_to_the_pulumi_cli_as_it_is() -> None:
    from ops.cli import parse

    assert parse(["pulumi", "stack", "output", "-s", "dev", "--show-secrets"]).arguments == ["stack", "output", "-s", "dev", "--show-secrets"]
    assert parse(["--backend", "s3://state", "pulumi", "--version"]).arguments == ["--version"]
    assert parse(["--backend", "s3://state", "pulumi", "--version"]).backend == "s3://state"
    assert parse(["status", "dev"]).command == "status"


def test_drift_checks_every_deployed_stack_and_exits_2_on_drift() -> None:
    from types import SimpleNamespace

    from ops.deploy import drift

    summaries = {"platform": {"same": 60}, "dev": {"same": 29, "update": 1}, "prod": {"same": 30}}
    stacks = {name: SimpleNamespace(preview=lambda name=name, **_: SimpleNamespace(change_summary=summaries[name])) for name in summaries}
    out = io.StringIO()
    assert drift(Backend("file:///nowhere"), out, lambda _: {"platform": 60, "dev": 30, "prod": 30}, lambda name, _: stacks[name]) == 2
    assert "drift dev: 1 to update (python -m ops up dev --refresh puts it back)" in out.getvalue()
    assert "drift platform" not in out.getvalue() and "drift prod" not in out.getvalue()
    summaries["dev"] = {"same": 30}
    assert drift(Backend("file:///nowhere"), io.StringIO(), lambda _: {"platform": 60, "dev": 30}, lambda name, _: stacks[name]) == 0

    def broken(**_: object) -> None:
        raise RuntimeError("error: the swarm did not answer")

    stacks["dev"] = SimpleNamespace(preview=broken)
    out = io.StringIO()
    assert drift(Backend("file:///nowhere"), out, lambda _: {"platform": 60, "dev": 30}, lambda name, _: stacks[name]) == 1
    assert "drift dev: not checked: error: the swarm did not answer" in out.getvalue()


def test_stop_all_stops_the_environments_before_the_platform_and_start_all_the_reverse() -> None:
    from ops.deploy import lifecycle_targets

    backend = Backend("file:///nowhere")
    live = {"platform": 60, "prod": 30, "dev": 30}
    assert lifecycle_targets("stop", "all", backend, lambda _: live) == ["prod", "dev", "platform"]
    assert lifecycle_targets("start", "all", backend, lambda _: live) == ["platform", "dev", "prod"]
    assert lifecycle_targets("stop", "stg", backend, lambda _: live) == ["stg"]
    assert lifecycle_targets("start", "all", backend, lambda _: {}) == []


def test_stop_and_start_change_one_setting_of_one_stack() -> None:
    assert lifecycle("stop", "prod") == ("prod", "nextcandle:stopped")
    assert lifecycle("start", "runner") == ("platform", "nextcandle:runnersStopped")
    with pytest.raises(OpsError, match="choose one of platform, dev, stg, prod, runner"):
        lifecycle("stop", "shared")


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (ServiceStatus("a", "dev", 1, 1, 1, 0, 0, ""), State.OK),
        (ServiceStatus("a", "dev", 2, 1, 1, 0, 0, ""), State.STARTING),
        (ServiceStatus("a", "dev", 1, 1, 0, 0, 1, ""), State.STARTING),
        (ServiceStatus("a", "dev", 1, 1, 0, 1, 0, ""), State.DEGRADED),
        (ServiceStatus("a", "dev", 1, 0, 0, 0, 0, "No such image"), State.FAILED),
        (ServiceStatus("a", "dev", 0, 0, 0, 0, 0, ""), State.OK),
        (ServiceStatus("a", "dev", 0, 0, 0, 0, 0, "", stopped=True), State.STOPPED),
        (ServiceStatus("a", "shared", 0, 0, 0, 0, 0, "No such image", global_mode=True), State.FAILED),
        (ServiceStatus("a", "shared", 0, 0, 0, 0, 0, "", global_mode=True), State.STARTING),
        (ServiceStatus("a", "shared", 0, 0, 0, 0, 0, "", stopped=True, global_mode=True), State.STOPPED),
    ],
)
def test_service_state(status: ServiceStatus, state: State) -> None:
    assert status.state is state


def test_status_table_and_result() -> None:
    out = io.StringIO()
    ok = cli.print_status([ServiceStatus("dev_postgres", "dev", 1, 1, 1, 0, 0, "")], out)
    assert ok and "dev_postgres" in out.getvalue() and "1/1" in out.getvalue() and "1/1 services ok" in out.getvalue()
    out = io.StringIO()
    assert not cli.print_status([ServiceStatus("dev_redis", "dev", 1, 0, 0, 0, 0, "No such image: redis")], out)
    assert "failed  (No such image: redis)" in out.getvalue()
    assert "\033[" not in out.getvalue(), "no colour codes when not a terminal"
    out = io.StringIO()
    grouped = [ServiceStatus("core_traefik", "core", 1, 1, 1, 0, 0, ""), ServiceStatus("dev_redis", "dev", 0, 0, 0, 0, 0, "", stopped=True)]
    assert cli.print_status(grouped, out), "a stopped service is not a failure"
    text = out.getvalue()
    assert text.index("stack platform") < text.index("core_traefik") < text.index("stack dev") < text.index("dev_redis")
    assert "stopped" in text and "1/2 services ok, 1 stopped" in text


def test_progress_prints_one_line_per_step_and_a_summary() -> None:
    out = io.StringIO()
    progress = Progress(out)

    def pre(op: str, urn: str, typ: str) -> Any:
        meta = SimpleNamespace(op=SimpleNamespace(value=op), urn=urn, type=typ)
        return SimpleNamespace(resource_pre_event=SimpleNamespace(metadata=meta), diagnostic_event=None, summary_event=None)

    progress(pre("create", "urn:pulumi:dev::nextcandle::docker:index/service:Service::dev-postgres", "docker:index/service:Service"))
    progress(pre("same", "urn:x::y", "docker:index/network:Network"))
    progress(SimpleNamespace(resource_pre_event=None, diagnostic_event=None,
                             summary_event=SimpleNamespace(resource_changes={"create": 1, "same": 1}, duration_seconds=3)))
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["[", "1]", "create", "Service", "dev-postgres"]
    assert lines[1] == "  done in 3s: 1 create, 1 same"


def test_run_uses_the_stack_and_the_policy_pack() -> None:
    calls: list[tuple[str, Any]] = []
    fake = SimpleNamespace(
        up=lambda **kw: calls.append(("up", kw)),
        preview=lambda **kw: calls.append(("preview", kw)),
        destroy=lambda **kw: calls.append(("destroy", kw)),
    )
    selected: list[str] = []
    run("preview", "prod", Backend("file:///tmp/x"), policy=True, select=lambda name, _: selected.append(name) or fake, out=io.StringIO())
    assert selected == ["prod"]
    assert calls[0][0] == "preview" and calls[0][1]["policy_packs"] == [str(ROOT / "policy")]


def test_errors_are_one_line_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ops", "status"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent.sock", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: Docker is not reachable at unix:///nonexistent.sock; start Docker, or set DOCKER_HOST"
    assert "Traceback" not in result.stderr + result.stdout


def test_pulumi_errors_are_reduced_to_their_telling_line() -> None:
    from pulumi.automation.errors import CommandError

    from ops.cli import one_line

    failed = CommandError("\n code: 255\n stdout: Updating (dev)\n stderr: "
                          "error: Docker is not reachable: Cannot connect to the Docker daemon\nerror: update failed\n")
    assert one_line(failed) == "Docker is not reachable: Cannot connect to the Docker daemon"
    assert one_line(CommandError("\n code: 1\n stdout: \n stderr: error: update failed\n")) == "update failed"
    assert one_line(OpsError("no service dev_postgres-backup")) == "no service dev_postgres-backup"
    assert one_line(RuntimeError()) == "RuntimeError"
    engine = CommandError(
        "\n code: 255\n stdout: Updating (platform)\n error: Program failed with an unhandled exception:\n"
        "   components.settings.SettingsError: Invalid configuration for stack 'platform':\n"
        "     - nextcandle:domain: 'a b' is not a hostname. Fix: pulumi config set nextcandle:domain example.com\n"
        "     - nextcandle:runnerReplicas: must be 1-20. Fix: pulumi config set nextcandle:runnerReplicas 2\n"
        " stderr: error: update failed\n"
    )
    assert one_line(engine).splitlines() == [
        "Invalid configuration for stack 'platform':",
        "  - nextcandle:domain: 'a b' is not a hostname. Fix: pulumi config set nextcandle:domain example.com",
        "  - nextcandle:runnerReplicas: must be 1-20. Fix: pulumi config set nextcandle:runnerReplicas 2",
    ]


def test_destroy_without_a_terminal_needs_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "run_checks", lambda *a, **k: ([], None))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(cli, "plan", lambda *a, **k: ["prod"])
    assert cli.main(["destroy", "prod"], out=io.StringIO()) == 2


def test_end_of_input_at_the_question_says_pass_yes(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr(cli, "run_checks", lambda *a, **k: ([], None))
    monkeypatch.setattr(cli, "plan", lambda *a, **k: ["prod"])
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)

    def end_of_input(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", end_of_input)
    assert cli.main(["destroy", "prod"], out=io.StringIO()) == 2
    assert capsys.readouterr().err == "error: no answer; nothing was done (destroy); pass --yes to skip the question\n"


def _fake_pulumi(tmp_path: Any, script: str) -> str:
    path = tmp_path / "pulumi"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def test_preflight_checks_the_backend_with_pulumi_whoami(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    backend = Backend(f"file://{tmp_path}/state")
    answering = _fake_pulumi(tmp_path, 'echo "User: operator"; echo "Backend URL: $PULUMI_BACKEND_URL"')
    check = check_backend(backend, answering)
    assert check.ok and check.detail == f"file://{tmp_path}/state (logged in as operator)"
    failing = _fake_pulumi(tmp_path, 'echo "error: could not access bucket" >&2; exit 255')
    check = check_backend(backend, failing)
    assert not check.ok and "could not access bucket" in check.detail and check.fix
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    check = check_backend(backend, answering)
    assert not check.ok and "PULUMI_CONFIG_PASSPHRASE" in check.fix


def test_preflight_reports_a_missing_daemon() -> None:
    def refuse() -> Any:
        raise ConnectionError("refused")

    check, client = check_docker(refuse)
    assert not check.ok and client is None and "DOCKER_HOST" in check.fix


# Against a real engine


def test_preflight_initialises_the_swarm(swarm: Any) -> None:
    if swarm.info()["Swarm"]["LocalNodeState"] != "active":
        refused = check_swarm(swarm, init=False)
        assert not refused.ok and "docker swarm init" in refused.fix
        assert check_swarm(swarm, init=True).detail == "swarm initialised on this node (docker swarm init)"
    check = check_swarm(swarm, init=True)
    assert check.ok and "1 manager(s)" in check.detail


def _wait(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)


def test_status_on_a_real_swarm(swarm: Any) -> None:
    if swarm.info()["Swarm"]["LocalNodeState"] != "active":
        swarm.swarm.init(advertise_addr="127.0.0.1")
    from docker.types import Healthcheck, ServiceMode

    healthy = swarm.services.create(
        LOCAL_IMAGE, ["sleep", "3600"], name="dev_probe", labels={"com.docker.stack.namespace": "dev"},
        healthcheck=Healthcheck(test=["CMD", "true"], interval=500_000_000, start_period=0),
    )
    missing = swarm.services.create(
        "redis:7.4.6-alpine", name="dev_redis", labels={"com.docker.stack.namespace": "dev"}
    )
    stopped = swarm.services.create(
        LOCAL_IMAGE, ["sleep", "3600"], name="shared_probe", mode=ServiceMode("replicated", replicas=0),
        labels={"com.docker.stack.namespace": "shared", "nextcandle.stopped": "true"},
    )
    other = swarm.services.create(LOCAL_IMAGE, ["sleep", "3600"], name="elsewhere")
    local_backup = swarm.services.create(
        LOCAL_IMAGE, ["sleep", "3600"], name="dev_postgres-backup", env=["BACKUP_OFF_SITE=false"],
        labels={"com.docker.stack.namespace": "dev"},
    )
    # Every node rejects its task: not "0/0 ok".
    rejected = swarm.services.create(
        "redis:7.4.6-alpine", name="shared_agent", mode=ServiceMode("global"), labels={"com.docker.stack.namespace": "shared"}
    )
    try:
        expected = {"dev_probe": State.OK, "dev_redis": State.FAILED, "shared_probe": State.STOPPED, "shared_agent": State.FAILED,
                    "dev_postgres-backup": State.OK}
        _wait(lambda: {s.name: s.state for s in collect(swarm)} == expected)
        statuses = {s.name: s for s in collect(swarm)}
        assert [s.name for s in collect(swarm)][:2] == ["shared_agent", "shared_probe"], "the platform's services first"
        assert [s.name for s in collect(swarm, ["platform"])] == ["shared_agent", "shared_probe"]
        assert statuses["dev_probe"].state is State.OK and statuses["dev_probe"].healthy == 1
        assert statuses["dev_redis"].state is State.FAILED and "No such image" in statuses["dev_redis"].last_error
        out = io.StringIO()
        assert cli.main(["status", "dev"], out=out, connect=lambda: swarm) == 1
        assert "dev_probe" in out.getvalue() and "2/3 services ok" in out.getvalue()
        assert "warning: dev_postgres-backup keeps the only backup copy on this swarm" in out.getvalue()
        assert collect(swarm, ["prod"]) == []
    finally:
        for service in (healthy, missing, stopped, other, rejected, local_backup):
            service.remove()


def test_backup_and_restore_commands_run_the_mounted_scripts(swarm: Any) -> None:
    if swarm.info()["Swarm"]["LocalNodeState"] != "active":
        swarm.swarm.init(advertise_addr="127.0.0.1")
    from docker.types import ConfigReference

    assert cli.main(["backup", "stg"], out=io.StringIO(), connect=lambda: swarm) == 2, "no backup service yet"
    scripts = {
        "restore": swarm.configs.create(name="probe-restore", data=b'echo "restore: $1 restored"\n'),
        "backup": swarm.configs.create(name="probe-backup", data=b'echo "backup: failed" >&2\nexit 3\n'),
    }
    service = swarm.services.create(
        LOCAL_IMAGE, ["sleep", "3600"], name="stg_postgres-backup", labels={"com.docker.stack.namespace": "stg"},
        configs=[ConfigReference(c.id, c.name, filename=f"/etc/backup/{name}.sh") for name, c in scripts.items()],
    )
    try:
        _wait(lambda: bool(swarm.containers.list(filters={"label": "com.docker.swarm.service.name=stg_postgres-backup"})))
        out = io.StringIO()
        assert cli.main(["restore", "stg", "app_x-2026-11-20T03-00-00Z.dump", "--yes"], out=out, connect=lambda: swarm) == 0
        assert out.getvalue() == "restore: app_x-2026-11-20T03-00-00Z.dump restored\n"
        out = io.StringIO()
        assert cli.main(["backup", "stg"], out=out, connect=lambda: swarm) == 3, "the script's exit code"
        assert "backup: failed" in out.getvalue()
    finally:
        service.remove()
        _wait(lambda: not swarm.containers.list(filters={"label": "com.docker.swarm.service.name=stg_postgres-backup"}))
        for config in scripts.values():
            config.remove()


def test_restoring_grafana_stops_it_meanwhile_and_starts_it_again(swarm: Any) -> None:
    if swarm.info()["Swarm"]["LocalNodeState"] != "active":
        swarm.swarm.init(advertise_addr="127.0.0.1")
    from docker.types import ConfigReference

    scripts = {
        "platform-restore": swarm.configs.create(name="probe-platform-restore", data=b'echo "restore: $* done"; exit 1\n'),
        "platform-backup": swarm.configs.create(name="probe-platform-backup", data=b'echo "backup: $*"\n'),
    }
    grafana = swarm.services.create(LOCAL_IMAGE, ["sleep", "3600"], name="shared_grafana", labels={"com.docker.stack.namespace": "shared"})
    backup = swarm.services.create(
        LOCAL_IMAGE, ["sleep", "3600"], name="shared_backup", labels={"com.docker.stack.namespace": "shared"},
        configs=[ConfigReference(c.id, c.name, filename=f"/etc/backup/{name}.sh") for name, c in scripts.items()],
    )
    try:
        _wait(lambda: all(swarm.containers.list(filters={"label": f"com.docker.swarm.service.name={n}"}) for n in ("shared_backup", "shared_grafana")))
        out = io.StringIO()
        assert cli.main(["backup", "platform"], out=out, connect=lambda: swarm) == 0
        assert out.getvalue() == "backup: grafana n8n objects\n"
        out = io.StringIO()
        code = cli.main(["restore", "grafana", "grafana-2026-11-20T03-00-00Z.db.gz", "--yes"], out=out, connect=lambda: swarm)
        assert code == 1, "the script's exit code"
        assert out.getvalue() == (
            "stopping shared_grafana\nrestore: grafana grafana-2026-11-20T03-00-00Z.db.gz done\nstarting shared_grafana\n"
        )
        grafana.reload()
        assert grafana.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 1, "started again, even after a failed restore"
        assert grafana.attrs["PreviousSpec"]["Mode"]["Replicated"]["Replicas"] == 0, "it was stopped meanwhile"
        assert [t for t in grafana.tasks() if t["Status"]["State"] == "running"]
    finally:
        for service in (backup, grafana):
            service.remove()
        _wait(lambda: not swarm.containers.list(filters={"label": "com.docker.stack.namespace=shared"}))
        for config in scripts.values():
            config.remove()


def test_up_stops_at_a_failed_preflight_and_runs_stacks_in_order(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from ops.preflight import Check

    ran: list[tuple[str, str]] = []
    monkeypatch.setattr(cli, "run", lambda command, stack, *a, **k: ran.append((command, stack)))
    failing = [Check("docker", True, "Docker 28"), Check("pulumi", False, "the Pulumi CLI is not installed", "install it")]
    monkeypatch.setattr(cli, "run_checks", lambda *a, **k: (failing, None))
    assert cli.main(["up", "all"], out=io.StringIO()) == 2
    assert capsys.readouterr().err == "error: the Pulumi CLI is not installed; fix: install it\n"
    assert ran == []

    monkeypatch.setattr(cli, "run_checks", lambda *a, **k: ([Check("docker", True, "Docker 28")], None))
    monkeypatch.setattr("ops.deploy.deployed", lambda backend: {})
    assert cli.main(["up", "all"], out=io.StringIO()) == 0
    assert cli.main(["destroy", "all", "--yes"], out=io.StringIO()) == 0
    assert cli.main(["up", "stg"], out=io.StringIO()) == 0
    assert ran == [
        ("up", "platform"), ("up", "dev"), ("up", "stg"), ("up", "prod"),
        ("destroy", "prod"), ("destroy", "stg"), ("destroy", "dev"), ("destroy", "platform"),
        ("up", "platform"), ("up", "stg"),
    ]


def test_up_initialises_no_swarm_until_everything_else_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    from ops import preflight

    inits: list[object] = []
    client = SimpleNamespace(
        version=lambda: {"Version": "28.0"},
        info=lambda: {"Swarm": {"LocalNodeState": "inactive"}},
        swarm=SimpleNamespace(init=lambda **k: inits.append(k)),
    )
    monkeypatch.setattr(preflight, "check_docker", lambda connect: (preflight.Check("docker", True, "Docker 28"), client))
    monkeypatch.setattr(preflight, "check_pulumi", lambda: (preflight.Check("pulumi", False, "no Pulumi CLI", "install it"), None))
    checks, _ = preflight.run_checks(Backend("file:///nowhere"), init_swarm=True)
    assert inits == [] and not next(c for c in checks if c.name == "swarm").ok
    monkeypatch.setattr(preflight, "check_pulumi", lambda: (preflight.Check("pulumi", True, "v3"), None))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    checks, _ = preflight.run_checks(Backend("file:///nowhere"), init_swarm=True)
    assert len(inits) == 1 and all(c.ok for c in checks)


def test_verbose_status_lists_networks_volumes_and_disk(swarm: Any) -> None:
    if swarm.info()["Swarm"]["LocalNodeState"] != "active":
        swarm.swarm.init(advertise_addr="127.0.0.1")
    network = swarm.networks.create("stg_internal", driver="overlay", labels={"com.docker.stack.namespace": "stg"})
    volume = swarm.volumes.create("stg_postgres_data", labels={"com.docker.stack.namespace": "stg"})
    service = swarm.services.create(LOCAL_IMAGE, ["sleep", "3600"], name="stg_probe", labels={"com.docker.stack.namespace": "stg"},
                                    container_labels={"com.docker.stack.namespace": "stg"})
    try:
        _wait(lambda: bool(swarm.containers.list(filters={"label": "com.docker.swarm.service.name=stg_probe"})))
        out = io.StringIO()
        cli.main(["status", "stg", "-v"], out=out, connect=lambda: swarm)
        text = out.getvalue()
        assert re.search(r"^  stg_probe\.1\.\w+ +stg +Up ", text, re.M), text
        assert re.search(r"^  stg_internal +stg +\d+\.\d+\.\d+\.\d+/\d+$", text, re.M), text
        assert re.search(r"^  stg_postgres_data +stg +(\?|\d)", text, re.M), text
        assert "disk on " in text and "volumes " in text and "images " in text
        assert cli.size(0) == "0 B" and cli.size(3 * 1024 * 1024) == "3.0 MB" and cli.size(-1) == "?"
    finally:
        service.remove()
        volume.remove(force=True)
        network.remove()


def test_prune_removes_stopped_containers_and_caches_but_no_data(swarm: Any) -> None:
    finished = swarm.containers.create(LOCAL_IMAGE, ["true"], name="finished")
    swarm.volumes.create("runner_work", labels={"com.docker.stack.namespace": "runner", "nextcandle.cache": "true"})
    data = swarm.volumes.create("prod_postgres_data", labels={"com.docker.stack.namespace": "prod"})
    theirs = swarm.volumes.create("someones_data")
    try:
        out = io.StringIO()
        assert cli.main(["prune", "--yes"], out=out, connect=lambda: swarm) == 0
        assert re.search(r"removed [1-9]\d* containers", out.getvalue()) and "(runner_work)" in out.getvalue(), out.getvalue()
        assert finished.id not in {c.id for c in swarm.containers.list(all=True)}
        assert {v.name for v in swarm.volumes.list()} >= {"prod_postgres_data", "someones_data"}
        assert "runner_work" not in {v.name for v in swarm.volumes.list()}
        assert LOCAL_IMAGE in {tag for image in swarm.images.list() for tag in image.tags}, "an unused image stays without --all-images"
    finally:
        for volume in (data, theirs):
            volume.remove(force=True)


def test_adopting_an_environment_before_the_platform_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from ops import adopt

    monkeypatch.setattr(adopt, "deployed", lambda backend: {})
    touched: list[str] = []

    class Client:
        services = type("Services", (), {"list": lambda self, **kw: touched.append("services") or []})()

    with pytest.raises(OpsError, match="the platform comes first: python -m ops adopt platform"):
        adopt.take_over(Client(), "dev", "/srv/nextcandle-infra/.data/dev", Backend.resolve(None))
    assert touched == [], "checked before looking at (or changing) the swarm"
