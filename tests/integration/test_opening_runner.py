"""The opening runner and store against real Redis and SQL: exactly-once appends across
processes, the schedule, decryption with real sealed bids, the hash-chained log, the hall's
fan-out and catch-up. Time is a fake clock the test moves; nothing sleeps to wait for time."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import ValidationError as BidroomValidationError
from bidroom.opening.ca import PlatformCA
from bidroom.opening.hall import OpeningHall
from bidroom.opening.runner import OpeningRunner, server_trust_store
from bidroom.opening.session import (
    BidDecrypted,
    BidStatus,
    BidSubmitted,
    CommandRefused,
    Decision,
    DecryptionFailed,
    OpeningSettings,
    Reveal,
    SignIn,
    SubmitBid,
    Tick,
)
from bidroom.opening.store import (
    CiphertextFiles,
    OpeningBidRow,
    OpeningLogRow,
    OpeningRow,
    OpeningStore,
    verify_chain,
)
from bidroom.protocol import EncodedMessage, WireFormat
from bidroom.rooms.views import Audience
from bidroom.stores.redis import RedisClient
from tests.opening_kit import MIN, Keys, at, form, issue

T0 = 1_900_000_000_000
DEADLINE = T0 + 60 * MIN
WINDOW_END = DEADLINE + 30 * MIN
SUPPLIERS = ("org_s1", "org_s2", "org_s3", "org_s4")


class FakeClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    async def now(self) -> int:
        return self.ms


@dataclass
class World:
    runner: OpeningRunner
    clock: FakeClock
    store: OpeningStore
    data_dir: Path
    ca: PlatformCA
    keys: dict[str, Keys]
    prefix: str
    sealed: dict[str, Path] = field(default_factory=dict)

    def another_runner(self) -> OpeningRunner:
        """A second process: its own cache, same Redis, same database."""
        return OpeningRunner(self.store, self.runner.redis, self.runner.files,
                             now_ms=self.clock.now, trust=lambda: server_trust_store(
                                 self.data_dir), prefix=self.prefix)


@pytest.fixture(scope="module")
def supplier_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Keys]]:
    """The CA and four suppliers' keys, made once (key generation is the slow part)."""
    base = tmp_path_factory.mktemp("opening-ca")
    ca = PlatformCA.init(base / "ca", now=at(T0 - 24 * 60 * MIN))
    keys = {s: issue(ca, s, f"供应商{s[-1]}", base / "suppliers" / s, now_ms=T0 - 60 * MIN)
            for s in SUPPLIERS}
    return base / "ca", keys


@pytest.fixture
async def world(tmp_path: Path, redis_client: RedisClient,
                session_factory: async_sessionmaker[AsyncSession],
                supplier_keys: tuple[Path, dict[str, Keys]]) -> AsyncIterator[World]:
    ca_dir, keys = supplier_keys
    shutil.copytree(ca_dir, tmp_path / "ca")
    clock = FakeClock(T0)
    store = OpeningStore(session_factory)
    prefix = f"test{uuid.uuid4().hex[:8]}"
    runner = OpeningRunner(store, redis_client, CiphertextFiles(tmp_path), now_ms=clock.now,
                           trust=lambda: server_trust_store(tmp_path), prefix=prefix)
    yield World(runner, clock, store, tmp_path, PlatformCA.load(tmp_path / "ca"), keys, prefix)
    await redis_client.delete(runner.schedule_key)


async def create(w: World, **overrides: Any) -> str:
    opening_id = f"opn_{uuid.uuid4().hex}"
    settings = OpeningSettings(opening_id=opening_id, deadline_ms=DEADLINE, **overrides)
    row = OpeningRow(id=opening_id, title="测试开标", title_en="Test opening",
                     purchaser_org_id="org_p", agency_org_id="org_a",
                     created_by_user_id="usr_a", settings=settings.to_dict(),
                     deadline_ms=DEADLINE, created_at_ms=w.clock.ms)
    await w.runner.create(row, settings, SUPPLIERS, actor="usr_a", now_ms=w.clock.ms)
    return opening_id


