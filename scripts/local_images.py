"""Local images for the test swarm, tagged with the exact pins of components/images.py.

No registry image can be pulled here, so the tests run the program's own service specs on images
built from what the registries here do serve: Debian packages (a debootstrap'ed base, then apt),
Go modules, and, where neither has the program, a declared stand-in (scripts/images/standin). Each
image follows its contract in components/images.py: the runtime uid, the entrypoint's behaviour, the
tools health checks call, the writable paths.

    python3 scripts/local_images.py build      build what changed; prints the cache directory
    python3 scripts/local_images.py table      what each pin runs here (markdown, for the README)

Builds are cached in $NEXTCANDLE_IMAGES_CACHE (default ~/.cache/nextcandle-images), one root file
system tar per image, keyed by its recipe, its contract and its inputs: a change rebuilds only the
images it touches. tests/dockerd.py imports them (`load`) into the tests' own Docker engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from components import images  # noqa: E402
from components.images import BUSYBOX, CONTRACTS, Contract  # noqa: E402

RECIPES_DIR = HERE / "images"
MIRROR = "http://deb.debian.org/debian"
BUILDER_VERSION = "2"
"""Bump when the way images are assembled changes (every image is rebuilt)."""
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(message: str) -> None:
    print(f"local-images: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Local:
    """How the test swarm's image for one pin is made."""

    runs: str
    """What runs in it: the real program (and its version here), or `stand-in for ...`."""
    real: bool
    suite: str = "trixie"
    packages: tuple[str, ...] = ()
    user: tuple[str, int, int] | None = None
    """(name, uid, gid) created before the packages, so a package's system user gets the contract's ids."""
    binaries: dict[str, str] = field(default_factory=dict)
    """path in the image -> Go build (`standin`, `seaweedfs`, `traefik`, or a module's path in the repository)."""
    links: dict[str, str] = field(default_factory=dict)
    """path in the image -> existing path it links to."""
    entrypoint_script: tuple[str, str] | None = None
    """(path in the image, file under scripts/images/entrypoints)."""
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"


def standin(what: str, listen: str, health: str = "", write: str = "") -> dict[str, str]:
    return {"STANDIN_FOR": what, "STANDIN_LISTEN": listen, "STANDIN_HEALTH": health, "STANDIN_WRITE": write}


