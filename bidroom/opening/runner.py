"""The async shell around the opening session: decide, persist, publish, schedule, decrypt.

``OpeningRunner.execute(opening_id, make_command)`` is the one way an opening changes: it reads
the state (a process-local cache brought up to date from the opening log), reads the server
clock, builds the command, runs the pure ``session.decide`` and appends the events to the
hash-chained log in SQL with a compare-and-set on the opening's sequence number. When another
process appended first, it decides again on the fresh state; so every event is stored exactly
once, whichever process (HTTP request, scheduler tick) got there. After the append it
publishes the new sequence number on the opening's Redis channel (the hall's fan-out reads the
events from the log) and puts the next due instant on the schedule.

The schedule is one Redis sorted set (member: opening id, score: the instant its next time rule
applies: the deadline, then the end of the decryption window). Every app process runs the
loop; a ``Tick`` taken by two processes at once is decided twice but stored once.

Decryption (``decrypt``): the owner submits the content key it unwrapped on its own machine.
The runner re-hashes the stored ciphertext (``ciphertext_corrupted`` if it changed), opens it
with ``envelope.open_envelope`` in a worker thread (CPU and disk work) with the platform's
trust store at the bid's upload time, checks that the signer is the bidder, and records the
outcome: the opening form goes into the (still hidden) record, a failure is recorded with its
reason and may be retried within the window.

Results leave the core through a hook, not an import: ``on_change`` (set by the composition
root, ``web/services.py``) is awaited after every append with the opening's new state, so the
market can react at once (the opening's bids closed, its record confirmed). A hook that fails
or never runs (the process died after the append) loses nothing: the log is the truth and the
market's reconciliation reads it again (docs/procurement.md, "Feeding the core").

The backup key's ceremony is ``bidroom.opening.backup`` (it uses ``execute``, ``open_own`` and
``registered_signers`` of this runner).

Must not import: market, web.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from redis.exceptions import RedisError

from bidroom.errors import BidroomError, ConflictError, NotFoundError, StoreError
from bidroom.errors import ValidationError as BidroomValidationError
from bidroom.opening.ca import (
    CA_CERT_FILE,
    CRL_FILE,
    PlatformCA,
    TrustStore,
    load_certificate,
)
from bidroom.opening.envelope import open_envelope
from bidroom.opening.session import (
    BidRevoked,
    BidsClosed,
    Command,
    CommandRefused,
    Decision,
    DecryptionWindowEnded,
    Invite,
    Note,
    OpeningFailed,
    OpeningSettings,
    OpeningState,
    RecordDecryption,
    Tick,
    can_decrypt,
    created,
    decide,
    evolve,
    next_due,
    phase_at,
    replay,
)
from bidroom.opening.store import (
    CiphertextFiles,
    LogEntry,
    OpeningBidRow,
    OpeningRow,
    OpeningShareRow,
    OpeningStore,
)
from bidroom.schedule import DuePass
from bidroom.stores.redis import RedisClient, store_errors

__all__ = [
    "CA_DIR",
    "ROOTS_DIR",
    "DecryptOutcome",
    "OpeningRunner",
    "load_or_init_ca",
    "ms_to_datetime",
    "opening_channel",
    "server_trust_store",
]

log = logging.getLogger("bidroom.openings")

NowMs = Callable[[], Awaitable[int]]
TrustSource = Callable[[], TrustStore]
MakeCommand = Callable[[OpeningState, int], Command]
OnChange = Callable[[str, OpeningState], Awaitable[None]]
AttachBid = Callable[[Decision], OpeningBidRow | None]

CA_DIR: Final = "ca"  # DATA_DIR/ca: the platform CA (``bidroom ca init`` uses the same)
ROOTS_DIR: Final = "roots"  # DATA_DIR/ca/roots/*.pem: external CA roots the platform trusts
MAX_ATTEMPTS: Final = 50
MAX_BATCH: Final = 256  # commands decided and appended in one transaction at most


@dataclass
class _Waiting:
    make: MakeCommand
    actor: str | None
    attach: AttachBid | None
    result: asyncio.Future[Decision]

_TIMED: Final = (BidsClosed, OpeningFailed, DecryptionWindowEnded, BidRevoked)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def opening_channel(opening_id: str, prefix: str = "bidroom") -> str:
    """The Redis pub/sub channel announcing an opening's new log entries."""
    return f"{prefix}:op:ev:{{o:{opening_id}}}"


