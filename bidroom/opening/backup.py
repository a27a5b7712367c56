"""The backup opening key's use cases: create it for an opening, and the ceremony that rebuilds it.

Why (DOMAIN.md §2, 电子招标投标办法 31): a bid that could not be decrypted because of a
platform fault (撤回) may be opened with a second copy sealed to a *backup opening key*. Nobody
may be able to open a bid early, so no one holds that key: it is split k-of-n (``shamir``) with
**k ≥ 2** (``threshold_too_low``: with k = 1 each official's share *is* the key) and each share is
sealed to one official's encryption certificate (``custody``).

**Creating** (``check_officials``, ``create_backup_key``): each official's encryption certificate
is verified and must name the official's organisation; no certificate may be named k or more
times (``officials_share_a_key``: its holder alone would hold k shares). The key is generated,
split, each share sealed, and the private key and the plain shares are dropped; only the
certificate and the sealed shares are stored.

**The ceremony** (``BackupCeremonies``), after the decryption window. The rule it keeps: *no
share, and nothing from which a share follows (the content key that unwraps a sealed share), is
ever at rest where the operator can read it* — not in SQL, Redis, files or logs. A submitted share
lives only in memory for the one reconstruction it serves. With several server processes on
shared stores (docs/operations.md) a share may reach any process, so:

1. The first submission after the window makes its process the ceremony's **holder**: it
   generates an X25519 key pair kept only in its memory, sets the Redis key
   ``<prefix>:op:ceremony:{o:<id>}`` (the ceremony id, expiring ``LIVENESS_MS`` after the last
   refresh: the holder refreshes it on every pass) and appends ``backup_ceremony_started`` with
   the ceremony id and the *public* key to the log.
2. Any process that receives a share opens the official's sealed share with the content key the
   official unwrapped on its own machine (in memory), seals the share at once to the ceremony's
   public key (``seal_to_ceremony``: ephemeral X25519, HKDF-SHA256, AES-256-GCM, bound to the
   opening, the ceremony and the official), stores only that (``opening_backup_shares``) and
   appends ``share_submitted``. The content key and the plain share are dropped.
3. The k-th ``share_submitted`` rings the opening's Redis channel (as every log entry does); the
   holder, subscribed to it while it holds a ceremony (and checking on every pass, should the
   message be lost), opens the k sealed submissions, rebuilds the key, erases the submissions,
   drops the ceremony's private key, opens **only** the bids ruled a platform fault
   (``session.backup_openable``: never 撤销 or a bid its supplier withdrew), drops the rebuilt
   key and appends ``backup_ceremony_closed``. A failed rebuild is logged; its submissions are
   erased and the ceremony ends (the next share starts a new one).
4. If the holder dies, its private key dies with it and the stored submissions open for nobody.
   Its liveness key expires; the next submission (or a status read) sees the ceremony is gone,
   and a new ceremony is started with ``replaces`` (logged, with the officials whose
   submissions were voided): those officials submit again — their sealed shares and unwrapped
   keys still work. The API says so (``state: "ceremony_restarted"``, ``resubmit``), so nothing
   acknowledged vanishes silently.

Python gives no guarantee that freed memory is overwritten: "wiped" here means every reference
is dropped as soon as the step is done and nothing is written anywhere; run the server without
core dumps and with encrypted (or no) swap (docs/opening.md §6).

Must not import: market, web.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import secrets
import shutil
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bidroom.errors import BidroomError, ConflictError, NotFoundError, ValidationError
from bidroom.opening.ca import (
    PlatformCA,
    TrustStore,
    certificate_fingerprint,
    load_certificate,
)
from bidroom.opening.custody import open_share, seal_share
from bidroom.opening.envelope import inspect_envelope, recipient_for, unwrap_content_key
from bidroom.opening.runner import OpeningRunner, ms_to_datetime
from bidroom.opening.session import (
    MIN_THRESHOLD,
    BackupPolicy,
    CloseCeremony,
    CommandRefused,
    Decision,
    OpeningState,
    RecordBackupOpening,
    RecordBackupRebuild,
    StartCeremony,
    SubmitShare,
    backup_openable,
    can_open_with_backup,
)
from bidroom.opening.shamir import BackupKey, Share, rebuild_backup_key, split_backup_key
from bidroom.opening.store import OpeningShareRow
from bidroom.schedule import DuePass
from bidroom.stores.channels import ChannelListener
from bidroom.stores.redis import store_errors

__all__ = [
    "CEREMONY_ALG",
    "LIVENESS_MS",
    "BackupCeremonies",
    "BackupOutcome",
    "OfficialCandidate",
    "backup_status",
    "check_officials",
    "create_backup_key",
    "open_from_ceremony",
    "seal_to_ceremony",
]

log = logging.getLogger("bidroom.openings.backup")

CEREMONY_ALG: Final = "X25519-HKDF-SHA256+A256GCM"
LIVENESS_MS: Final = 30_000  # a holder that has not refreshed its key for this long is gone
OUTCOME_WAIT_S: Final = 30.0  # the k-th submitter waits this long for another process's rebuild
_INFO: Final = b"bidroom backup ceremony v1"


# =============================================================================== creating


@dataclass(frozen=True, slots=True)
class OfficialCandidate:
    """A named official as the caller found it: the user, its organisation, its certificate."""

    user_id: str
    org_id: str
    certificate_pem: str


def check_officials(k: int, officials: Sequence[OfficialCandidate], trust: TrustStore, *,
                    now_ms: int) -> list[x509.Certificate]:
    """The officials' encryption certificates, each verified at ``now_ms`` and naming the
    official's own organisation. Refused: ``threshold_too_low`` (k < 2: one official alone
    would hold the key), ``official_certificate_mismatch``, ``officials_share_a_key`` (one
    certificate named k or more times: its holder alone would hold k shares)."""
    if k < MIN_THRESHOLD:
        raise ValidationError(
            f"k must be at least {MIN_THRESHOLD}: with k = 1 every official alone holds the "
            "whole backup key and could open every bid", code="threshold_too_low",
            field="backup.k", minimum=MIN_THRESHOLD)
    certificates: list[x509.Certificate] = []
    for official in officials:
        cert = load_certificate(official.certificate_pem)
        identity = trust.verify(cert, at=ms_to_datetime(now_ms), usage="encryption")
        if identity.org_id != official.org_id:
            raise ValidationError(
                f"the certificate of {official.user_id} names {identity.name}, not the "
                "official's organisation", code="official_certificate_mismatch",
                user_id=official.user_id)
        certificates.append(cert)
    fingerprints = [certificate_fingerprint(c) for c in certificates]
    if any(fingerprints.count(f) >= k for f in fingerprints):
        raise ValidationError(
            "k or more officials share one certificate: its holder alone could rebuild the "
            "backup key", code="officials_share_a_key")
    return certificates


def create_backup_key(ca: PlatformCA, opening_id: str, policy: BackupPolicy,
                      certificates: Sequence[x509.Certificate], *,
                      now: datetime) -> tuple[str, list[OpeningShareRow]]:
    """(CPU: run in a thread) Generate the backup key, split it k-of-n, seal each share to its
    official and drop the private key. Returns the certificate (PEM) and the sealed shares."""
    key = BackupKey.generate(ca, now=now, org_id=opening_id[:64])
    shares = split_backup_key(key.private_key_pem, policy.k, policy.n)
    rows = []
    for official, certificate, share in zip(policy.officials, certificates, shares,
                                            strict=True):
        sealed = seal_share(share, certificate)
        rows.append(OpeningShareRow(
            opening_id=opening_id, official_user_id=official,
            certificate_fingerprint=sealed["recipient_fingerprint"], sealed=sealed,
            ceremony_id=None, ceremony_sealed=None, submitted_at_ms=None))
    pem = key.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    del key, shares  # the private key and the plain shares exist nowhere after this
    return pem, rows


# =============================================================================== ceremony crypto


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _context(opening_id: str, ceremony_id: str, official: str) -> bytes:
    return b"\x00".join((_INFO, opening_id.encode(), ceremony_id.encode(), official.encode()))


def _derive(shared: bytes, context: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=context + ephemeral + recipient).derive(shared)


def _raw(public_key: X25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal_to_ceremony(share: str, public_key_b64: str, *, opening_id: str, ceremony_id: str,
                     official: str) -> dict[str, Any]:
    """Seal a share text to the ceremony's X25519 public key (ECIES: an ephemeral key,
    HKDF-SHA256, AES-256-GCM), bound to the opening, the ceremony and the official."""
    recipient = X25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = _raw(ephemeral.public_key())
    context = _context(opening_id, ceremony_id, official)
    key = _derive(ephemeral.exchange(recipient), context, ephemeral_raw, _raw(recipient))
    nonce = secrets.token_bytes(12)
    ciphertext = AESGCM(key).encrypt(nonce, share.encode("utf-8"), context)
    return {"v": 1, "alg": CEREMONY_ALG, "ceremony_id": ceremony_id,
            "ephemeral_public": _b64(ephemeral_raw), "nonce": _b64(nonce),
            "ciphertext": _b64(ciphertext)}


def open_from_ceremony(sealed: Mapping[str, Any], private_key: X25519PrivateKey, *,
                       opening_id: str, ceremony_id: str, official: str) -> str:
    """The share text of a submission, with the ceremony's private key; ``bad_share`` when it
    was sealed to another key, for another official or ceremony, or changed."""
    try:
        ephemeral_raw = base64.b64decode(str(sealed["ephemeral_public"]), validate=True)
        nonce = base64.b64decode(str(sealed["nonce"]), validate=True)
        ciphertext = base64.b64decode(str(sealed["ciphertext"]), validate=True)
        ephemeral = X25519PublicKey.from_public_bytes(ephemeral_raw)
    except (KeyError, binascii.Error, ValueError) as exc:
        raise ValidationError("a submitted share is damaged", code="bad_share") from exc
    context = _context(opening_id, ceremony_id, official)
    key = _derive(private_key.exchange(ephemeral), context, ephemeral_raw,
                  _raw(private_key.public_key()))
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, context).decode("utf-8")
    except InvalidTag:
        raise ValidationError("a submitted share does not open with the ceremony's key",
                              code="bad_share") from None


# =============================================================================== status


def backup_status(state: OpeningState, *, holder_alive: bool | None) -> dict[str, Any]:
    """Where the backup key's ceremony stands, for the officials and the agency.

    ``state``: ``waiting_for_window``, ``collecting`` (fewer than k shares in the current
    ceremony), ``rebuilding`` (k shares, the holder is at work), ``ceremony_restarted`` (the
    holder of a ceremony was lost: the officials in ``resubmit`` must submit again), ``rebuilt``
    (the key was rebuilt, used and dropped), ``closed`` (the record was revealed, or the opening
    failed, without a rebuild). ``holder_alive``: whether the current ceremony's holder is still
    there (None: not asked)."""
    s = state.settings
    backup = s.backup
    assert backup is not None
    ceremony = state.ceremony
    resubmit = set(state.resubmit)
    lost = ceremony is not None and holder_alive is False
    if lost:
        resubmit |= set(state.shares_submitted)
    if state.backup_closed_at_ms is not None:
        phase = "rebuilt"
    elif state.revealed or state.failed:
        phase = "closed"
    elif state.window_ended_at_ms is None:
        phase = "waiting_for_window"
    elif resubmit:
        phase = "ceremony_restarted"
    elif len(state.shares_submitted) >= backup.k or state.backup_rebuilt_at_ms is not None:
        phase = "rebuilding"
    else:
        phase = "collecting"
    submitted = [] if lost else sorted(state.shares_submitted)
    return {
        "state": phase,
        "k": backup.k, "n": backup.n,
        "submitted": len(submitted), "needed": backup.k,
        "submitted_by": submitted,
        "resubmit": sorted(resubmit),
        "ceremony_id": None if ceremony is None else ceremony.ceremony_id,
        "ceremony_restarts": state.ceremony_restarts,
        "accepted_from_ms": s.window_ends_ms,
        "rebuilt": state.backup_closed_at_ms is not None or state.backup_rebuilt_at_ms is not None,
        "opened_by_backup": [sid for sid in state.bidders if state.bids[sid].by_backup],
    }


# =============================================================================== the ceremony


@dataclass(frozen=True, slots=True)
class BackupOutcome:
    """What came of a submitted share: the decision (``ShareSubmitted`` or a refusal) and the
    ceremony's status after it."""

    decision: Decision
    status: dict[str, Any]