LOCAL: dict[str, Local] = {
    images.TRAEFIK: Local(
        "Traefik v3.6.12 (scripts/traefik.sh, Go modules: v3.7 needs its dynamic/ext module, which the proxy does not serve)", True,
        binaries={"/usr/local/bin/traefik": "traefik"}, entrypoint_script=("/entrypoint.sh", "traefik.sh"),
    ),
    images.CLOUDFLARED: Local(
        "stand-in for cloudflared (no route to Cloudflare here; its module is not served)", False,
        binaries={"/usr/local/bin/cloudflared": "standin"},
        env=standin("cloudflared", ":20241"),
    ),
    images.POSTGRES: Local(
        "PostgreSQL 17 and pgvector 0.8.0 (Debian trixie packages)", True,
        packages=("postgresql-17", "postgresql-17-pgvector", "gosu"), user=("postgres", 999, 999),
        entrypoint_script=("/usr/local/bin/docker-entrypoint.sh", "postgres.sh"),
        env={"PATH": f"{PATH}:/usr/lib/postgresql/17/bin", "PGDATA": "/var/lib/postgresql/data", "LANG": "C.UTF-8"},
    ),
    images.POSTGRES_18: Local(
        "PostgreSQL 18 and pgvector 0.8.7 (Debian forky packages)", True, suite="forky",
        packages=("postgresql-18", "postgresql-18-pgvector", "gosu"), user=("postgres", 999, 999),
        entrypoint_script=("/usr/local/bin/docker-entrypoint.sh", "postgres.sh"),
        env={"PATH": f"{PATH}:/usr/lib/postgresql/18/bin", "PGDATA": "/var/lib/postgresql/18/docker", "LANG": "C.UTF-8"},
    ),
    images.REDIS: Local(
        "Redis 7.0 (Debian bookworm's redis-server; no 7.4 is packaged)", True, suite="bookworm",
        packages=("redis-server",), user=("redis", 999, 999),
        entrypoint_script=("/usr/local/bin/docker-entrypoint.sh", "redis.sh"), workdir="/data",
    ),
    images.POSTGRES_EXPORTER: Local(
        "postgres_exporter 0.17 (Debian trixie package)", True, packages=("prometheus-postgres-exporter",),
        links={"/bin/postgres_exporter": "/usr/bin/prometheus-postgres-exporter"},
    ),
    images.REDIS_EXPORTER: Local(
        "redis_exporter 1.69 (Debian trixie package)", True, packages=("prometheus-redis-exporter",),
        links={"/redis_exporter": "/usr/bin/prometheus-redis-exporter"},
    ),
    images.PROMETHEUS: Local(
        "Prometheus 2.53 (Debian trixie package)", True, packages=("prometheus",),
        links={"/bin/prometheus": "/usr/bin/prometheus"}, workdir="/prometheus",
    ),
    images.ALERTMANAGER: Local(
        "Alertmanager 0.28 (Debian trixie package)", True, packages=("prometheus-alertmanager",),
        links={"/bin/alertmanager": "/usr/bin/prometheus-alertmanager"}, workdir="/alertmanager",
    ),
    images.NODE_EXPORTER: Local(
        "node_exporter 1.9 (Debian trixie package)", True, packages=("prometheus-node-exporter",),
        links={"/bin/node_exporter": "/usr/bin/prometheus-node-exporter"},
    ),
    images.CADVISOR: Local(
        "stand-in for cAdvisor", False, binaries={"/usr/bin/cadvisor": "standin"},
        entrypoint_script=("/usr/bin/entrypoint.sh", "cadvisor.sh"), env=standin("cAdvisor", ":8080"),
    ),
    images.GRAFANA: Local(
        "stand-in for Grafana (AGPL: its module is marked not-to-use)", False,
        binaries={"/usr/share/grafana/bin/grafana": "standin"}, entrypoint_script=("/run.sh", "grafana.sh"),
        env=standin("Grafana", ":3000", write="/var/lib/grafana"),
    ),
    images.LOKI: Local(
        "stand-in for Loki (AGPL: its module is marked not-to-use)", False,
        binaries={"/usr/bin/loki": "standin"}, env=standin("Loki", ":3100", "http://127.0.0.1:3100/ready", "/loki"),
    ),
    images.ALLOY: Local(
        "stand-in for Alloy", False, binaries={"/bin/alloy": "standin"},
        env=standin("Alloy", ":12345", write="/var/lib/alloy/data"),
    ),
    images.DOCKER_API_PROXY: Local(
        # No user of uid 99 before the package: its postinst wants a system user (uid 100-999); the service runs as root.
        "HAProxy 3.0 (Debian trixie package)", True, packages=("haproxy", "socat"),
        entrypoint_script=("/usr/local/bin/docker-entrypoint.sh", "haproxy.sh"), workdir="/var/lib/haproxy",
    ),
    images.SEAWEEDFS: Local(
        "SeaweedFS (weed built from Go modules, scripts/tools/seaweedfs)", True, user=("seaweed", 1000, 1000),
        binaries={"/usr/bin/weed": "seaweedfs"}, entrypoint_script=("/entrypoint.sh", "seaweedfs.sh"), workdir="/data",
    ),
    images.N8N: Local(
        "stand-in for n8n", False, packages=("tini",), user=("node", 1000, 1000),
        binaries={"/usr/local/bin/n8n": "standin"}, links={"/usr/local/bin/node": "/usr/local/bin/n8n"},
        entrypoint_script=("/docker-entrypoint.sh", "n8n.sh"), env=standin("n8n", ":5678", write="/home/node/.n8n"),
        workdir="/home/node",
    ),
    images.GITHUB_RUNNER: Local(
        "stand-in for the GitHub Actions runner (.NET; it runs no job)", False, packages=("curl", "jq"),
        binaries={"/actions-runner/bin/Runner.Listener": "standin"},
        entrypoint_script=("/entrypoint.sh", "github-runner.sh"), env=standin("the GitHub Actions runner", ""),
        workdir="/actions-runner",
    ),
    images.POSTGRES_BACKUP: Local(
        "our backup image's programs: backup-cron (images/postgres-backup/scheduler), PostgreSQL 17's client "
        "tools, the aws CLI and gpg from Debian trixie (the image has them from postgres:17.11-alpine3.24 and Alpine)", True,
        packages=("postgresql-client-17", "awscli", "python3", "gpg", "gpg-agent"),
        binaries={"/usr/local/bin/backup-cron": "images/postgres-backup/scheduler"},
        env={"PATH": f"{PATH}:/usr/lib/postgresql/17/bin"},
    ),
    images.POSTGRES_BACKUP_18: Local(
        "our backup image's programs: backup-cron (images/postgres-backup/scheduler), PostgreSQL 18's client "
        "tools, the aws CLI and gpg from Debian forky (the image has them from postgres:18.5-alpine3.24 and Alpine)", True, suite="forky",
        packages=("postgresql-client-18", "awscli", "python3", "gpg", "gpg-agent"),
        binaries={"/usr/local/bin/backup-cron": "images/postgres-backup/scheduler"},
        env={"PATH": f"{PATH}:/usr/lib/postgresql/18/bin"},
    ),
}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("NEXTCANDLE_IMAGES_CACHE", f"{base}/nextcandle-images"))


