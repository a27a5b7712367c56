"""k-of-n shares of the backup opening key: any k rebuild it, k-1 reveal nothing, damaged or
foreign shares are detected, and a bid sealed to the backup key opens with the shares."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from bidroom.errors import ValidationError
from bidroom.opening import shamir
from bidroom.opening.ca import PlatformCA, certificate_usages
from bidroom.opening.envelope import (
    inspect_envelope,
    open_envelope,
    recipient_for,
    seal_bid,
    unwrap_content_key,
)
from bidroom.opening.package import build_package
from bidroom.opening.shamir import (
    BackupKey,
    Share,
    combine,
    interpolate,
    rebuild_backup_key,
    split,
    split_backup_key,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@st.composite
def splits(draw: st.DrawFn) -> tuple[bytes, int, int, list[Share], random.Random]:
    secret = draw(st.binary(min_size=1, max_size=64))
    k = draw(st.integers(min_value=2, max_value=6))
    n = draw(st.integers(min_value=k, max_value=8))
    rng = random.Random(draw(st.integers()))
    return secret, k, n, split(secret, k, n), rng


@given(splits())
def test_any_k_shares_rebuild_the_secret(case: tuple[bytes, int, int, list[Share],
                                                     random.Random]) -> None:
    secret, k, n, shares, rng = case
    assert len(shares) == n and sorted(s.index for s in shares) == list(range(1, n + 1))
    chosen = rng.sample(shares, rng.randint(k, n))
    assert combine(chosen) == secret
    assert combine([s.encode() for s in chosen]) == secret


@given(splits())
def test_k_minus_1_shares_are_not_enough_and_interpolate_to_something_else(
    case: tuple[bytes, int, int, list[Share], random.Random],
) -> None:
    secret, k, _, shares, rng = case
    chosen = rng.sample(shares, k - 1)
    with pytest.raises(ValidationError) as info:
        combine(chosen)
    assert info.value.code == "not_enough_shares"
    guess = interpolate([(s.index, s.data) for s in chosen])
    assert guess[: len(secret)] + guess[len(secret):] != secret + shamir._secret_check(secret)


@given(splits(), st.binary(min_size=1, max_size=64))
def test_k_minus_1_shares_are_consistent_with_every_secret(
    case: tuple[bytes, int, int, list[Share], random.Random], other_secret: bytes
) -> None:
    """Perfect secrecy, constructively: for any other secret of the same length there is a
    k-th share that, with the k-1 we hold, rebuilds *that* secret. So k-1 shares rule out
    no secret at all."""
    secret, k, n, shares, rng = case
    other_secret = (other_secret * 64)[: len(secret)]
    held = rng.sample(shares, k - 1)
    missing = next(s for s in shares if s not in held)
    payload = other_secret + shamir._secret_check(other_secret)
    points = [(0, payload)] + [(s.index, s.data) for s in held]
    forged = Share(missing.index, interpolate(points, at=missing.index), k, n, missing.split_id)
    assert combine([*held, forged]) == other_secret


def test_split_refuses_bad_parameters() -> None:
    for k, n in ((1, 3), (4, 3), (2, 256), (0, 0)):
        with pytest.raises(ValidationError):
            split(b"secret", k, n)
    with pytest.raises(ValidationError):
        split(b"", 2, 3)


def test_share_text_names_its_index_and_threshold() -> None:
    shares = split(b"top secret", 3, 5)
    text = shares[0].encode()
    assert text.startswith("bidroom-share-1-3-of-5:")
    assert Share.decode(text) == shares[0]
    assert Share.decode("  " + text[:30] + "\n" + text[30:] + "\n") == shares[0]


def test_a_mistyped_share_is_detected() -> None:
    text = split(b"top secret", 2, 3)[1].encode()
    head, body = text.split(":")
    position = len(body) // 2
    typo = body[:position] + ("A" if body[position] != "A" else "B") + body[position + 1:]
    for bad in (head + ":" + typo, text.replace("-2-of-3", "-3-of-3"),
                text.replace("2-2-of", "3-2-of"), "bidroom-share-1-2-of-3:!!", "hello",
                text[:-6]):
        with pytest.raises(ValidationError) as info:
            Share.decode(bad)
        assert info.value.code == "bad_share", bad


def test_shares_of_another_split_or_a_wrong_share_are_detected() -> None:
    first, second = split(b"key one", 2, 3), split(b"key two", 2, 3)
    with pytest.raises(ValidationError) as info:
        combine([first[0], second[1]])
    assert info.value.code == "bad_share"
    # A share re-encoded with altered bytes passes its own text check, not the secret check.
    altered = Share(first[1].index, bytes([first[1].data[0] ^ 1]) + first[1].data[1:], 2, 3,
                    first[1].split_id)
    with pytest.raises(ValidationError) as info:
        combine([first[0], Share.decode(altered.encode())])
    assert info.value.code == "bad_share"
    with pytest.raises(ValidationError) as info:
        combine([first[0], altered, first[1]])  # two different shares claim index 2
    assert info.value.code == "bad_share"


def test_a_repeated_share_counts_once() -> None:
    shares = split(b"secret", 3, 4)
    with pytest.raises(ValidationError) as info:
        combine([shares[0], shares[0], shares[1]])
    assert info.value.code == "not_enough_shares"
    assert combine([shares[0], shares[0], shares[1], shares[3]]) == b"secret"


class _CountingRandom:
    def __init__(self) -> None:
        self.requested = 0

    def token_bytes(self, nbytes: int) -> bytes:
        self.requested += nbytes
        return bytes(range(nbytes % 256)) * (nbytes // 256) + bytes(range(nbytes % 256))


def test_the_random_source_can_be_injected() -> None:
    rng = _CountingRandom()
    shares = split(b"abc", 3, 5, rng=rng)
    assert rng.requested == 2 * (3 + 8) + 8  # k-1 coefficients per byte, plus the split id
    assert combine(shares[2:]) == b"abc"


# ------------------------------------------------------------------------------ backup key


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> PlatformCA:
    return PlatformCA.init(tmp_path_factory.mktemp("ca") / "ca", now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def backup(ca: PlatformCA) -> BackupKey:
    return BackupKey.generate(ca, now=NOW - timedelta(days=1))


def test_the_backup_key_has_an_encryption_certificate_from_the_platform_ca(
    ca: PlatformCA, backup: BackupKey
) -> None:
    certificate, private_pem = backup
    assert certificate_usages(certificate) == {"encryption"}
    ca.trust_store().verify(certificate, at=NOW, usage="encryption")
    assert b"PRIVATE KEY" in private_pem


@pytest.fixture(scope="module")
def backup_der(backup: BackupKey) -> bytes:
    return _der(backup.private_key_pem)


def _der(private_pem: bytes) -> bytes:
    return serialization.load_pem_private_key(private_pem, None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_any_3_of_5_officers_rebuild_the_backup_key(backup: BackupKey) -> None:
    shares = split_backup_key(backup.private_key_pem, 3, 5)
    assert len(shares) == 5 and len(set(shares)) == 5
    expected = _der(backup.private_key_pem)
    for chosen in itertools.combinations(shares, 3):
        assert combine(list(chosen)) == expected
    rebuilt = rebuild_backup_key([shares[4], shares[1], shares[2]])
    assert rebuilt.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) == expected
    with pytest.raises(ValidationError):
        rebuild_backup_key(shares[:2])


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_two_shares_of_the_backup_key_do_not_rebuild_it(backup_der: bytes, seed: int) -> None:
    secret = backup_der
    shares = split(secret, 3, 5)
    held = random.Random(seed).sample(shares, 2)
    guess = interpolate([(s.index, s.data) for s in held])
    assert not guess.startswith(secret[:64])


def test_a_bid_sealed_to_the_backup_key_opens_with_rebuilt_shares(
    tmp_path: Path, ca: PlatformCA, backup: BackupKey
) -> None:
    supplier = ca.issue_dual("org_lost_key", "丢钥匙公司", now=NOW - timedelta(days=1))
    package = tmp_path / "p.zip"
    with package.open("wb") as out:
        build_package({"total_price_fen": 500_000, "delivery_days": 7, "warranty_months": 12,
                       "items": []}, {"a.txt": b"bid"}, out)
    sealed = tmp_path / "bid.cms"
    seal_bid(package, sealed, signing_key=supplier.sign_key, signing_cert=supplier.sign_cert,
             recipients=[supplier.enc_cert, backup.certificate], now=NOW)
    shares = split_backup_key(backup.private_key_pem, 2, 3)
    key = rebuild_backup_key([shares[2], shares[0]])
    wrapped = recipient_for(inspect_envelope(sealed), backup.certificate).encrypted_key
    opened = open_envelope(sealed, unwrap_content_key(wrapped, key), tmp_path / "out",
                           trust=ca.trust_store(), at=NOW)
    assert opened.signer is not None and opened.signer.org_id == "org_lost_key"
    assert opened.form["total_price_fen"] == 500_000
