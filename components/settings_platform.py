"""The platform's tunnel and runner settings, read and checked (components/settings.py reads the rest)."""

from __future__ import annotations

import re
from typing import Any, Literal, cast

from components.settings_checks import tunnel_token_problem
from components.settings_reader import _CLOUDFLARE_ID, _NAME, _Reader
from components.settings_types import RunnerSettings, TunnelSettings
from names import PROJECT

TUNNEL_MODES = ("none", "token", "managed")


def tunnel_settings(read: _Reader) -> TunnelSettings:
    mode = read.choice("tunnelMode", TUNNEL_MODES)
    account_id = read.string("cloudflareAccountId")
    zone_id = read.string("cloudflareZoneId")
    token = read.secret("cloudflareTunnelToken", check=tunnel_token_problem)
    api_token = read.secret("cloudflareApiToken")
    if mode == "token" and token is None:
        read.require_secret("cloudflareTunnelToken", "when tunnelMode is token", "tunnel token from the Zero Trust dashboard")
    if mode == "managed":
        if api_token is None:
            read.require_secret(
                "cloudflareApiToken", "when tunnelMode is managed", "API token with Tunnel and DNS edit rights"
            )
        for key, value in (("cloudflareAccountId", account_id), ("cloudflareZoneId", zone_id)):
            if not _CLOUDFLARE_ID.match(value):
                read.problem(
                    key,
                    f"{value!r} is not a 32-character Cloudflare id (needed when tunnelMode is managed)",
                    f"pulumi config set {PROJECT}:{key} <id from the Cloudflare dashboard>",
                )
    return TunnelSettings(cast(Any, mode), token, api_token, account_id, zone_id)


_GITHUB_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")


def runner_settings(read: _Reader) -> RunnerSettings | None:
    scope = read.choice("runnerScope", ("repo", "org"))
    owner = read.string("runnerOwner")
    registration_token = read.secret("runnerRegistrationToken")
    access_token = read.secret("runnerAccessToken")
    ephemeral = read.boolean("runnerEphemeral")
    replicas = read.integer("runnerReplicas", 1, 64)
    labels = read.listing("runnerLabels", _NAME, "self-hosted,linux", required=True)
    stopped = read.boolean("runnersStopped")
    on_managers, docker_access = read.boolean("runnerOnManagers"), read.boolean("runnerDockerAccess")
    if not read.boolean("runnerEnabled"):
        return None
    if not owner:
        example = "my-org" if scope == "org" else "https://github.com/my-org/my-repo"
        read.problem("runnerOwner", "is required when runnerEnabled is true", f"pulumi config set {PROJECT}:runnerOwner {example}")
    elif scope == "org" and not _GITHUB_OWNER.match(owner):
        read.problem("runnerOwner", f"{owner!r} is not a GitHub organisation name (runnerScope org)", f"pulumi config set {PROJECT}:runnerOwner my-org")
    elif scope == "repo" and not owner.startswith("https://"):
        read.problem(
            "runnerOwner",
            f"{owner!r} must be a repository URL when runnerScope is repo",
            f"pulumi config set {PROJECT}:runnerOwner https://github.com/my-org/my-repo",
        )
    if registration_token is None and access_token is None:
        read.problem(
            "runnerAccessToken",
            "a runner token is required when runnerEnabled is true",
            f"pulumi config set --secret {PROJECT}:runnerAccessToken <personal access token> "
            f"(or: pulumi config set --secret {PROJECT}:runnerRegistrationToken <registration token, valid 1 hour>)",
        )
    return RunnerSettings(
        replicas=replicas,
        scope=cast(Literal["repo", "org"], scope),
        owner=owner,
        labels=labels,
        ephemeral=ephemeral,
        stopped=stopped,
        on_managers=on_managers,
        docker_access=docker_access,
        registration_token=registration_token,
        access_token=access_token,
    )
