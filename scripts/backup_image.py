"""The backup image's names: images/postgres-backup built once per PostgreSQL major, tagged
`<PostgreSQL version>-<digest of the directory>`.

Any change under images/postgres-backup/ gives new tags, so a pushed tag never changes and a pin in
components/images.py always names exactly one build.

    python3 scripts/backup_image.py          prints `<PostgreSQL version> <image>` for every major
    python3 scripts/backup_image.py check    the same, after checking components/images.py pins them
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = ROOT / "images" / "postgres-backup"
REPOSITORY = "ghcr.io/nextcandle/postgres-backup"
POSTGRES_VERSIONS = {17: "17.11", 18: "18.5"}
"""The official image's version each major's build starts from (`--build-arg POSTGRES_VERSION`)."""


def directory_digest() -> str:
    hashed = hashlib.sha256()
    for path in sorted(p for p in DIRECTORY.rglob("*") if p.is_file()):
        hashed.update(str(path.relative_to(DIRECTORY)).encode() + b"\0" + path.read_bytes() + b"\0")
    return hashed.hexdigest()[:12]


def image(major: int) -> str:
    return f"{REPOSITORY}:{POSTGRES_VERSIONS[major]}-{directory_digest()}"


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        sys.path.insert(0, str(ROOT))
        from components.images import POSTGRES_RELEASES

        for major, release in POSTGRES_RELEASES.items():
            if major not in POSTGRES_VERSIONS or release.backup_image != image(major):
                raise SystemExit(f"components/images.py pins {release.backup_image} for PostgreSQL {major}; "
                                 f"images/postgres-backup builds {image(major) if major in POSTGRES_VERSIONS else 'nothing'}: pin that")
    for major, version in POSTGRES_VERSIONS.items():
        print(version, image(major))
