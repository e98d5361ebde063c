"""Checks of values their consumer would refuse, or accept to our harm: S3 bucket names, webhook and
off-site URLs, how often backups run, which host ports a database may take, tunnel tokens.

Each returns the problem as (what, fix) for the settings reader, or None when the value is fine."""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse

import yaml

from names import ENVIRONMENTS, OBJECT_STORAGE, OBJECT_STORAGE_HOST, PROJECT, project_dir

Problem = tuple[str, str] | None

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
RESERVED_PORTS = {2377: "Swarm's cluster management", 7946: "Swarm's node gossip", 4789: "Swarm's overlay traffic"}
"""Host ports every node of a swarm already uses."""
LOWEST_DATABASE_PORT = 1024
"""Below it are the system's well-known ports (SSH on 22, HTTP on 80): a database there hides a service or takes its place."""


def bucket_problem(key: str, name: str) -> Problem:
    """Amazon's bucket naming rules, which SeaweedFS and every S3 service we write to share."""
    fix = f"pulumi config set {PROJECT}:{key} nextcandle-backups"
    if not name:
        return "is empty", fix
    if not _BUCKET.match(name):
        return f"{name!r} is not an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit", fix
    if ".." in name or _IP_ADDRESS.match(name):
        return f"{name!r} is not an S3 bucket name: no two dots in a row and not an IP address", fix
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return f"{name!r} uses a prefix or suffix S3 reserves (xn--, sthree-, -s3alias, --ol-s3)", fix
    return None


_APP_SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def app_secret_lines(text: str) -> list[tuple[str, str]]:
    """appSecrets as (name, value) pairs: NAME=value lines, blank ones and # comments skipped."""
    lines = [line.strip() for line in text.splitlines()]
    return [(line.partition("=")[0].strip(), line.partition("=")[2].strip()) for line in lines if line and not line.startswith("#")]


def app_secrets_problem(key: str, text: str) -> Problem:
    """Every line a NAME=value with a shell-style name, each name once; the message never quotes a value."""
    fix = f'pulumi config set --secret {PROJECT}:{key} "$(cat app-secrets.env)" with one NAME=value per line'
    names = [name for name, _ in app_secret_lines(text)]
    if not names:
        return "has no NAME=value line", fix
    for number, (name, value) in enumerate(app_secret_lines(text), 1):
        if not _APP_SECRET_NAME.match(name) or not value:  # not quoted: it may be a pasted value
            return f"entry {number} is not NAME=value with a name of letters, digits and _ and a value", fix
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        return f"names {', '.join(doubled)} more than once", fix
    return None


def webhook_problem(key: str, url: str) -> Problem:
    """Alertmanager's webhook: an https URL (its path carries the hook's token), no password in it."""
    fix = f"pulumi config set --secret {PROJECT}:{key} https://hooks.slack.com/services/<...>"
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme != "https" or not parsed.hostname or " " in url.strip():
        return "is not an https URL (a webhook's URL carries its token, which plain HTTP would show on the way)", fix
    if parsed.username or parsed.password:
        return "has a user or password inside the URL, which Alertmanager logs with it; use a webhook with its token in the path", fix
    return None


def off_site_problem(key: str, url: str, own_hosts: tuple[str, ...]) -> Problem:
    """An off-site backup target: over TLS, without credentials in the URL, and not our own object store."""
    parsed = urllib.parse.urlsplit(url)
    fix = f"pulumi config set {PROJECT}:{key} https://s3.eu-central-1.amazonaws.com"
    if parsed.username or parsed.password:
        return "has credentials inside the URL, which the backup logs and `pulumi config` show; set backupS3AccessKey and backupS3SecretKey as secrets", fix
    if parsed.hostname in (OBJECT_STORAGE_HOST, OBJECT_STORAGE, *own_hosts):
        return f"is the platform's own object store: backing it up into itself protects nothing (to back up there, leave {key} unset)", f"pulumi config rm {PROJECT}:{key}"
    if parsed.scheme != "https":
        return "is plain HTTP: dumps and keys would cross the network readable; an off-site target needs https", fix
    return None


