"""Where Pulumi keeps state, and how secrets in it are encrypted."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from names import PROTECTED_ENVIRONMENTS

ROOT = Path(__file__).resolve().parent.parent
LOCAL_STATE = ROOT / ".pulumi-state"


class OpsError(Exception):
    """An error shown to the operator as one line, with what to do about it."""


def s3_backend_url(bucket: str, endpoint: str | None = None, region: str | None = None, path_style: bool = True) -> str:
    """An S3 state backend URL; with `endpoint` it targets an S3-compatible store (MinIO, SeaweedFS)."""
    if not bucket.strip("/"):
        raise OpsError("the S3 bucket name is empty: set NEXTCANDLE_S3_BUCKET or pass --backend s3://<bucket>")
    query: dict[str, str] = {}
    if endpoint:
        host = endpoint.removeprefix("https://").removeprefix("http://")
        query["endpoint"] = host
        if endpoint.startswith("http://"):
            query["disableSSL"] = "true"
        if path_style:
            query["s3ForcePathStyle"] = "true"
    if region:
        query["region"] = region
    return f"s3://{bucket}" + (f"?{urlencode(query)}" if query else "")


@dataclass(frozen=True)
class Backend:
    url: str

    @staticmethod
    def resolve(explicit: str | None = None, environ: dict[str, str] | None = None) -> Backend:
        """--backend, else PULUMI_BACKEND_URL, else NEXTCANDLE_S3_BUCKET (+ endpoint/region), else local files."""
        env = dict(os.environ if environ is None else environ)
        if explicit:
            return Backend(explicit)
        if env.get("PULUMI_BACKEND_URL"):
            return Backend(env["PULUMI_BACKEND_URL"])
        if env.get("NEXTCANDLE_S3_BUCKET"):
            return Backend(
                s3_backend_url(env["NEXTCANDLE_S3_BUCKET"], env.get("NEXTCANDLE_S3_ENDPOINT"), env.get("AWS_REGION", "us-east-1"))
            )
        return Backend(f"file://{LOCAL_STATE}")

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file://")

    def problems(self, environ: dict[str, str] | None = None, stacks: Sequence[str] = ()) -> list[str]:
        """What is missing to use this backend (for `stacks`), each with its fix."""
        env = dict(os.environ if environ is None else environ)
        found = []
        if self.url.startswith("s3://") and not (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")) and not env.get("AWS_PROFILE"):
            found.append("the S3 backend needs credentials: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
        if "PULUMI_CONFIG_PASSPHRASE" not in env and "PULUMI_CONFIG_PASSPHRASE_FILE" not in env:
            found.append(
                "secrets are encrypted with a passphrase: export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE)"
            )
        elif not env.get("PULUMI_CONFIG_PASSPHRASE") and not env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
            # An empty passphrase is a key anyone has: acceptable only for a local dev deployment.
            guarded = [stack for stack in stacks if stack in PROTECTED_ENVIRONMENTS]
            if not self.is_local or guarded:
                where = f"{' and '.join(guarded)}'s" if guarded else "shared state's"
                found.append(
                    f"an empty passphrase leaves {where} passwords readable by anyone who reads the state: "
                    "export a long PULUMI_CONFIG_PASSPHRASE (the same one every time: it encrypts what exists)"
                )
        return found

    def stack_problems(self, stacks: Sequence[str], environ: dict[str, str] | None = None) -> list[str]:
        """What `problems` adds for these stacks (an empty passphrase for stg or prod)."""
        return [p for p in self.problems(environ, stacks) if p not in self.problems(environ)]

    def env(self) -> dict[str, str]:
        if self.is_local:
            LOCAL_STATE.mkdir(exist_ok=True)
        return {"PULUMI_BACKEND_URL": self.url}
