"""appSecrets: the seeds' .env for applications, one Docker secret per name, the values never plain."""

from __future__ import annotations

import base64
import json

from tests.conftest import ProgramRuns

APP_SECRETS = "# Supabase\nSUPABASE_SERVICE_KEY=eyJsupabase-service-key\n\nHF_TOKEN = hf_abcdefghijklmnop\n"


def test_each_application_secret_is_a_docker_secret_named_in_an_output(runs: ProgramRuns) -> None:
    run = runs("dev", secrets={"appSecrets": APP_SECRETS})
    names, is_secret = run.outputs["app_secrets"]
    assert set(names) == {"SUPABASE_SERVICE_KEY", "HF_TOKEN"} and not is_secret, "the names are not secret, the values are"
    # Pulumi names each secret after its resource, with a suffix that changes with its value.
    secrets = run.of_type("docker:index/secret:Secret")
    values = {key: base64.b64decode(s.inputs["data"]).decode() for key, swarm_name in names.items() for s in secrets
              if swarm_name.rpartition("-")[0] == s.name}
    assert values == {"SUPABASE_SERVICE_KEY": "eyJsupabase-service-key", "HF_TOKEN": "hf_abcdefghijklmnop"}
    plain = json.dumps({key: value for key, (value, secret) in run.outputs.items() if not secret})
    assert "eyJsupabase-service-key" not in plain and "hf_abcdefghijklmnop" not in plain


def test_without_app_secrets_there_is_nothing_to_mount(runs: ProgramRuns) -> None:
    assert "app_secrets" not in runs("dev").outputs