async def submit(w: World, runner: OpeningRunner, opening_id: str, supplier: str,
                 price: int = 1_000_000) -> Decision:
    """Seal a real bid and record it as the upload route does."""
    out = w.data_dir / f"{supplier}-{uuid.uuid4().hex[:6]}.cms"
    sealed = w.keys[supplier].seal(out, form(price), now_ms=w.clock.ms)
    relative = runner.files.keep(opening_id, sealed.sha256, out)
    w.sealed[supplier] = runner.files.path(relative)

    def attach(decision: Decision) -> OpeningBidRow | None:
        event = next(e for e in decision.events if isinstance(e, BidSubmitted))
        return OpeningBidRow(opening_id=opening_id, supplier_org_id=supplier,
                             sha256=sealed.sha256, size=sealed.size, storage_path=relative,
                             receipt={"sha256": sealed.sha256}, uploaded_at_ms=event.at_ms,
                             seq=event.seq, current=True, status="sealed")

    return await runner.execute(
        opening_id, lambda s, now: SubmitBid(supplier, sealed.sha256, sealed.size, now),
        actor=supplier, attach=attach)


async def run(w: World, opening_id: str, make: Any, actor: str = "usr_a") -> Decision:
    return await w.runner.execute(opening_id, make, actor=actor)


async def content_key(w: World, opening_id: str, supplier: str) -> bytes:
    from bidroom.opening.client import content_key_for

    keys = w.keys[supplier]
    return content_key_for(w.sealed[supplier], keys.enc_cert.read_bytes(),
                           keys.enc_key.read_bytes())


# ----------------------------------------------------------------------------- the log


async def test_every_event_is_appended_to_a_hash_chained_log(world: World) -> None:
    opening_id = await create(world)
    for supplier in SUPPLIERS[:3]:
        await submit(world, world.runner, opening_id, supplier)

    rows = await world.store.log(opening_id)

    assert [r.kind for r in rows] == ["created", "bid_submitted", "bid_submitted",
                                      "bid_submitted"]
    assert verify_chain(rows) is None
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    row = await world.store.get(opening_id)
    assert row is not None and row.seq == 4 and row.head_hash == rows[-1].hash


async def test_a_changed_log_entry_breaks_the_chain(
    world: World, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    opening_id = await create(world)
    for supplier in SUPPLIERS[:3]:
        await submit(world, world.runner, opening_id, supplier)
    rows = await world.store.log(opening_id)
    forged = {**rows[2].data, "size": 1}
    async with session_factory() as session, session.begin():
        await session.execute(update(OpeningLogRow)
                              .where(OpeningLogRow.opening_id == opening_id,
                                     OpeningLogRow.seq == 3).values(data=forged))

    assert verify_chain(await world.store.log(opening_id)) == (
        "entry 3 was changed after it was written")


async def test_the_log_replays_to_the_same_state_in_a_fresh_process(world: World) -> None:
    opening_id = await create(world)
    for supplier in SUPPLIERS[:3]:
        await submit(world, world.runner, opening_id, supplier)
    world.clock.ms = DEADLINE
    await run(world, opening_id, lambda s, now: Tick(now))

    assert await world.another_runner().state(opening_id) == await world.runner.state(
        opening_id)


# ----------------------------------------------------------------------------- exactly once


async def test_two_processes_ticking_at_the_deadline_close_the_bids_once(world: World) -> None:
    opening_id = await create(world)
    for supplier in SUPPLIERS[:3]:
        await submit(world, world.runner, opening_id, supplier)
    world.clock.ms = DEADLINE
    others = [world.another_runner() for _ in range(4)]

    await asyncio.gather(*(r.execute(opening_id, lambda s, now: Tick(now), actor=None)
                           for r in [world.runner, *others]))

    kinds = [r.kind for r in await world.store.log(opening_id)]
    assert kinds.count("bids_closed") == 1
    assert verify_chain(await world.store.log(opening_id)) is None


async def test_concurrent_commands_from_several_processes_are_all_stored_in_order(
    world: World,
) -> None:
    opening_id = await create(world)
    runners = [world.another_runner() for _ in SUPPLIERS]

    decisions = await asyncio.gather(*(submit(world, r, opening_id, s)
                                       for r, s in zip(runners, SUPPLIERS, strict=True)))

    assert all(d.refusal is None for d in decisions)
    rows = await world.store.log(opening_id)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert verify_chain(rows) is None
    assert {b.supplier_org_id for b in await world.store.bids(opening_id, current_only=True)} \
        == set(SUPPLIERS)


async def test_a_burst_of_commands_is_group_committed_in_order_and_one_bad_one_fails_alone(
    world: World,
) -> None:
    """Commands that arrive while an append is in flight share the next transaction (B5's
    decryption burst); each caller gets the decision it would have got alone, in order."""
    opening_id = await create(world)
    appends: list[int] = []
    original = world.store.append

    async def counting_append(*args: Any, **kwargs: Any) -> bool:
        appends.append(len(args[2]))
        return await original(*args, **kwargs)

    world.store.append = counting_append  # type: ignore[method-assign]

    def bad(state: Any, now: int) -> Any:
        raise BidroomValidationError("this command is malformed", code="invalid_input")

    async def note(i: int) -> Decision:
        return await world.runner.note(opening_id, "key_handed_out", {"n": i}, actor=f"u{i}")

    calls = [note(i) if i != 7 else run(world, opening_id, bad) for i in range(20)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    assert isinstance(outcomes[7], BidroomValidationError)  # only the bad command failed
    good = [o for i, o in enumerate(outcomes) if i != 7]
    assert all(isinstance(d, Decision) and d.refusal is None for d in good)
    rows = await world.store.log(opening_id)
    notes = [r for r in rows if r.kind == "noted"]
    assert [r.data["details"]["n"] for r in notes] == [i for i in range(20) if i != 7]
    assert [r.actor for r in notes] == [f"u{i}" for i in range(20) if i != 7]
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1)) and verify_chain(rows) is None
    # the first command went alone; the 18 others that queued behind it shared transactions
    assert sum(appends) == 19 and len(appends) < 19, appends
    # and a fresh process replays the same state
    assert (await world.another_runner().state(opening_id)).seq == rows[-1].seq