def load_or_init_ca(directory: Path, *, now_ms: int) -> PlatformCA:
    """The platform CA in ``directory``, created on first use (several processes may race:
    the loser loads the winner's CA)."""
    for _ in range(50):
        try:
            return PlatformCA.load(directory)
        except NotFoundError:
            pass
        except BidroomValidationError:
            pass  # half-written by a racing process: wait for it
        try:
            return PlatformCA.init(directory, now=ms_to_datetime(now_ms))
        except ConflictError:
            time.sleep(0.05)  # another process is writing it right now
    return PlatformCA.load(directory)


def server_trust_store(data_dir: Path) -> TrustStore:
    """What the server trusts: the platform CA (with its current CRL) and every external root
    in ``DATA_DIR/ca/roots/*.pem`` (CRLs of those CAs: ``*.crl`` / ``*.crl.pem`` there).

    Built from the files, then reused while none of them changed (their names, sizes and
    modification times): a decryption checks the trust store, and building it afresh each time
    was most of a decryption's CPU in B5 (docs/benchmarks.md). A revocation rewrites the CRL,
    so the next check sees it. The store returned is shared: callers only read it.
    """
    ca_dir = Path(data_dir) / CA_DIR
    roots = ca_dir / ROOTS_DIR
    files = [ca_dir / CA_CERT_FILE, ca_dir / CRL_FILE]
    if roots.is_dir():
        files += sorted(roots.iterdir())
    stamp = tuple(_stat_stamp(path) for path in files)
    key = str(ca_dir.resolve())
    cached = _TRUST_CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    # the certificate and CRL only: the CA's private key is not needed to trust it
    trust = TrustStore([load_certificate((ca_dir / CA_CERT_FILE).read_bytes())])
    trust.add_crl((ca_dir / CRL_FILE).read_bytes())
    if roots.is_dir():
        for path in sorted(roots.iterdir()):
            name = path.name
            if name.endswith((".crl", ".crl.pem")):
                continue
            if name.endswith((".pem", ".crt", ".cer")):
                trust.import_root(path.read_bytes())
        for path in sorted(roots.iterdir()):
            if path.name.endswith((".crl", ".crl.pem")):
                trust.add_crl(path.read_bytes())
    _TRUST_CACHE[key] = (stamp, trust)
    return trust


_TRUST_CACHE: dict[str, tuple[tuple[tuple[str, int, int], ...], TrustStore]] = {}


