"""A self-signed TLS certificate derived from a random seed, so it is the same on every run.

An ECDSA P-256 key derived from 32 seed bytes, signed deterministically (RFC 6979): the PEM text,
and so the Docker secret holding it, changes only when the seed does. Not Ed25519, although its
signatures are deterministic too: libpq's SCRAM channel binding needs the certificate's signature
digest, which Ed25519 has none of ("could not find digest for NID UNDEF", seen with a real PostgreSQL).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker
import pulumi_random as random
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from components.swarm import StackScope

VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2126, 1, 1, tzinfo=UTC)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _key(seed_base64: str) -> ec.EllipticCurvePrivateKey:
    secret = int.from_bytes(base64.b64decode(seed_base64)[:32], "big") % (P256_ORDER - 1) + 1
    return ec.derive_private_key(secret, ec.SECP256R1())


def private_key_pem(seed_base64: str) -> str:
    key = _key(seed_base64)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def self_signed_certificate_pem(seed_base64: str, host: str) -> str:
    key = _key(seed_base64)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(hashlib.sha256(public).digest()[:16], "big") >> 1)
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_UNTIL)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def seeded_tls_secrets(
    scope: StackScope, prefix: str, host: str, seed_opts: pulumi.ResourceOptions, secret_opts: pulumi.ResourceOptions
) -> tuple[docker.Secret, docker.Secret]:
    """The key and the certificate for `host` as Docker secrets (`<prefix>-key`, `<prefix>-cert`), made
    from a random seed (`<prefix>-seed`, kept with the data) so every run gives the same text."""
    seed = random.RandomBytes(f"{prefix}-seed", length=32, opts=seed_opts)
    key = scope.secret(f"{prefix}-key", seed.base64.apply(private_key_pem), secret_opts)
    certificate = scope.secret(f"{prefix}-cert", seed.base64.apply(lambda value: self_signed_certificate_pem(value, host)), secret_opts)
    return key, certificate