# ----------------------------------------------------------------------------- the schedule


async def test_the_schedule_closes_the_bids_at_the_deadline_and_revokes_at_the_window_end(
    world: World,
) -> None:
    opening_id = await create(world)
    for supplier in SUPPLIERS[:3]:
        await submit(world, world.runner, opening_id, supplier)
    redis = world.runner.redis
    assert await redis.zscore(world.runner.schedule_key, opening_id) == DEADLINE

    world.clock.ms = DEADLINE - 1
    await world.runner.run_once()
    assert not (await world.runner.state(opening_id)).closed

    world.clock.ms = DEADLINE
    await world.runner.run_once()
    state = await world.runner.state(opening_id)
    assert state.closed and state.bidders == SUPPLIERS[:3]
    assert await redis.zscore(world.runner.schedule_key, opening_id) == WINDOW_END

    await run(world, opening_id, lambda s, now: SignIn("org_s1", now), actor="org_s1")
    outcome = await world.runner.decrypt(opening_id, "org_s1",
                                         await content_key(world, opening_id, "org_s1"),
                                         actor="org_s1")
    assert isinstance(outcome.decision.events[-1], BidDecrypted)

    world.clock.ms = WINDOW_END
    await world.another_runner().run_once()
    state = await world.runner.state(opening_id)
    assert {s: b.status for s, b in state.bids.items()} == {
        "org_s1": BidStatus.DECRYPTED, "org_s2": BidStatus.REVOKED,
        "org_s3": BidStatus.REVOKED}
    assert await redis.zscore(world.runner.schedule_key, opening_id) is None
    kinds = [r.kind for r in await world.store.log(opening_id)]
    assert kinds.count("bid_revoked") == 2
    bids = {b.supplier_org_id: (b.status, b.reason)
            for b in await world.store.bids(opening_id, current_only=True)}
    assert bids["org_s2"] == ("revoked", "revoked_by_bidder")


async def test_fewer_than_three_bids_fail_the_opening_on_schedule(world: World) -> None:
    opening_id = await create(world)
    for supplier in SUPPLIERS[:2]:
        await submit(world, world.runner, opening_id, supplier)

    world.clock.ms = DEADLINE
    await world.runner.run_once()

    row = await world.store.get(opening_id)
    assert row is not None and row.status == "failed"
    assert [r.kind for r in await world.store.log(opening_id)][-2:] == [
        "bids_closed", "opening_failed"]
    assert await world.runner.redis.zscore(world.runner.schedule_key, opening_id) is None


# ----------------------------------------------------------------------------- decryption


async def opened_for_decryption(w: World) -> str:
    opening_id = await create(w)
    for supplier in SUPPLIERS[:3]:
        await submit(w, w.runner, opening_id, supplier)
    w.clock.ms = DEADLINE + MIN
    for supplier in SUPPLIERS[:3]:
        await run(w, opening_id, lambda s, now, sup=supplier: SignIn(sup, now), actor=supplier)
    return opening_id


