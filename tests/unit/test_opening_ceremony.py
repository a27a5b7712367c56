"""The backup ceremony's pure parts: sealing a share to the ceremony's key (and to nothing else),
the officials' threshold, and the status the API reports (issue #10 §1)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bidroom.errors import ValidationError
from bidroom.opening.backup import (
    OfficialCandidate,
    backup_status,
    check_officials,
    open_from_ceremony,
    seal_to_ceremony,
)
from bidroom.opening.ca import TrustStore
from bidroom.opening.session import (
    BackupPolicy,
    MarkPlatformFault,
    OpeningSettings,
    OpeningState,
    SignIn,
    StartCeremony,
    SubmitBid,
    SubmitShare,
    Tick,
    created,
    decide,
    replay,
)

SHARE = "bidroom-share-1-2-of-3:AAAAAAAAAAAAAAAAAAAAAAAA"
DEADLINE = 1_900_000_000_000
WINDOW_END = DEADLINE + 30 * 60_000


def public_b64(key: X25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def test_a_share_sealed_to_the_ceremony_opens_only_with_its_key_for_its_official() -> None:
    key = X25519PrivateKey.generate()
    where = {"opening_id": "opn_1", "ceremony_id": "cer_1", "official": "usr_a"}
    sealed = seal_to_ceremony(SHARE, public_b64(key), **where)

    assert SHARE not in str(sealed) and open_from_ceremony(sealed, key, **where) == SHARE
    with pytest.raises(ValidationError):
        open_from_ceremony(sealed, X25519PrivateKey.generate(), **where)
    for changed in ({"official": "usr_b"}, {"ceremony_id": "cer_2"}, {"opening_id": "opn_2"}):
        with pytest.raises(ValidationError):  # a submission cannot be passed off as another's
            open_from_ceremony(sealed, key, **{**where, **changed})
    tampered = dict(sealed, ciphertext=base64.b64encode(b"x" * 60).decode())
    with pytest.raises(ValidationError):
        open_from_ceremony(tampered, key, **where)


@pytest.mark.parametrize("k", [1, 0, -3])
def test_one_official_alone_may_not_hold_the_key(k: int) -> None:
    officials = [OfficialCandidate("usr_a", "org_a", "not read"),
                 OfficialCandidate("usr_b", "org_b", "not read")]
    with pytest.raises(ValidationError) as refused:
        check_officials(k, officials, TrustStore([]), now_ms=DEADLINE)
    assert refused.value.code == "threshold_too_low"


def _state() -> OpeningState:
    settings = OpeningSettings(opening_id="opn_1", deadline_ms=DEADLINE, min_bids=1,
                               backup=BackupPolicy(2, ("o1", "o2", "o3")))
    state = replay([created(settings, ("s1",), DEADLINE - 10)])
    state = decide(state, SubmitBid("s1", "a" * 64, 10, DEADLINE - 5)).state
    state = decide(state, Tick(DEADLINE)).state
    state = decide(state, SignIn("s1", DEADLINE + 1)).state
    return decide(state, MarkPlatformFault("s1", "断网", "a", DEADLINE + 2)).state


def test_the_status_says_when_a_lost_holder_voids_the_submissions() -> None:
    state = _state()
    assert backup_status(state, holder_alive=None)["state"] == "waiting_for_window"
    state = decide(state, Tick(WINDOW_END)).state
    assert backup_status(state, holder_alive=None)["state"] == "collecting"
    state = decide(state, StartCeremony("c1", "cHVi", "p1", None, WINDOW_END)).state
    state = decide(state, SubmitShare("o1", WINDOW_END + 1, "c1")).state

    alive = backup_status(state, holder_alive=True)
    assert (alive["state"], alive["submitted"], alive["resubmit"]) == ("collecting", 1, [])
    lost = backup_status(state, holder_alive=False)
    assert (lost["state"], lost["submitted"], lost["resubmit"]) == (
        "ceremony_restarted", 0, ["o1"])
    state = decide(state, StartCeremony("c2", "cHVi", "p2", "c1", WINDOW_END + 2)).state
    state = decide(state, SubmitShare("o2", WINDOW_END + 3, "c2")).state
    after = backup_status(state, holder_alive=True)
    assert (after["state"], after["submitted"], after["resubmit"], after["ceremony_restarts"]) == (
        "ceremony_restarted", 1, ["o1"], 1)
    state = decide(state, SubmitShare("o1", WINDOW_END + 4, "c2")).state
    assert backup_status(state, holder_alive=True)["state"] == "rebuilding"