@dataclass
class _Held:
    """A ceremony this process holds. ``key`` is None once the rebuild has been tried."""

    ceremony_id: str
    key: X25519PrivateKey | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    started: bool = False  # in the log: until then no check may take it for a stale one


def _submit_command(official: str,
                    ceremony_id: str) -> Callable[[OpeningState, int], SubmitShare]:
    return lambda _state, now: SubmitShare(official, now, ceremony_id)


def process_name() -> str:
    """This process, for the log: host, pid and a random tag (a restarted pid differs)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}"


class BackupCeremonies(DuePass):
    """One process's part in the backup key's ceremonies (see the module docstring)."""

    def __init__(self, runner: OpeningRunner, *, prefix: str = "bidroom",
                 liveness_ms: int = LIVENESS_MS, poll_ms: int = 1_000,
                 outcome_wait_s: float = OUTCOME_WAIT_S) -> None:
        super().__init__(now_ms=runner.now_ms, poll_ms=poll_ms, name="bidroom-backup")
        self.runner = runner
        self.redis = runner.redis
        self.name = process_name()
        self._prefix = prefix
        self._liveness_ms = liveness_ms
        self._outcome_wait_s = outcome_wait_s
        self._held: dict[str, _Held] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._channels = ChannelListener(self.redis, name="backup", on_message=self._doorbell)

    # ------------------------------------------------------------------ lifecycle

    async def start_all(self) -> None:
        await self._channels.start()
        self.start()

    async def stop(self) -> None:
        """Stop; every ceremony this process holds dies with it (its key is dropped)."""
        await super().stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for opening_id in list(self._held):
            with contextlib.suppress(BidroomError, OSError, Exception):
                await self._release(opening_id)
        await self._channels.stop()

    def holds(self, opening_id: str) -> str | None:
        """The id of the ceremony of this opening that this process holds, if any."""
        held = self._held.get(opening_id)
        return None if held is None else held.ceremony_id

    def liveness_key(self, opening_id: str) -> str:
        return f"{self._prefix}:op:ceremony:{{o:{opening_id}}}"

    # ------------------------------------------------------------------ reading

    async def holder_alive(self, state: OpeningState) -> bool | None:
        """Whether the current ceremony's holder is still there (None: no ceremony)."""
        ceremony = state.ceremony
        if ceremony is None:
            return None
        opening_id = state.settings.opening_id
        if self.holds(opening_id) == ceremony.ceremony_id:
            return True
        with store_errors("Redis"):
            value = await self.redis.get(self.liveness_key(opening_id))
        if isinstance(value, bytes):
            value = value.decode()
        return bool(value == ceremony.ceremony_id)

    async def status(self, opening_id: str) -> dict[str, Any]:
        state = await self.runner.state(opening_id)
        if state.settings.backup is None:
            raise ConflictError("this opening has no backup key", code="no_backup")
        return backup_status(state, holder_alive=await self.holder_alive(state))

    # ------------------------------------------------------------------ submitting

    async def submit(self, opening_id: str, official: str, content_key: bytes) -> BackupOutcome:
        """An official's share, opened with the content key it unwrapped on its own machine
        (after the window only), kept sealed to the current ceremony; with k shares the
        ceremony's holder rebuilds the key. Refusals come back in the decision."""
        state = await self.runner.state(opening_id)
        now = await self.runner.now_ms()
        refused = await self._refused_now(state, official, now)
        if refused is not None:
            return await self._outcome(opening_id, Decision(state, (refused,)))
        row = await self.runner.store.share(opening_id, official)
        if row is None:
            raise NotFoundError("no share is kept for this official", code="not_an_official")
        share: str | None = open_share(row.sealed, content_key)  # bad_key_or_tampered
        decision: Decision | None = None
        try:
            for _ in range(5):  # a ceremony restarted meanwhile: seal to the new one
                ceremony = await self._live_ceremony(opening_id)
                if isinstance(ceremony, CommandRefused):
                    decision = Decision(await self.runner.state(opening_id), (ceremony,))
                    break
                ceremony_id, public_key = ceremony
                assert share is not None
                sealed = seal_to_ceremony(share, public_key, opening_id=opening_id,
                                          ceremony_id=ceremony_id, official=official)
                at = await self.runner.now_ms()
                await self.runner.store.keep_submission(opening_id, official, ceremony_id,
                                                        sealed, at)
                decision = await self.runner.execute(
                    opening_id, _submit_command(official, ceremony_id), actor=official)
                reason = decision.refusal.reason if decision.refusal else None
                if reason is not None and reason != "share_already_submitted":
                    await self.runner.store.erase_submission(opening_id, official, ceremony_id)
                if reason != "ceremony_restarted":
                    break
        finally:
            share = None  # the plain share lives only for this request
        assert decision is not None
        if decision.refusal is None:
            backup = decision.state.settings.backup
            ceremony_now = decision.state.ceremony
            if (backup is not None and ceremony_now is not None
                    and len(decision.state.shares_submitted) >= backup.k):
                if self.holds(opening_id) == ceremony_now.ceremony_id:
                    await self.rebuild(opening_id, ceremony_now.ceremony_id)
                else:
                    await self._await_outcome(opening_id, ceremony_now.ceremony_id)
        return await self._outcome(opening_id, decision)

    async def _refused_now(self, state: OpeningState, official: str,
                           now: int) -> CommandRefused | None:
        """A dry run of the time rules and the share's own checks, before any crypto. A
        rebuild whose holder was lost before it closed the ceremony takes shares again."""
        probe = self.runner.precheck(state, SubmitShare(official, now, "\x00probe"))
        if probe is None or probe.reason == "ceremony_restarted":
            return None
        if probe.reason == "rebuild_in_progress" and await self.holder_alive(state) is False:
            return None
        return probe

    async def _outcome(self, opening_id: str, decision: Decision) -> BackupOutcome:
        return BackupOutcome(decision, await self.status(opening_id))

    async def _await_outcome(self, opening_id: str, ceremony_id: str) -> None:
        """Wait (bounded) for another process's holder to rebuild: the log says when."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._outcome_wait_s
        while loop.time() < deadline:
            state = await self.runner.state(opening_id)
            if state.ceremony is None or state.ceremony.ceremony_id != ceremony_id:
                return  # closed, failed or restarted
            if await self.holder_alive(state) is False:
                return
            await asyncio.sleep(0.05)

    async def _live_ceremony(self, opening_id: str) -> tuple[str, str] | CommandRefused:
        """The current ceremony (id, public key) if its holder is alive; else start one here
        (replacing a lost one)."""
        for _ in range(5):
            state = await self.runner.state(opening_id)
            ceremony = state.ceremony
            if ceremony is not None and await self.holder_alive(state):
                return ceremony.ceremony_id, ceremony.public_key
            started = await self._start(opening_id, None if ceremony is None
                                        else ceremony.ceremony_id)
            if isinstance(started, CommandRefused) and started.reason == "ceremony_changed":
                continue  # another process was first: use its ceremony
            return started
        return CommandRefused("start_ceremony", "ceremony_changed")

    async def _start(self, opening_id: str,
                     replaces: str | None) -> tuple[str, str] | CommandRefused:
        key = X25519PrivateKey.generate()
        public_key = _b64(_raw(key.public_key()))
        ceremony_id = f"cer_{secrets.token_hex(8)}"
        held = self._held[opening_id] = _Held(ceremony_id, key)
        await self._channels.add(self.runner.channel(opening_id), opening_id)
        await self._refresh(opening_id, ceremony_id)  # alive before anyone can see it
        decision = await self.runner.execute(
            opening_id,
            lambda s, at: StartCeremony(ceremony_id, public_key, self.name, replaces, at),
            actor=None)
        if decision.refusal is not None:
            await self._release(opening_id, ceremony_id)
            return decision.refusal
        held.started = True
        if replaces is not None:
            log.warning("opening %s: backup ceremony %s lost its holder; %s restarts it",
                        opening_id, replaces, ceremony_id)
        return ceremony_id, public_key

    async def _refresh(self, opening_id: str, ceremony_id: str) -> None:
        with store_errors("Redis"):
            await self.redis.set(self.liveness_key(opening_id), ceremony_id,
                                 px=self._liveness_ms)

    async def _release(self, opening_id: str, ceremony_id: str | None = None) -> None:
        """Forget a held ceremony: its key, its liveness key, its subscription."""
        held = self._held.get(opening_id)
        if held is None or (ceremony_id is not None and held.ceremony_id != ceremony_id):
            return
        del self._held[opening_id]
        held.key = None
        with contextlib.suppress(BidroomError, OSError), store_errors("Redis"):
            value = await self.redis.get(self.liveness_key(opening_id))
            if isinstance(value, bytes):
                value = value.decode()
            if value == held.ceremony_id:
                await self.redis.delete(self.liveness_key(opening_id))
        await self._channels.remove(self.runner.channel(opening_id))

    # ------------------------------------------------------------------ the holder's side

    async def run_once(self) -> int | None:
        """Keep every held ceremony alive, and act on it should a doorbell have been lost."""
        for opening_id, held in list(self._held.items()):
            try:
                await self._refresh(opening_id, held.ceremony_id)
            except (BidroomError, OSError) as exc:
                log.warning("backup ceremony of %s: %s", opening_id, exc)
            self._spawn_check(opening_id)
        return None

    async def _doorbell(self, opening_id: str, _payload: bytes) -> None:
        self._spawn_check(opening_id)

    def _spawn_check(self, opening_id: str) -> None:
        """Check a held ceremony in a task of its own: a rebuild (opening large bids) must not
        hold up the liveness refreshes of the loop or the pub/sub listener."""
        if opening_id in self._held:
            task = asyncio.create_task(self._check(opening_id),
                                       name=f"bidroom-backup-{opening_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _check(self, opening_id: str) -> None:
        held = self._held.get(opening_id)
        if held is None or not held.started or held.lock.locked():
            return
        try:
            await self._check_held(opening_id, held)
        except (BidroomError, OSError) as exc:
            log.warning("backup ceremony of %s: %s", opening_id, exc)

    async def _check_held(self, opening_id: str, held: _Held) -> None:
        state = await self.runner.state(opening_id)
        if state.ceremony is None or state.ceremony.ceremony_id != held.ceremony_id:
            await self._release(opening_id, held.ceremony_id)  # ended or replaced
            return
        backup = state.settings.backup
        if backup is not None and len(state.shares_submitted) >= backup.k:
            await self.rebuild(opening_id, held.ceremony_id)

    async def rebuild(self, opening_id: str, ceremony_id: str) -> None:
        """(the holder) Open the k submissions, rebuild the key, open the platform-fault bids,
        drop everything, close the ceremony. Once per ceremony, whoever rings."""
        held = self._held.get(opening_id)
        if held is None or held.ceremony_id != ceremony_id:
            return
        async with held.lock:
            if held.key is None:
                return  # done already (or under way in the task that set it None)
            key, held.key = held.key, None  # the ceremony's key serves this one rebuild
            state = await self.runner.state(opening_id)
            if (state.ceremony is None or state.ceremony.ceremony_id != ceremony_id
                    or state.backup_rebuilt_at_ms is not None):
                await self._release(opening_id, ceremony_id)
                return
            officials = sorted(state.shares_submitted)
            backup_key: rsa.RSAPrivateKey | None = None
            failure: str | None = None
            try:
                rows = {r.official_user_id: r for r in await self.runner.store.shares(opening_id)}
                texts: list[str | Share] = []
                for official in officials:
                    row = rows.get(official)
                    if row is None or row.ceremony_id != ceremony_id or not row.ceremony_sealed:
                        raise ValidationError(f"the submission of {official} is missing",
                                              code="bad_share")
                    texts.append(open_from_ceremony(row.ceremony_sealed, key,
                                                    opening_id=opening_id,
                                                    ceremony_id=ceremony_id, official=official))
                backup_key = await asyncio.to_thread(rebuild_backup_key, texts)
                texts.clear()
            except BidroomError as exc:
                failure = exc.code
            finally:
                del key
                await self.runner.store.erase_submissions(opening_id)
            decision = await self.runner.execute(
                opening_id, lambda s, at: RecordBackupRebuild(failure is None, at, failure),
                actor=None)
            try:
                if backup_key is not None and decision.refusal is None:
                    await self._open_fault_bids(opening_id, ceremony_id, backup_key)
            finally:
                backup_key = None  # the rebuilt key is used once and dropped
                await self._release(opening_id, ceremony_id)

    async def _open_fault_bids(self, opening_id: str, ceremony_id: str,
                               key: rsa.RSAPrivateKey) -> None:
        row = await self.runner.store.get(opening_id)
        if row is None or not row.backup_certificate_pem:
            raise ConflictError("the opening's backup certificate is missing", code="no_backup")
        certificate = load_certificate(row.backup_certificate_pem)
        opened: list[str] = []
        failed: list[str] = []
        state = await self.runner.state(opening_id)
        for supplier_id in backup_openable(state):
            if await self.open_with_backup(opening_id, supplier_id, key, certificate):
                opened.append(supplier_id)
            else:
                failed.append(supplier_id)
        await self.runner.execute(
            opening_id,
            lambda s, at: CloseCeremony(ceremony_id, tuple(opened), tuple(failed), at),
            actor=None)

    async def open_with_backup(self, opening_id: str, supplier_id: str, key: rsa.RSAPrivateKey,
                               certificate: x509.Certificate) -> bool:
        """Open one bid with the rebuilt key, **only** if the rules allow it now (checked
        before anything is decrypted: a revoked or withdrawn bid is never opened, not even
        into a scratch directory), and record it."""
        runner = self.runner
        state = await runner.state(opening_id)
        reason = can_open_with_backup(state, supplier_id)
        if reason is not None:
            await runner.note(opening_id, "backup_open_refused",
                              {"supplier_id": supplier_id, "reason": reason}, actor=None)
            return False
        bid = await runner.store.current_bid(opening_id, supplier_id)
        out_dir = runner.files.opened_dir(opening_id, supplier_id)
        try:
            if bid is None or bid.sha256 != state.bids[supplier_id].sha256:
                raise NotFoundError("the bid's upload record is missing", code="no_bid")
            registered = await runner.registered_signers(supplier_id)
            current = bid

            def work() -> tuple[dict[str, Any], dict[str, Any]]:
                path = runner.files.verify(current.storage_path, current.sha256)
                recipient = recipient_for(inspect_envelope(path), certificate)
                content_key = unwrap_content_key(recipient.encrypted_key, key)
                return runner.open_own(current, content_key, out_dir, registered)

            form, signer = await asyncio.to_thread(work)
        except BidroomError as exc:
            await runner.note(opening_id, "backup_open_failed",
                              {"supplier_id": supplier_id, "reason": exc.code,
                               "message": exc.message}, actor=None)
            return False
        decision = await runner.execute(
            opening_id, lambda s, at: RecordBackupOpening(supplier_id, form, signer, at),
            actor=None)
        if decision.refusal is not None:  # the rules changed meanwhile (唱标): not opened
            shutil.rmtree(out_dir, ignore_errors=True)
            return False
        return True