async def test_the_owners_content_key_opens_its_bid_and_the_form_stays_hidden(
    world: World,
) -> None:
    opening_id = await opened_for_decryption(world)

    outcome = await world.runner.decrypt(opening_id, "org_s1",
                                         await content_key(world, opening_id, "org_s1"),
                                         actor="org_s1")

    assert outcome.failure is None
    event = outcome.decision.events[-1]
    assert isinstance(event, BidDecrypted)
    assert event.form["total_price_fen"] == 1_000_000
    assert event.signer["org_id"] == "org_s1"
    state = await world.runner.state(opening_id)
    assert state.record is None  # hidden until 唱标
    package = world.runner.files.opened_dir(opening_id, "org_s1") / "package.zip"
    assert package.is_file()


async def test_a_wrong_key_is_recorded_as_a_failed_attempt_and_may_be_retried(
    world: World,
) -> None:
    opening_id = await opened_for_decryption(world)

    wrong = await world.runner.decrypt(opening_id, "org_s1", bytes(32), actor="org_s1")
    another = await world.runner.decrypt(opening_id, "org_s1",
                                         await content_key(world, opening_id, "org_s2"),
                                         actor="org_s1")
    right = await world.runner.decrypt(opening_id, "org_s1",
                                       await content_key(world, opening_id, "org_s1"),
                                       actor="org_s1")

    assert wrong.failure == "bad_key_or_tampered"
    assert isinstance(wrong.decision.events[-1], DecryptionFailed)
    assert another.failure == "bad_key_or_tampered"
    assert right.failure is None
    assert (await world.runner.state(opening_id)).bids["org_s1"].attempts == 2


async def test_a_changed_ciphertext_is_refused_before_use(world: World) -> None:
    opening_id = await opened_for_decryption(world)
    path = world.sealed["org_s2"]
    path.chmod(0o640)
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01
    path.write_bytes(bytes(data))

    outcome = await world.runner.decrypt(opening_id, "org_s2",
                                         await content_key(world, opening_id, "org_s2"),
                                         actor="org_s2")

    assert outcome.failure == "ciphertext_corrupted"


async def test_decrypting_before_the_deadline_or_without_signing_in_is_refused(
    world: World,
) -> None:
    opening_id = await create(world)
    for supplier in SUPPLIERS[:3]:
        await submit(world, world.runner, opening_id, supplier)
    key = await content_key(world, opening_id, "org_s1")

    early = await world.runner.decrypt(opening_id, "org_s1", key, actor="org_s1")
    world.clock.ms = DEADLINE
    unsigned = await world.runner.decrypt(opening_id, "org_s1", key, actor="org_s1")

    assert early.decision.refusal == CommandRefused("decrypt", "decryption_not_open")
    assert unsigned.decision.refusal == CommandRefused("decrypt", "not_signed_in")


# ----------------------------------------------------------------------------- the hall


class Sink:
    def __init__(self, audience: Audience, supplier_id: str | None = None) -> None:
        self.audience = audience
        self.supplier_id = supplier_id
        self.wire = WireFormat.MSGPACK
        self.frames: list[bytes | str] = []

    def offer(self, msg: EncodedMessage) -> bool:
        self.frames.append(msg.frame(self.wire))
        return True

    def drop(self, code: int, reason: str) -> None:
        raise AssertionError(f"dropped: {code} {reason}")

    def messages(self) -> list[dict[str, Any]]:
        out = []
        for frame in self.frames:
            assert isinstance(frame, bytes)
            out.append(msgpack.unpackb(frame, raw=False))
        return out


def hall_for(world: World) -> OpeningHall:
    async def names(ids: Any) -> dict[str, tuple[str, str]]:
        return {i: (f"名称{i}", f"Name {i}") for i in ids}

    async def meta(opening_id: str) -> dict[str, Any]:
        return {"title": "测试开标", "title_en": "Test opening"}

    return OpeningHall(world.runner, names=names, meta=meta, poll_s=3600)


