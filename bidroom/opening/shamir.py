"""k-of-n secret sharing (Shamir) for the backup opening key.

Why: a platform may seal a second copy of every bid under a *backup opening key* so that a bid
whose supplier lost its key can still be opened when the rules allow it (DOMAIN.md §2; the
remedy must be defined in the tender documents). Nobody may decrypt a bid before the deadline
(电子招标投标办法 第二十八条), so no single person may hold that key: its private key is split
into n shares of which any k rebuild it, and fewer than k reveal nothing.

The scheme: Shamir's secret sharing over GF(2^8) (the AES field, x^8+x^4+x^3+x+1), byte by byte:
for each byte of the secret a random polynomial of degree k-1 with that byte as constant term,
evaluated at x = 1..n. The secret is extended with an 8-byte SHA-256 check value *before*
splitting (so the check is as hidden as the secret) and verified after combining, which
catches shares of another split or an undetected corruption.

A share as text (copy, print, QR)::

    bidroom-share-1-3-of-5:<base64url of split id (8) | share bytes | check (4)>

``1`` is the share's x coordinate, ``3-of-5`` the threshold and count; the split id ties the
shares of one split together and the 4-byte check (SHA-256 of everything before it, the
prefix included) catches typos. Any problem: ``ValidationError`` code ``bad_share`` (or
``not_enough_shares``).

Must not import: market, web.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bidroom.errors import ValidationError
from bidroom.opening.ca import PlatformCA, load_private_key, private_key_pem

__all__ = [
    "BackupKey",
    "Share",
    "combine",
    "interpolate",
    "rebuild_backup_key",
    "split",
    "split_backup_key",
]

SHARE_PREFIX = "bidroom-share"
SPLIT_ID_BYTES = 8
SECRET_CHECK_BYTES = 8
SHARE_CHECK_BYTES = 4
_SHARE_TEXT = re.compile(r"bidroom-share-(\d{1,3})-(\d{1,3})-of-(\d{1,3}):([A-Za-z0-9_-]+)")


class RandomSource(Protocol):
    def token_bytes(self, nbytes: int, /) -> bytes: ...


# ============================================================================ GF(2^8) tables


def _tables() -> tuple[list[int], list[int]]:
    exp = [0] * 510
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        # multiply by the generator 3: value * 2 (reduced by 0x11B) XOR value
        doubled = value << 1
        if doubled & 0x100:
            doubled ^= 0x11B
        value = doubled ^ value
    for power in range(255, 510):
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _tables()


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(256)")
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 255]


# =================================================================================== shares


@dataclass(frozen=True, slots=True)
class Share:
    """One share: its x coordinate ``index`` (1–255), the share bytes, the threshold ``k``
    and count ``n``, and the id of the split it belongs to."""

    index: int
    data: bytes
    k: int
    n: int
    split_id: bytes

    def _header(self) -> str:
        return f"{SHARE_PREFIX}-{self.index}-{self.k}-of-{self.n}"

    def encode(self) -> str:
        body = self.split_id + self.data
        check = hashlib.sha256(self._header().encode("ascii") + body).digest()
        payload = body + check[:SHARE_CHECK_BYTES]
        text = base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")
        return f"{self._header()}:{text}"

    def __str__(self) -> str:
        return self.encode()

    @classmethod
    def decode(cls, text: str) -> Share:
        """Parse a share's text (surrounding whitespace ignored); ``bad_share`` if it is
        malformed or its check value does not match (a typo, a truncated copy)."""
        if not isinstance(text, str):
            raise _bad_share("a share is text")
        match = _SHARE_TEXT.fullmatch("".join(text.split()))
        if match is None:
            raise _bad_share(f"not a share (expected {SHARE_PREFIX}-I-K-of-N:…)")
        index, k, n = (int(match.group(i)) for i in (1, 2, 3))
        try:
            encoded = match.group(4)
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise _bad_share("the share's text is not base64url") from None
        if len(payload) <= SPLIT_ID_BYTES + SHARE_CHECK_BYTES:
            raise _bad_share("the share is too short")
        body, check = payload[:-SHARE_CHECK_BYTES], payload[-SHARE_CHECK_BYTES:]
        share = cls(index, body[SPLIT_ID_BYTES:], k, n, body[:SPLIT_ID_BYTES])
        expected = hashlib.sha256(share._header().encode("ascii") + body).digest()
        if not secrets.compare_digest(expected[:SHARE_CHECK_BYTES], check):
            raise _bad_share(f"share {index} is damaged (its check value does not match)")
        _check_parameters(k, n)
        if not 1 <= index <= n:
            raise _bad_share(f"share index {index} is outside 1–{n}")
        return share


def _bad_share(message: str) -> ValidationError:
    return ValidationError(message, code="bad_share")


def _check_parameters(k: int, n: int) -> None:
    for name, value in (("k", k), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{name} must be an integer", code="invalid_input")
    if not 2 <= k <= n <= 255:
        raise ValidationError(
            f"need 2 ≤ k ≤ n ≤ 255 (got k={k}, n={n})", code="invalid_input"
        )


def _secret_check(secret: bytes) -> bytes:
    return hashlib.sha256(b"bidroom-shamir-secret\x00" + secret).digest()[:SECRET_CHECK_BYTES]


def split(
    secret: bytes, k: int, n: int, rng: RandomSource = secrets
) -> list[Share]:
    """Split ``secret`` into ``n`` shares, any ``k`` of which rebuild it."""
    _check_parameters(k, n)
    if not isinstance(secret, bytes | bytearray) or not secret:
        raise ValidationError("the secret must be non-empty bytes", code="invalid_input")
    payload = bytes(secret) + _secret_check(bytes(secret))
    size = len(payload)
    coefficients = rng.token_bytes((k - 1) * size)
    if len(coefficients) != (k - 1) * size:
        raise ValueError("the random source returned too few bytes")
    split_id = rng.token_bytes(SPLIT_ID_BYTES)
    shares: list[Share] = []
    for x in range(1, n + 1):
        out = bytearray(size)
        for position in range(size):
            # Horner: a_{k-1} x^{k-1} + … + a_1 x + secret
            value = 0
            for degree in range(k - 2, -1, -1):
                value = _mul(value, x) ^ coefficients[degree * size + position]
            out[position] = _mul(value, x) ^ payload[position]
        shares.append(Share(x, bytes(out), k, n, split_id))
    return shares


def interpolate(points: Sequence[tuple[int, bytes]], at: int = 0) -> bytes:
    """Lagrange interpolation of the byte-wise polynomials through ``points`` (x, bytes),
    evaluated at ``at`` (0: the secret). No checks: ``combine`` is the safe entry."""
    xs = [x for x, _ in points]
    if len(set(xs)) != len(xs) or not points:
        raise _bad_share("shares must have distinct indexes")
    size = len(points[0][1])
    result = bytearray(size)
    for i, (xi, yi) in enumerate(points):
        # basis polynomial l_i(at) = prod_{j != i} (at - xj) / (xi - xj); minus is XOR
        weight = 1
        for j, xj in enumerate(xs):
            if j != i:
                weight = _mul(weight, _div(at ^ xj, xi ^ xj))
        if weight == 0:
            continue
        log_weight = _LOG[weight]
        for position, byte in enumerate(yi):
            if byte:
                result[position] ^= _EXP[_LOG[byte] + log_weight]
    return bytes(result)


def combine(shares: Iterable[Share | str]) -> bytes:
    """Rebuild the secret from at least k shares of one split (texts or ``Share``)."""
    parsed = [share if isinstance(share, Share) else Share.decode(share) for share in shares]
    if not parsed:
        raise ValidationError("no shares given", code="not_enough_shares")
    first = parsed[0]
    by_index: dict[int, Share] = {}
    for share in parsed:
        if (share.split_id, share.k, share.n) != (first.split_id, first.k, first.n):
            raise _bad_share(
                f"share {share.index} belongs to another split (a share of another key?)"
            )
        if len(share.data) != len(first.data):
            raise _bad_share(f"share {share.index} has another length")
        if share.index in by_index and by_index[share.index].data != share.data:
            raise _bad_share(f"two different shares claim index {share.index}")
        by_index[share.index] = share
    if len(by_index) < first.k:
        raise ValidationError(
            f"{len(by_index)} distinct share(s) given, {first.k} needed",
            code="not_enough_shares",
            have=len(by_index),
            need=first.k,
        )
    chosen = sorted(by_index.values(), key=lambda s: s.index)[: first.k]
    payload = interpolate([(s.index, s.data) for s in chosen])
    secret, check = payload[:-SECRET_CHECK_BYTES], payload[-SECRET_CHECK_BYTES:]
    if not secret or not secrets.compare_digest(_secret_check(secret), check):
        raise _bad_share("the shares do not rebuild a valid secret: one of them is wrong")
    return secret


# =============================================================================== backup key


class BackupKey(NamedTuple):
    """The backup opening key: its certificate (issued by the platform CA, usage
    keyEncipherment; add it to the recipients when sealing) and its private key (PEM, to be
    split with ``split_backup_key`` and then destroyed)."""

    certificate: x509.Certificate
    private_key_pem: bytes

    @classmethod
    def generate(
        cls,
        ca: PlatformCA,
        *,
        now: datetime,
        org_id: str = "backup",
        name: str = "备用开标密钥 Backup opening key",
        valid_days: int = 365,
    ) -> BackupKey:
        """A fresh RSA-3072 key and its encryption certificate from ``ca``."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        certificate = ca.issue_certificate(
            key.public_key(), org_id=org_id, name=name, usage="encryption", now=now,
            valid_days=valid_days,
        )
        return cls(certificate, private_key_pem(key))


def split_backup_key(private_key_pem: bytes, k: int, n: int) -> list[str]:
    """Split an RSA private key (PEM) into n share texts, any k of which rebuild it."""
    key = load_private_key(private_key_pem)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValidationError("the backup key is an RSA key", code="invalid_private_key")
    secret = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return [share.encode() for share in split(secret, k, n)]


def rebuild_backup_key(shares: Sequence[str | Share]) -> rsa.RSAPrivateKey:
    """The backup private key from at least k of its share texts."""
    secret = combine(shares)
    key = load_private_key(secret)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _bad_share("the shares rebuild something that is not an RSA key")
    return key