def digest(*parts: str | bytes) -> str:
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(part if isinstance(part, bytes) else part.encode())
        hashed.update(b"\0")
    return hashed.hexdigest()[:16]


def tree_digest(directory: Path) -> str:
    return digest(*(f"{p.relative_to(directory)}:{digest(p.read_bytes())}" for p in sorted(directory.rglob("*")) if p.is_file()))


def run(*command: str, **kwargs: object) -> None:
    subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]


# Go builds -------------------------------------------------------------------------------------

def go_build(name: str) -> Path:
    """A static binary from a module under scripts/images/ or scripts/tools/ (or at a path in the
    repository, `images/postgres-backup/scheduler`), cached by its files."""
    if name == "traefik":
        return Path(subprocess.run(["bash", str(HERE / "traefik.sh")], check=True, capture_output=True, text=True).stdout.strip())
    in_repository = ROOT / name if "/" in name else None
    module = in_repository or (RECIPES_DIR / name if (RECIPES_DIR / name).is_dir() else HERE / "tools" / name)
    go_version = subprocess.run(["go", "version"], check=True, capture_output=True, text=True).stdout
    binary = cache_root() / "go" / f"{module.name}-{digest(go_version, tree_digest(module))}"
    if not binary.exists():
        log(f"building {name} from Go modules ({module.relative_to(ROOT)})")
        binary.parent.mkdir(parents=True, exist_ok=True)
        package = (module / "package").read_text().strip() if (module / "package").exists() else "."
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -trimpath"}
        run("go", "build", "-ldflags=-s -w", "-o", f"{binary}.tmp", package, cwd=module, env=env)
        os.replace(f"{binary}.tmp", binary)
    return binary


# Debian bases ----------------------------------------------------------------------------------

def base(suite: str) -> Path:
    """A minimal Debian root file system (debootstrap --variant=minbase) with busybox, as a tar."""
    tar = cache_root() / "base" / f"{suite}-{digest(suite, MIRROR, '1')}.tar"
    if not tar.exists():
        if shutil.which("debootstrap") is None:
            raise SystemExit("local-images: needs debootstrap (apt-get install debootstrap)")
        log(f"debootstrap {suite} (first time: a minute or two)")
        tar.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tar.parent) as work:
            root = Path(work) / "root"
            # A suite newer than this debootstrap (forky on bookworm's) bootstraps with the script of sid.
            known = Path("/usr/share/debootstrap/scripts", suite).exists()
            run("debootstrap", "--variant=minbase", "--include=ca-certificates,busybox", suite, str(root), MIRROR,
                *([] if known else ["/usr/share/debootstrap/scripts/sid"]), stdout=subprocess.DEVNULL)
            run("tar", "-C", str(root), "--numeric-owner", "-cf", f"{tar}.tmp", ".")
        os.replace(f"{tar}.tmp", tar)
    return tar