async def test_the_hall_shows_no_bidder_before_the_deadline_and_no_content_before_the_reveal(
    world: World,
) -> None:
    opening_id = await create(world)
    hall = hall_for(world)
    await hall.start()
    try:
        watcher, supplier = Sink(Audience.WATCHER), Sink(Audience.SUPPLIER, "org_s1")
        await hall.join(opening_id, watcher)
        await hall.join(opening_id, supplier)
        for s in SUPPLIERS[:3]:
            await submit(world, world.runner, opening_id, s, price=1_234_500)
        await hall.refresh(opening_id)
        world.clock.ms = DEADLINE + MIN
        for s in SUPPLIERS[:3]:
            await run(world, opening_id, lambda st, now, sup=s: SignIn(sup, now), actor=s)
        for s in SUPPLIERS[:3]:
            await world.runner.decrypt(opening_id, s, await content_key(world, opening_id, s),
                                       actor=s)
        await hall.refresh(opening_id)
        before_reveal = [json.dumps(m, ensure_ascii=False) for m in
                         watcher.messages() + supplier.messages()]
        await run(world, opening_id, lambda st, now: Reveal("usr_a", now))
        await hall.refresh(opening_id)
    finally:
        await hall.stop()

    assert not any("1234500" in text or "org_s2" in text for text in before_reveal[:4])
    assert not any("1234500" in text for text in before_reveal)  # no price before 唱标
    supplier_events = [m["event"] for m in supplier.messages() if m["type"] == "opening_event"]
    activity = [e for e in supplier_events if e["kind"] == "bid_activity"]
    assert activity and all(set(e) == {"seq", "kind"} for e in activity)
    watcher_events = [m["event"] for m in watcher.messages() if m["type"] == "opening_event"]
    assert [e["bids"] for e in watcher_events if e["kind"] == "bid_activity"] == [1, 2, 3]
    revealed = [m for m in watcher.messages() + supplier.messages()
                if m.get("event", {}).get("kind") == "record_revealed"]
    assert len(revealed) == 2
    assert revealed[0]["event"] == revealed[1]["event"]  # the same record to everyone
    prices = [e["form"]["total_price_fen"] for e in revealed[0]["event"]["record"]["opened"]]
    assert prices == [1_234_500] * 3
    seqs = [m["seq"] for m in supplier.messages() if m["type"] == "opening_event"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no holes


async def test_a_rejoining_client_gets_exactly_the_missed_events(world: World) -> None:
    opening_id = await create(world)
    for s in SUPPLIERS[:3]:
        await submit(world, world.runner, opening_id, s)
    hall = hall_for(world)
    await hall.start()
    try:
        sink = Sink(Audience.WATCHER)
        await hall.join(opening_id, sink, last_seq=2)
    finally:
        await hall.stop()

    messages = sink.messages()
    assert [m["type"] for m in messages] == ["opening_event", "opening_event",
                                             "opening_caught_up"]
    assert [m["seq"] for m in messages[:2]] == [3, 4]
    assert messages[-1]["missed"] == 2


async def test_every_append_is_announced_on_the_openings_channel(world: World) -> None:
    opening_id = await create(world)
    pubsub: Any = world.runner.redis.pubsub()
    await pubsub.subscribe(world.runner.channel(opening_id))
    try:
        await submit(world, world.runner, opening_id, "org_s1")
        message = None
        async with asyncio.timeout(5):
            while message is None:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
    finally:
        await pubsub.aclose()

    assert message["data"] == b"2"


def test_the_canonical_entry_hash_is_reproducible_by_anyone() -> None:
    from bidroom.opening.store import chain_hash

    data = {"kind": "created", "seq": 1, "at_ms": 5}
    entry = json.dumps({"opening_id": "opn_1", "actor": None, "event": data}, sort_keys=True,
                       separators=(",", ":"), ensure_ascii=False).encode()

    assert chain_hash("0" * 64, "opn_1", None, data) == hashlib.sha256(
        b"0" * 64 + entry).hexdigest()


def test_the_server_trust_store_is_reused_until_a_revocation_changes_the_crl(
    tmp_path: Path,
) -> None:
    """Decryptions check the trust store; it is built once and rebuilt when its files change,
    so a revocation is seen by the very next check."""
    ca = PlatformCA.init(tmp_path / "ca", now=at(T0 - 24 * 60 * MIN))
    pair = ca.issue_dual("org_s1", "供应商1", now=at(T0 - 60 * MIN))
    first = server_trust_store(tmp_path)
    assert server_trust_store(tmp_path) is first  # nothing changed: the same store
    assert [c.serial_number for c in first.roots] == [ca.certificate.serial_number]
    serial = pair.sign_cert.serial_number
    assert all(crl.get_revoked_certificate_by_serial_number(serial) is None
               for crl in first.crls)
    ca.revoke(serial, now=at(T0))
    after = server_trust_store(tmp_path)
    assert after is not first
    assert any(crl.get_revoked_certificate_by_serial_number(serial) is not None
               for crl in after.crls)
