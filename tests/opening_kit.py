"""Helpers for the opening tests: a supplier's certificates and keys on "its own machine" (a
directory outside the server's data dir), sealing a bid, unwrapping its content key.

Not a test module.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from bidroom.opening.ca import PlatformCA, load_private_key
from bidroom.opening.client import seal_bid_files, unwrap_for_submission
from bidroom.opening.envelope import SealResult

MIN = 60_000


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def form(total_fen: int, **extra: Any) -> dict[str, Any]:
    return {"total_price_fen": total_fen, "delivery_days": 30, "warranty_months": 24,
            "items": [{"name": "品牌型号", "value": "X-200"}], **extra}


@dataclass
class Keys:
    """One organisation's dual certificates and private keys, as files in its own folder."""

    org_id: str
    directory: Path

    @property
    def sign_cert(self) -> Path:
        return self.directory / "sign-cert.pem"

    @property
    def sign_key(self) -> Path:
        return self.directory / "sign-key.pem"

    @property
    def enc_cert(self) -> Path:
        return self.directory / "enc-cert.pem"

    @property
    def enc_key(self) -> Path:
        return self.directory / "enc-key.pem"

    def certificate(self, which: str = "enc") -> x509.Certificate:
        path = self.enc_cert if which == "enc" else self.sign_cert
        return x509.load_pem_x509_certificate(path.read_bytes())

    def seal(self, out: Path, bid_form: dict[str, Any], *, backup_cert: Path | None = None,
             now_ms: int, documents: dict[str, bytes | Path] | None = None) -> SealResult:
        return seal_bid_files(
            form=bid_form, documents=documents or {"技术方案.txt": "方案".encode()},
            sign_cert=self.sign_cert, sign_key=self.sign_key, enc_cert=self.enc_cert,
            out=out, backup_cert=backup_cert, now=at(now_ms),
        )

    def unwrap(self, encrypted_key_b64: str) -> str:
        """What the supplier does on its own machine: the content key, base64."""
        return unwrap_for_submission(encrypted_key_b64, self.enc_key.read_bytes())

    def sign_challenge(self, challenge: str) -> str:
        key = load_private_key(self.sign_key.read_bytes())
        data = challenge.encode("utf-8")
        if isinstance(key, ec.EllipticCurvePrivateKey):
            signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
        else:
            assert isinstance(key, rsa.RSAPrivateKey)
            signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    def sign_cert_pem(self) -> str:
        return self.sign_cert.read_text(encoding="ascii")

    def enc_cert_pem(self) -> str:
        return self.enc_cert.read_text(encoding="ascii")


def issue(ca: PlatformCA, org_id: str, name: str, directory: Path, *, now_ms: int) -> Keys:
    """Issue an organisation's dual certificates and write them to its own directory."""
    pair = ca.issue_dual(org_id, name[:64], now=at(now_ms))
    pair.write(directory)
    return Keys(org_id, directory)


def pem_of(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