def _stat_stamp(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.name == CA_CERT_FILE:
            raise NotFoundError(f"no CA in {path.parent}: run `bidroom ca init` first",
                                code="no_ca") from None
        return (path.name, -1, -1)
    return (path.name, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class DecryptOutcome:
    """What came of a submitted content key: the decision (``BidDecrypted``,
    ``DecryptionFailed`` or a refusal) and, on failure, the reason and a message."""

    decision: Decision
    failure: str | None = None
    message: str | None = None


@contextlib.contextmanager
def _cleanup_on_error(directory: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


class OpeningRunner(DuePass):
    def __init__(
        self,
        store: OpeningStore,
        redis: RedisClient,
        files: CiphertextFiles,
        *,
        now_ms: NowMs,
        trust: TrustSource,
        poll_ms: int = 1_000,
        prefix: str = "bidroom",
    ) -> None:
        super().__init__(now_ms=now_ms, poll_ms=poll_ms, name="bidroom-openings")
        self.store = store
        self.redis = redis
        self.files = files
        self._trust = trust
        self._prefix = prefix
        self.schedule_key = f"{prefix}:openings:schedule"
        self._states: dict[str, OpeningState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, list[_Waiting]] = {}  # commands waiting for the group commit
        #: Awaited after every append (opening id, new state); wired by the composition root.
        self.on_change: OnChange | None = None

    # ------------------------------------------------------------------ basics

    async def now_ms(self) -> int:
        return await self._now_ms()

    def trust_store(self) -> TrustStore:
        return self._trust()

    def channel(self, opening_id: str) -> str:
        return opening_channel(opening_id, self._prefix)

    def _lock(self, opening_id: str) -> asyncio.Lock:
        lock = self._locks.get(opening_id)
        if lock is None:
            lock = self._locks[opening_id] = asyncio.Lock()
        return lock

    async def state(self, opening_id: str) -> OpeningState:
        """The opening's state as stored now (``opening_not_found`` if there is none)."""
        cached = self._states.get(opening_id)
        if cached is None:
            events = await self.store.events(opening_id)
            if not events:
                raise NotFoundError(f"opening {opening_id} not found",
                                    code="opening_not_found", opening_id=opening_id)
            state = replay(events)
        else:
            state = cached
            for event in await self.store.events(opening_id, cached.seq):
                state = evolve(state, event)
        self._states[opening_id] = state
        return state

    # ------------------------------------------------------------------ creating

    async def create(
        self,
        row: OpeningRow,
        settings: OpeningSettings,
        invited: Sequence[str],
        *,
        actor: str,
        now_ms: int,
        shares: Sequence[OpeningShareRow] = (),
    ) -> OpeningState:
        first = created(settings, tuple(invited), now_ms)
        row.status = phase_at(replay([first]), now_ms).value
        await self.store.create(row, invited, first, actor=actor, shares=shares)
        state = replay([first])
        self._states[row.id] = state
        await self._schedule(row.id, state)
        return state

    # ------------------------------------------------------------------ deciding

    def precheck(self, state: OpeningState, command: Command) -> CommandRefused | None:
        """The refusal the command would get now (a dry run of ``decide``), if any."""
        return decide(state, command).refusal

    async def execute(
        self,
        opening_id: str,
        make: MakeCommand,
        *,
        actor: str | None,
        attach: AttachBid | None = None,
    ) -> Decision:
        """Decide a command on the current state and store its events exactly once.

        Group commit: commands that arrive while the opening's previous append is in flight
        (a burst of decryptions, B5 in docs/benchmarks.md) are decided one after the other on
        the same state and appended in one transaction, where each used to wait for its own
        transaction and fsync. Order and outcomes are those of deciding them one by one; a
        command with an upload (``attach``) is appended on its own.
        """
        waiting = _Waiting(make, actor, attach, asyncio.get_running_loop().create_future())
        queue = self._pending.setdefault(opening_id, [])
        queue.append(waiting)
        try:
            async with self._lock(opening_id):
                while not waiting.result.done():  # ours may be in a later batch (an upload)
                    batch = self._take_batch(opening_id)
                    # shielded: a cancelled caller must not leave the others of its batch
                    # waiting
                    await asyncio.shield(self._run_batch(opening_id, batch))
        except asyncio.CancelledError:
            if waiting in queue:  # cancelled before its turn: it is not decided at all
                queue.remove(waiting)
            raise
        return waiting.result.result()

    async def _run_batch(self, opening_id: str, batch: list[_Waiting]) -> None:
        try:
            await self._decide_and_append(opening_id, batch)
        except Exception as exc:  # a store failure: every command of the batch gets it
            for item in batch:
                if not item.result.done():
                    item.result.set_exception(exc)

    def _take_batch(self, opening_id: str) -> list[_Waiting]:
        """The waiting commands, oldest first, up to the first upload (appended alone)."""
        queue = self._pending.get(opening_id, [])
        batch: list[_Waiting] = []
        while queue:
            if queue[0].attach is not None and batch:
                break
            batch.append(queue.pop(0))
            if batch[-1].attach is not None or len(batch) >= MAX_BATCH:
                break
        if not queue:
            self._pending.pop(opening_id, None)
        return batch

    async def _decide_and_append(self, opening_id: str, batch: list[_Waiting]) -> None:
        for _ in range(MAX_ATTEMPTS):
            state = await self.state(opening_id)
            now = await self._now_ms()
            current = state
            outcomes: list[Decision | Exception] = []
            entries: list[LogEntry] = []
            new_bid: OpeningBidRow | None = None
            for item in batch:
                try:  # one command's bad input fails that command, not its batch
                    decision = decide(current, item.make(current, now))
                    happened = [e for e in decision.events
                                if not isinstance(e, CommandRefused)]
                    if happened and item.attach is not None:
                        new_bid = item.attach(decision)
                except Exception as exc:
                    outcomes.append(exc)
                    continue
                entries += [LogEntry(e, None if isinstance(e, _TIMED) else item.actor)
                            for e in happened]
                outcomes.append(decision)
                current = decision.state
            stored = not entries or await self.store.append(
                opening_id, state.seq, entries, status=phase_at(current, now).value,
                new_bid=new_bid)
            if stored:
                if entries:
                    self._states[opening_id] = current
                    await self._after_append(opening_id, current)
                for item, outcome in zip(batch, outcomes, strict=True):
                    if isinstance(outcome, Exception):
                        item.result.set_exception(outcome)
                    else:
                        item.result.set_result(outcome)
                return
            self._states.pop(opening_id, None)  # another writer was first: reload
            await asyncio.sleep(0)
        raise StoreError(f"opening {opening_id}: too much contention, try again",
                         code="store_unavailable")

    async def _after_append(self, opening_id: str, state: OpeningState) -> None:
        try:
            with store_errors("Redis"):
                await self.redis.publish(self.channel(opening_id), str(state.seq).encode())
            await self._schedule(opening_id, state)
        except (StoreError, RedisError) as exc:
            # The log is the truth: the hall polls it, and the scheduler re-reads the state.
            log.warning("opening %s: publishing/scheduling failed (%s)", opening_id, exc)
        if self.on_change is not None:
            try:
                await self.on_change(opening_id, state)
            except Exception as exc:  # the hook's reader reconciles from the log later
                log.warning("opening %s: the change hook failed (%s)", opening_id, exc)

    async def invite(self, opening_id: str, supplier_id: str, *, by: str,
                     actor: str | None) -> Decision:
        """Invite one more supplier before the deadline (``Invite``; a refusal such as
        ``already_invited`` or ``deadline_passed`` comes back in the decision)."""
        return await self.execute(opening_id, lambda s, now: Invite(supplier_id, by, now),
                                  actor=actor)

    async def note(self, opening_id: str, what: str, details: dict[str, Any], *,
                   actor: str | None) -> Decision:
        """Keep a step in the log that changes nothing (a key handed out, a record export)."""
        return await self.execute(opening_id, lambda s, now: Note(what, details, now),
                                  actor=actor)

    # ------------------------------------------------------------------ the schedule

    async def _schedule(self, opening_id: str, state: OpeningState) -> None:
        due = next_due(state)
        with store_errors("Redis"):
            if due is None:
                await self.redis.zrem(self.schedule_key, opening_id)
            else:
                await self.redis.zadd(self.schedule_key, {opening_id: due})
        self.wake()

    async def run_once(self) -> int | None:
        """Apply every due time rule; return the next due instant (None: nothing scheduled)."""
        now = await self._now_ms()
        with store_errors("Redis"):
            due = await self.redis.zrangebyscore(self.schedule_key, "-inf", now, start=0,
                                                 num=100)
        for raw in due:
            opening_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            try:
                decision = await self.execute(opening_id, lambda s, at: Tick(at), actor=None)
            except NotFoundError:
                with store_errors("Redis"):
                    await self.redis.zrem(self.schedule_key, opening_id)
                continue
            following = next_due(decision.state)
            with store_errors("Redis"):
                if following is None:
                    await self.redis.zrem(self.schedule_key, opening_id)
                else:
                    await self.redis.zadd(self.schedule_key,
                                          {opening_id: max(following, now + 1)})
        with store_errors("Redis"):
            head = await self.redis.zrange(self.schedule_key, 0, 0, withscores=True)
        return int(head[0][1]) if head else None

    # ------------------------------------------------------------------ decrypting

    async def decrypt(self, opening_id: str, supplier_id: str, content_key: bytes, *,
                      actor: str | None) -> DecryptOutcome:
        """Open the supplier's bid with the content key it unwrapped; record the outcome."""
        state = await self.state(opening_id)
        now = await self._now_ms()
        refusal = can_decrypt(state, supplier_id, now)
        if refusal is not None:
            return DecryptOutcome(Decision(state, (CommandRefused("decrypt", refusal),)))
        bid = await self.store.current_bid(opening_id, supplier_id)
        if bid is None or bid.sha256 != state.bids[supplier_id].sha256:
            raise StoreError("the bid's upload record is missing", code="store_unavailable")
        out_dir = self.files.opened_dir(opening_id, supplier_id)
        failure: str | None = None
        message: str | None = None
        form: dict[str, Any] | None = None
        signer: dict[str, Any] | None = None
        registered = await self.registered_signers(supplier_id)
        try:
            form, signer = await asyncio.to_thread(self.open_own, bid, content_key, out_dir,
                                                   registered)
        except BidroomError as exc:
            failure, message = exc.code, exc.message
            shutil.rmtree(out_dir, ignore_errors=True)
        command = RecordDecryption(supplier_id, failure is None, 0, failure, form, signer)
        decision = await self.execute(
            opening_id, lambda s, at: replace(command, now_ms=at), actor=actor)
        if decision.refusal is not None and failure is None:
            shutil.rmtree(out_dir, ignore_errors=True)  # the window closed meanwhile
        return DecryptOutcome(decision, failure, message)

    async def registered_signers(self, supplier_id: str) -> frozenset[str]:
        """Fingerprints of the signing certificates the supplier registered."""
        rows = await self.store.registered_certificates(supplier_id)
        return frozenset(r.signing_fingerprint for r in rows)

    def open_own(self, bid: OpeningBidRow, content_key: bytes, out_dir: Path,
                  registered: frozenset[str] = frozenset(),
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(thread) Re-hash, decrypt, verify the signature and that the signer is the bidder
        (the certificate names the bidder's org id, or is a signing certificate the bidder
        registered)."""
        if bid.receipt.get("sha256") != bid.sha256:
            raise ConflictError("the receipt does not match the stored bid",
                                code="ciphertext_corrupted")
        path = self.files.verify(bid.storage_path, bid.sha256)
        shutil.rmtree(out_dir, ignore_errors=True)
        with _cleanup_on_error(out_dir):
            opened = open_envelope(path, content_key, out_dir, trust=self._trust(),
                                   at=ms_to_datetime(bid.uploaded_at_ms))
            signer = opened.signer
            if signer is None or (signer.org_id != bid.supplier_org_id
                                  and signer.fingerprint not in registered):
                raise BidroomValidationError(
                    "the bid is signed by another organisation's certificate "
                    f"({signer.name if signer else 'unknown'}), not by the bidder",
                    code="signer_mismatch",
                )
        return dict(opened.form), {
            "org_id": signer.org_id,
            "name": signer.name,
            "serial": f"{signer.serial:x}",
            "fingerprint": signer.fingerprint,
            "signing_time_ms": (None if opened.signing_time is None
                                else int(opened.signing_time.timestamp() * 1000)),
            "package_sha256": opened.package_sha256,
            "documents": list(opened.documents),
        }
