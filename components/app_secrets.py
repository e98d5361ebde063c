"""AppSecrets: an environment's application secrets (appSecrets: the seeds' .env, with Supabase keys
and tokens), one Docker secret per name, for the environment's applications to mount.

Docker secrets are immutable, so each is content-named like every other secret here: a new value is a
new secret, and the `app_secrets` stack output maps each NAME to the secret's current Swarm name,
which an application's deployment mounts (README, "Application secrets")."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.settings_checks import app_secret_lines
from components.swarm import StackScope


@dataclass(frozen=True, kw_only=True)
class AppSecretsArgs:
    scope: StackScope
    names: tuple[str, ...]
    """Known before any resource (settings validation read them); the values stay secret."""
    values: pulumi.Output[str]
    """appSecrets as configured: NAME=value lines."""


class AppSecrets(pulumi.ComponentResource):
    swarm_names: pulumi.Output[dict[str, str]]
    """NAME: the Docker secret that holds it now."""

    def __init__(self, name: str, args: AppSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nextcandle:app_secrets:AppSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        values = args.values.apply(lambda text: dict(app_secret_lines(text)))

        def value(key: str) -> pulumi.Output[str]:
            return values.apply(lambda found: found[key])

        secrets = {key: args.scope.secret(f"{name}-{key.lower().replace('_', '-')}", value(key), child) for key in args.names}
        self.swarm_names = pulumi.Output.all(**{key: secret.name for key, secret in secrets.items()})  # type: ignore[arg-type]
        self.register_outputs({"swarm_names": self.swarm_names})