def schedule_problem(key: str, schedule: str) -> Problem:
    """At most one backup an hour: each run dumps the whole database and keeps every dump for the retention."""
    fields = schedule.split()
    if len(fields) == 5 and not fields[0].isdigit():
        return f"{schedule!r} backs up more than once an hour (minute {fields[0]!r}); point-in-time recovery needs no dump that often", f'pulumi config set {PROJECT}:{key} "0 3 * * *"'
    return None


def database_port_problem(key: str, port: int) -> Problem:
    fix = f"pulumi config set {PROJECT}:{key} <a port from {LOWEST_DATABASE_PORT} to 65535, or 0 for none>"
    if 0 < port < LOWEST_DATABASE_PORT:
        return f"port {port} is a system port (SSH is 22, HTTP 80): publish databases from {LOWEST_DATABASE_PORT} up", fix
    if port in RESERVED_PORTS:
        return f"port {port} is {RESERVED_PORTS[port]} on every node", fix
    return None


def tunnel_token_problem(key: str, token: str) -> Problem:
    """cloudflared's token is base64 of a JSON object (account, tunnel id, secret)."""
    fix = f"pulumi config set --secret {PROJECT}:{key} <the token `cloudflared tunnel run --token` shows in the Zero Trust dashboard>"
    try:
        decoded = json.loads(base64.b64decode(token.strip() + "=" * (-len(token.strip()) % 4), validate=True))
    except (binascii.Error, ValueError):
        decoded = None
    if not isinstance(decoded, dict):
        return "is not a tunnel token (base64 of a JSON object); cloudflared would refuse it", fix
    return None


def platform_stack_problem(key: str, name: str, environments: tuple[str, ...]) -> Problem:
    """The stack an environment reads the platform from must not be an environment itself."""
    if name.rsplit("/", 1)[-1] in environments:
        return f"{name!r} is an environment, not the platform: its outputs hold no networks or object store", f"pulumi config set {PROJECT}:{key} platform"
    return None


def listing_problem(key: str, raw: str, example: str) -> Problem:
    """A comma-separated list with an empty entry or one entry twice: a slip, which consumers
    (Prometheus targets, DNS records) would refuse or double."""
    items = [item.strip() for item in raw.split(",")] if raw.strip() else []
    twice = sorted({item for item in items if items.count(item) > 1 and item})
    if "" in items:
        return f"{raw!r} has an empty entry", f"pulumi config set {PROJECT}:{key} {example}"
    if twice:
        return f"lists {', '.join(twice)} twice", f"pulumi config set {PROJECT}:{key} {example}"
    return None


def published_ports(stack: str, declared: dict[str, dict[str, object]]) -> dict[int, str]:
    """The host ports another environment's stack file publishes (its setting or the default)."""
    path = project_dir() / f"Pulumi.{stack}.yaml"
    values = (yaml.safe_load(path.read_text()) or {}).get("config") or {} if path.is_file() else {}
    ports = {}
    for key in ("postgresPort", "redisPort"):
        value = str(values.get(f"{PROJECT}:{key}", declared[key]["default"]))
        if value.isascii() and value.isdigit() and int(value):
            ports[int(value)] = f"{key} of stack {stack}"
    return ports


def port_problems(ports: dict[str, int], stack: str, declared: dict[str, dict[str, object]], platform_ports: dict[int, str]) -> list[tuple[str, Problem]]:
    """(key, problem) for each database port that is a system or Swarm port, or that another service
    or environment publishes already: the ingress publishes a port on every node, for one service."""
    used = dict(platform_ports)
    for other in ENVIRONMENTS:
        if other != stack:
            used.update(published_ports(other, declared))
    found: list[tuple[str, Problem]] = []
    for key, port in ports.items():
        found.append((key, database_port_problem(key, port)))
        if port and port in used:
            found.append((key, (f"port {port} is already used by {used[port]}", f"pulumi config set {PROJECT}:{key} <another port, or 0>")))
        if port:
            used[port] = key
    return [(key, problem) for key, problem in found if problem is not None]
