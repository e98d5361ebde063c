"""The backup image's name: images/postgres-backup, tagged `<PostgreSQL version>-<digest of the directory>`.

Any change under images/postgres-backup/ gives a new tag, so a pushed tag never changes and a pin in
components/images.py always names exactly one build.

    python3 scripts/backup_image.py          prints the image name the directory builds
    python3 scripts/backup_image.py check    the same, after checking components/images.py pins it
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = ROOT / "images" / "postgres-backup"
REPOSITORY = "ghcr.io/nextcandle/postgres-backup"


def postgres_version() -> str:
    """The version of the official PostgreSQL image the Dockerfile builds on (`FROM postgres:17.11-...`)."""
    found = re.search(r"^FROM postgres:(\d+\.\d+)-", (DIRECTORY / "Dockerfile").read_text(), re.MULTILINE)
    if not found:
        raise SystemExit("images/postgres-backup/Dockerfile: no `FROM postgres:<major>.<minor>-<variant>` line")
    return found.group(1)


def directory_digest() -> str:
    hashed = hashlib.sha256()
    for path in sorted(p for p in DIRECTORY.rglob("*") if p.is_file()):
        hashed.update(str(path.relative_to(DIRECTORY)).encode() + b"\0" + path.read_bytes() + b"\0")
    return hashed.hexdigest()[:12]


def image() -> str:
    return f"{REPOSITORY}:{postgres_version()}-{directory_digest()}"


if __name__ == "__main__":
    built = image()
    if sys.argv[1:] == ["check"]:
        sys.path.insert(0, str(ROOT))
        from components import images

        if built != images.POSTGRES_BACKUP:
            raise SystemExit(f"components/images.py pins {images.POSTGRES_BACKUP}; images/postgres-backup builds {built}: "
                             "set POSTGRES_BACKUP to it")
    print(built)