def chroot(root: Path, script: str) -> None:
    run("chroot", str(root), "/bin/sh", "-ec", script, env={"PATH": PATH, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"})


NOT_IN_DEBIAN_BUSYBOX = {"pgrep": "procps"}
"""Tools Debian's busybox has no applet for, and the package that brings them."""


def install_packages(root: Path, recipe: Local, contract: Contract) -> None:
    if recipe.user:
        name, uid, gid = recipe.user
        chroot(root, f"groupadd -r -g {gid} {name} 2>/dev/null || true; id {name} >/dev/null 2>&1 || "
                     f"useradd -r -u {uid} -g {gid} -d /var/lib/{name} -s /bin/bash {name}")
    packages = [*recipe.packages, *(NOT_IN_DEBIAN_BUSYBOX[t] for t in sorted(contract.tools & set(NOT_IN_DEBIAN_BUSYBOX)))]
    if not packages:
        return
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    policy = root / "usr/sbin/policy-rc.d"  # no service starts inside the build
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    (root / "etc/postgresql-common").mkdir(parents=True, exist_ok=True)
    (root / "etc/postgresql-common/createcluster.conf").write_text("create_main_cluster = false\n")
    # Testing's Release files expire within weeks and this mirror's copy may be older than that; the
    # signatures are still checked.
    # Some maintainer scripts need /proc (forky's postgresql-common runs systemd-tmpfiles).
    (root / "proc").mkdir(exist_ok=True)
    run("mount", "-t", "proc", "proc", str(root / "proc"))
    try:
        chroot(root, f"apt-get -o Acquire::Check-Valid-Until=false update -qq && apt-get install -y -qq --no-install-recommends {' '.join(packages)} >/dev/null")
    finally:
        run("umount", str(root / "proc"))
    chroot(root, "apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man /usr/share/locale /usr/sbin/policy-rc.d")


def add_busybox_tools(root: Path, contract: Contract) -> None:
    """The busybox applets the contract lists, where the base has no such program."""
    for tool in sorted(contract.tools & BUSYBOX):
        if not any((root / d / tool).exists() or (root / d / tool).is_symlink() for d in ("bin", "usr/bin", "usr/local/bin", "sbin", "usr/sbin")):
            (root / "usr/local/bin" / tool).symlink_to("/bin/busybox")


def contract_user(root: Path, contract: Contract) -> None:
    """A passwd and group entry for the runtime uid and gid, if the base has none."""
    for file, entry_id, line in (
        ("etc/group", contract.gid, f"app{contract.gid}:x:{contract.gid}:\n"),
        ("etc/passwd", contract.uid, f"app{contract.uid}:x:{contract.uid}:{contract.gid}::/nonexistent:/usr/sbin/nologin\n"),
    ):
        path = root / file
        if not any(row.split(":")[2] == str(entry_id) for row in path.read_text().splitlines() if row.count(":") >= 2):
            path.write_text(path.read_text() + line)


def image_config(contract: Contract, recipe: Local) -> dict[str, object]:
    env = {"PATH": PATH, **recipe.env}
    return {
        "user": "0:0" if contract.starts_as_root else f"{contract.uid}:{contract.gid}",
        "entrypoint": list(contract.entrypoint),
        "cmd": list(contract.command),
        "env": [f"{k}={v}" for k, v in env.items()],
        "workdir": recipe.workdir,
    }


def recipe_key(recipe: Local, contract: Contract) -> str:
    """The image's own inputs, the same in every process. (Sets are sorted: a frozenset's repr follows
    the per-process string hash, and such a key rebuilt every image on every run.)"""
    return digest(BUILDER_VERSION, json.dumps(asdict(recipe), sort_keys=True), json.dumps(asdict(contract), sort_keys=True, default=sorted))


def build_image(pin: str, recipe: Local, contract: Contract) -> Path:
    inputs = [recipe_key(recipe, contract)]
    binaries = {path: go_build(build) for path, build in recipe.binaries.items()}
    scripts = dict([recipe.entrypoint_script]) if recipe.entrypoint_script else {}
    inputs += [digest(b.read_bytes()) for b in binaries.values()]
    inputs += [(RECIPES_DIR / "entrypoints" / s).read_text() for s in scripts.values()]
    base_tar = base(recipe.suite)
    key = digest(pin, base_tar.name, *inputs)
    out = cache_root() / "images" / f"{pin.replace('/', '_').replace(':', '_')}-{key}"
    if (out / "rootfs.tar").exists():
        return out
    log(f"building {pin}: {recipe.runs}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        root = Path(work) / "root"
        root.mkdir()
        run("tar", "-C", str(root), "--numeric-owner", "-xf", str(base_tar))
        install_packages(root, recipe, contract)
        (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
        add_busybox_tools(root, contract)
        contract_user(root, contract)
        for path, binary in binaries.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(binary, target)
            target.chmod(0o755)
        for path, script in scripts.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(RECIPES_DIR / "entrypoints" / script, target)
            target.chmod(0o755)
        for path, existing in recipe.links.items():
            link = root / path.lstrip("/")
            if link.resolve() == (root / existing.lstrip("/")).resolve():
                continue  # merged /usr: /bin/x already is /usr/bin/x
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(existing)
        for path in contract.writable:
            directory = root / path.lstrip("/")
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, contract.uid, contract.gid)
        staging = Path(work) / "image"
        staging.mkdir()
        run("tar", "-C", str(root), "--numeric-owner", "-cf", str(staging / "rootfs.tar"), ".")
        (staging / "image.json").write_text(json.dumps({"tag": pin, "runs": recipe.runs, "real": recipe.real,
                                                        "config": image_config(contract, recipe)}, indent=2))
        shutil.rmtree(root)
        for stale in out.parent.glob(f"{pin.replace('/', '_').replace(':', '_')}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(staging, out)
    return out


def build() -> Path:
    if os.geteuid() != 0:
        raise SystemExit("local-images: building root file systems needs root (chroot, file owners)")
    missing = set(CONTRACTS) - set(LOCAL)
    if missing:
        raise SystemExit(f"local-images: no local recipe for {sorted(missing)}")
    built = {pin: build_image(pin, recipe, CONTRACTS[pin]) for pin, recipe in LOCAL.items()}
    manifest = cache_root() / "manifest.json"
    manifest.write_text(json.dumps({pin: str(path) for pin, path in built.items()}, indent=2))
    return cache_root()


def load(cache: Path, client: object) -> list[str]:
    """Import every built image into a Docker engine (a docker SDK client); returns their tags."""
    manifest = json.loads((cache / "manifest.json").read_text())
    tags = []
    for pin, directory in manifest.items():
        meta = json.loads((Path(directory) / "image.json").read_text())
        config = meta["config"]
        changes = [f"USER {config['user']}", f"WORKDIR {config['workdir']}", f"ENTRYPOINT {json.dumps(config['entrypoint'])}",
                   *(f"ENV {entry.split('=', 1)[0]}={json.dumps(entry.split('=', 1)[1])}" for entry in config["env"])]
        if config["cmd"]:
            changes.append(f"CMD {json.dumps(config['cmd'])}")
        repository, tag = pin.rsplit(":", 1)
        with open(Path(directory) / "rootfs.tar", "rb") as rootfs:
            client.api.import_image_from_data(rootfs, repository=repository, tag=tag, changes=changes)  # type: ignore[attr-defined]
        tags.append(pin)
    return tags


def table() -> str:
    rows = ["| image (pin) | on the test swarm | real program |", "|---|---|---|"]
    rows += [f"| `{pin}` | {recipe.runs} | {'yes' if recipe.real else '**stand-in**'} |" for pin, recipe in LOCAL.items()]
    return "\n".join(rows)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "build"
    if command == "build":
        print(build())
    elif command == "table":
        print(table())
    else:
        raise SystemExit(__doc__)
