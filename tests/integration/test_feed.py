"""Feeding the core through domain events (issue #11 item 7), on real Redis and SQL: a published
sealed lot gets its opening, an auction lot its auction; registrations are invited whichever
comes first; a consumer killed mid-stream resumes and invites nobody twice; the core's results
(the deadline, the confirmed record, the auction's close) move the lot on, fewer than 3 bids
failing it (O87 41). Time is a clock the test sets; nothing sleeps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.auction.closer import AuctionCloser
from bidroom.auction.executor import AuctionExecutor
from bidroom.auction.rules import AuctionResult
from bidroom.opening.runner import OpeningRunner, server_trust_store
from bidroom.opening.session import (
    BidSubmitted,
    Confirm,
    Decision,
    OpeningState,
    RecordDecryption,
    Reveal,
    SignIn,
    SubmitBid,
    Tick,
)
from bidroom.opening.store import (
    CiphertextFiles,
    OpeningBidRow,
    OpeningInvitationRow,
    OpeningStore,
    verify_chain,
)
from bidroom.stores.redis import RedisClient
from bidroom.stores.sql import AuctionRepository
from market.calendar import BEIJING, CalendarService, CalendarStore
from market.events import Consumer, DomainEvent, Relay, decode_entry, emit
from market.feed import (
    FEED_GROUP,
    FEED_KINDS,
    FeedLinkRow,
    FeedReconciler,
    FeedService,
    core_id_for,
)
from market.projects.rules import (
    BidMode,
    LotStatus,
    Method,
    Publish,
    Qualification,
    RecordQualification,
)
from market.projects.service import LotDraft, ProjectService
from market.registry import OrgKind, Principal, Role

pytestmark = pytest.mark.asyncio

YUAN = 100
MIN = 60_000
PURCHASER = Principal("u-p", "采购员", "org-p", "某市教育局", OrgKind.PURCHASER,
                      frozenset({Role.PURCHASER}))
SUPPLIERS = ("org-s1", "org-s2", "org-s3", "org-s4")


def at(day: date, hh: int = 9, mm: int = 30) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


DEADLINE = at(date(2026, 10, 8))


class Clock:
    def __init__(self) -> None:
        self.ms = at(date(2026, 9, 11), 8)

    async def now(self) -> int:
        return self.ms


class _Killed(BaseException):
    """Stands for the process dying (not an Exception: nothing catches it)."""


@dataclass
class World:
    clock: Clock
    sessions: async_sessionmaker[AsyncSession]
    redis: RedisClient
    stream: str
    projects: ProjectService
    runner: OpeningRunner
    executor: AuctionExecutor
    closer: AuctionCloser
    auctions: AuctionRepository
    feed: FeedService
    relay: Relay

    def consumer(self, name: str, handler: Any = None) -> Consumer:
        return Consumer(self.sessions, self.redis, group=FEED_GROUP, name=name,
                        handler=handler or self.feed.handle, now_ms=self.clock.now,
                        kinds=FEED_KINDS, stream=self.stream, claim_idle_ms=0, batch=10)

    async def deliver(self) -> None:
        """Relay what was emitted and let one consumer handle it."""
        await self.relay.relay_once()
        await self.consumer("c").poll(block_ms=0)

    async def register(self, lot_id: str, project_id: str, *suppliers: str) -> None:
        """What the tendering module emits when a supplier registers (报名)."""
        async with self.sessions.begin() as session:
            for supplier in suppliers:
                emit(session, "tendering.supplier_registered", f"lot:{lot_id}",
                     {"lot_id": lot_id, "project_id": project_id, "supplier_org_id": supplier,
                      "at_ms": self.clock.ms}, at_ms=self.clock.ms)

    async def create(self, bid_mode: BidMode = BidMode.SEALED) -> tuple[str, str]:
        project, lots = await self.projects.create_project(
            PURCHASER, title="某市教育局计算机采购", method=Method.OPEN_TENDER,
            region_code="440100", agency_org_id="org-a",
            lots=[LotDraft("台式计算机", "A02010104", 1_000_000 * YUAN, 950_000 * YUAN,
                           bid_mode=bid_mode)])
        return project.id, lots[0].id

    async def publish_lot(self, lot_id: str) -> None:
        budget = await self.projects.project_budget(lot_id)

        def publish(state: Any, now: int) -> Publish:
            return Publish(now, now, at(date(2026, 9, 30)), DEADLINE, budget)

        await self.projects.run(PURCHASER, lot_id, publish)

    async def publish(self, bid_mode: BidMode = BidMode.SEALED) -> tuple[str, str]:
        project_id, lot_id = await self.create(bid_mode)
        await self.publish_lot(lot_id)
        return project_id, lot_id


@pytest.fixture
async def world(tmp_path: Path, redis_client: RedisClient,
                session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[World]:
    clock = Clock()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    stream = f"{{{prefix}}}:events"
    projects = ProjectService(session_factory,
                              CalendarService(CalendarStore(session_factory)), now_ms=clock.now)
    runner = OpeningRunner(OpeningStore(session_factory), redis_client, CiphertextFiles(tmp_path),
                           now_ms=clock.now, trust=lambda: server_trust_store(tmp_path),
                           prefix=prefix)
    executor = AuctionExecutor(redis_client, now_source=clock.now)
    auctions = AuctionRepository(session_factory)
    closer = AuctionCloser(executor, auctions, now_ms=clock.now, prefix=prefix)
    feed = FeedService(session_factory, projects, runner, executor, auctions, closer,
                       now_ms=clock.now)
    relay = Relay(session_factory, redis_client, now_ms=clock.now, stream=stream)
    yield World(clock, session_factory, redis_client, stream, projects, runner, executor,
                closer, auctions, feed, relay)
    await redis_client.delete(runner.schedule_key, f"{prefix}:schedule", stream)


async def _invitation_rows(w: World, opening_id: str) -> list[str]:
    async with w.sessions() as session:
        return sorted((await session.scalars(
            select(OpeningInvitationRow.supplier_org_id)
            .where(OpeningInvitationRow.opening_id == opening_id))).all())


async def _bid(w: World, opening_id: str, supplier: str, n: int) -> Decision:
    sha = f"{n:064x}"

    def attach(decision: Decision) -> OpeningBidRow | None:
        event = next(e for e in decision.events if isinstance(e, BidSubmitted))
        return OpeningBidRow(opening_id=opening_id, supplier_org_id=supplier, sha256=sha,
                             size=1000, storage_path=f"openings/{opening_id}/{sha}.cms",
                             receipt={"sha256": sha}, uploaded_at_ms=event.at_ms,
                             seq=event.seq, current=True, status="sealed")

    return await w.runner.execute(opening_id,
                                  lambda s, now: SubmitBid(supplier, sha, 1000, now),
                                  actor=supplier, attach=attach)


async def _run(w: World, opening_id: str, make: Any) -> Decision:
    decision = await w.runner.execute(opening_id, make, actor="usr-a")
    assert decision.refusal is None, decision.refusal
    return decision


async def _opening_through_confirmation(w: World, opening_id: str,
                                        bidders: tuple[str, ...]) -> OpeningState:
    """Bids before the deadline, sign-in, decryption (recorded as the runner records a
    successful one), 唱标 and the confirmed record after the objection window."""
    w.clock.ms = DEADLINE - 10 * MIN
    for n, supplier in enumerate(bidders, start=1):
        assert (await _bid(w, opening_id, supplier, n)).refusal is None
        await _run(w, opening_id, lambda s, now, x=supplier: SignIn(x, now))
    w.clock.ms = DEADLINE
    await _run(w, opening_id, lambda s, now: Tick(now))
    w.clock.ms = DEADLINE + MIN
    for n, supplier in enumerate(bidders, start=1):
        form = {"total_price_fen": 900_000 * YUAN - n * 1_000 * YUAN, "delivery_days": 30}
        await _run(w, opening_id, lambda s, now, x=supplier, f=form: RecordDecryption(
            x, True, now, form=f, signer={"org_id": x}))
    await _run(w, opening_id, lambda s, now: Reveal("usr-a", now))
    w.clock.ms = DEADLINE + 20 * MIN
    decision = await _run(w, opening_id, lambda s, now: Confirm("usr-a", now))
    return decision.state


# ------------------------------------------------------------------ a sealed lot


async def test_a_published_sealed_lot_gets_its_opening_and_registrations_before_it_are_invited(
        world: World) -> None:
    project_id, lot_id = await world.create()
    # the registration's event comes before the publication's (order of events)
    await world.register(lot_id, project_id, "org-s1")
    await world.publish_lot(lot_id)
    await world.relay.relay_once()
    entries = await world.redis.xrange(world.stream)
    assert [fields[b"kind"] for _, fields in entries] == [
        b"project.created", b"tendering.supplier_registered", b"project.lot_published"]
    # a first delivery of the publication dies after the core made the opening, before the
    # consumer's transaction committed
    published = decode_entry(entries[2][1])
    with pytest.raises(_Killed):
        async with world.sessions.begin() as session:
            await world.feed.handle(session, published)
            raise _Killed
    assert await world.feed.link(lot_id) is None
    await world.consumer("c").poll(block_ms=0)

    link = await world.feed.link(lot_id)
    assert link is not None and link.kind == "opening"
    assert link.core_id == core_id_for("opening", lot_id, 1)
    row = await world.runner.store.get(link.core_id)
    assert row is not None
    assert row.deadline_ms == DEADLINE
    assert row.title == "某市教育局计算机采购 台式计算机"
    assert (row.purchaser_org_id, row.agency_org_id) == ("org-p", "org-a")
    state = await world.runner.state(link.core_id)
    assert state.settings.deadline_ms == DEADLINE
    assert state.invited == {"org-s1"}

    # registrations after the opening exists are invited to it
    await world.register(lot_id, project_id, "org-s2", "org-s3")
    await world.deliver()
    state = await world.runner.state(link.core_id)
    assert state.invited == {"org-s1", "org-s2", "org-s3"}
    assert await _invitation_rows(world, link.core_id) == ["org-s1", "org-s2", "org-s3"]
    async with world.sessions() as session:
        links = (await session.scalars(select(FeedLinkRow).where(
            FeedLinkRow.lot_id == lot_id))).all()
    assert len(links) == 1
    # the first delivery made the opening before the registration was handled: the second
    # found it (opening_exists) and invited the registration it had missed; each once
    rows = await world.runner.store.log(link.core_id)
    assert [(r.kind, r.data.get("supplier_id")) for r in rows] == [
        ("created", None), ("bidder_invited", "org-s1"), ("bidder_invited", "org-s2"),
        ("bidder_invited", "org-s3")]
    assert verify_chain(rows) is None


async def test_a_consumer_killed_mid_stream_resumes_and_invites_nobody_twice(
        world: World) -> None:
    project_id, lot_id = await world.publish()
    await world.deliver()
    link = await world.feed.link(lot_id)
    assert link is not None
    await world.register(lot_id, project_id, *SUPPLIERS)
    await world.relay.relay_once()
    handled = 0

    async def dies_at_the_third(session: AsyncSession, event: DomainEvent) -> None:
        nonlocal handled
        await world.feed.handle(session, event)  # the core's invitation commits …
        handled += 1
        if handled == 3:
            raise _Killed  # … and the process dies before the consumer's transaction commits

    with pytest.raises(_Killed):
        await world.consumer("first", dies_at_the_third).poll(block_ms=0)
    assert (await world.runner.state(link.core_id)).invited == set(SUPPLIERS[:3])
    # another process of the group claims what the dead one left pending
    resumed = world.consumer("second")
    await resumed.claim_stale()
    await resumed.poll(block_ms=0)

    state = await world.runner.state(link.core_id)
    assert state.invited == set(SUPPLIERS)
    rows = await world.runner.store.log(link.core_id)
    invited = [r.data["supplier_id"] for r in rows if r.kind == "bidder_invited"]
    assert sorted(invited) == sorted(SUPPLIERS)  # each once, though the third was redelivered
    assert verify_chain(rows) is None
    assert await _invitation_rows(world, link.core_id) == sorted(SUPPLIERS)


async def test_two_bids_at_the_deadline_fail_the_lot_without_an_opening(world: World) -> None:
    project_id, lot_id = await world.publish()
    await world.register(lot_id, project_id, *SUPPLIERS)
    await world.deliver()
    link = await world.feed.link(lot_id)
    assert link is not None
    world.clock.ms = DEADLINE - 10 * MIN
    for n, supplier in enumerate(SUPPLIERS[:2], start=1):
        assert (await _bid(world, link.core_id, supplier, n)).refusal is None
    assert await world.feed.reconcile_once() == 0  # nothing to report before the deadline
    world.clock.ms = DEADLINE
    await _run(world, link.core_id, lambda s, now: Tick(now))

    assert await world.feed.reconcile_once() == 1
    lot = await world.projects.lot(lot_id)
    assert lot.status == LotStatus.FAILED.value
    assert lot.ended_reason == "too_few_bids"
    assert lot.bidders == list(SUPPLIERS[:2])
    assert await world.feed.reconcile_once() == 0  # settled: nothing twice
    assert (await world.feed.link(lot_id)).settled  # type: ignore[union-attr]


async def test_a_confirmed_record_with_three_bidders_opens_the_lot_for_qualification(
        world: World) -> None:
    project_id, lot_id = await world.publish()
    await world.register(lot_id, project_id, *SUPPLIERS)
    await world.deliver()
    link = await world.feed.link(lot_id)
    assert link is not None
    pokes: list[str] = []

    async def lost(opening_id: str, state: OpeningState) -> None:
        pokes.append(opening_id)
        raise RuntimeError("the notification is lost")  # the core goes on regardless

    world.runner.on_change = lost
    await _opening_through_confirmation(world, link.core_id, SUPPLIERS[:3])
    assert pokes and set(pokes) == {link.core_id}

    # the reconciliation reads the core's log: the bids closed, then the record confirmed
    assert await world.feed.reconcile_once() == 2
    lot = await world.projects.lot(lot_id)
    assert lot.status == LotStatus.OPENED.value
    assert lot.bidders == list(SUPPLIERS[:3])
    results = await world.feed.results(lot_id)
    assert results.confirmed
    assert [(e["supplier_id"], e["total_price_fen"]) for e in results.opened] == [
        ("org-s1", 899_000 * YUAN), ("org-s2", 898_000 * YUAN), ("org-s3", 897_000 * YUAN)]
    assert await world.feed.reconcile_once() == 0

    def qualify(state: Any, now: int) -> RecordQualification:
        return RecordQualification(now, tuple(Qualification(s, True) for s in SUPPLIERS[:3]))

    state, _ = await world.projects.run(PURCHASER, lot_id, qualify)
    assert state.status is LotStatus.QUALIFIED


# ------------------------------------------------------------------ an auction lot


async def test_an_auction_lot_gets_its_auction_and_its_close_opens_the_lot(
        world: World) -> None:
    project_id, lot_id = await world.publish(BidMode.AUCTION)
    await world.register(lot_id, project_id, "org-s1")
    await world.deliver()
    link = await world.feed.link(lot_id)
    assert link is not None and link.kind == "auction"
    auction = await world.auctions.get_auction(link.core_id)
    assert auction is not None
    assert auction.settings["ceiling_fen"] == 950_000 * YUAN
    assert auction.start_ms == DEADLINE
    await world.register(lot_id, project_id, "org-s2", "org-s3")
    await world.deliver()
    assert await world.auctions.invited_suppliers(link.core_id) == ["org-s1", "org-s2",
                                                                    "org-s3"]
    results: list[AuctionResult] = []

    async def on_result(result: AuctionResult) -> None:
        results.append(result)

    world.closer.on_result = on_result
    world.clock.ms = DEADLINE + MIN
    for n, supplier in enumerate(("org-s1", "org-s2", "org-s3"), start=1):
        await world.executor.place_bid(link.core_id, supplier, f"b{n}",
                                       900_000 * YUAN - n * 1_000 * YUAN)
    world.clock.ms = DEADLINE + 31 * MIN
    await world.closer.run_once()
    assert [r.auction_id for r in results] == [link.core_id]

    assert await world.feed.reconcile_once() == 2
    lot = await world.projects.lot(lot_id)
    assert lot.status == LotStatus.OPENED.value
    assert lot.bidders == ["org-s3", "org-s2", "org-s1"]  # the ranking: lowest price first
    opened = (await world.feed.results(lot_id)).opened
    assert opened[0]["total_price_fen"] == 897_000 * YUAN


async def test_an_auction_with_two_bidders_fails_the_lot(world: World) -> None:
    project_id, lot_id = await world.publish(BidMode.AUCTION)
    await world.register(lot_id, project_id, "org-s1", "org-s2")
    await world.deliver()
    link = await world.feed.link(lot_id)
    assert link is not None
    world.clock.ms = DEADLINE + MIN
    for n, supplier in enumerate(("org-s1", "org-s2"), start=1):
        await world.executor.place_bid(link.core_id, supplier, f"b{n}", 900_000 * YUAN - n)
    world.clock.ms = DEADLINE + 31 * MIN
    await world.closer.run_once()
    reconciler = FeedReconciler(world.feed, now_ms=world.clock.now)
    await reconciler.run_once()
    lot = await world.projects.lot(lot_id)
    assert lot.status == LotStatus.FAILED.value
    assert lot.ended_reason == "too_few_bids"


# ------------------------------------------------------------------ wired into the app


async def _until(check: Any, what: str) -> Any:
    """Wait for the app's background tasks (the relay, the consumer, the reconciler) to do
    something; the server clock does not move while waiting."""
    import asyncio

    for _ in range(400):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.025)
    raise AssertionError(f"the app never got there: {what}")


async def test_the_app_feeds_a_published_lot_and_the_deadline_fails_it_through_the_hooks(
        http_app: Any, seed: Any) -> None:
    services = http_app.state.services
    await seed.set_clock(at(date(2026, 9, 11), 8))
    purchaser = await seed.purchaser()
    me = await services.registry.authenticate(purchaser.token, seed.clock_ms)
    project, lots = await services.projects.create_project(
        me, title="某市第一中学计算机采购", method=Method.OPEN_TENDER, region_code="440100",
        lots=[LotDraft("台式计算机", "A02010104", 1_000_000 * YUAN, 950_000 * YUAN)])
    lot_id = lots[0].id

    def publish(state: Any, now: int) -> Publish:
        return Publish(now, now, at(date(2026, 9, 30)), DEADLINE, project.budget_fen)

    await services.projects.run(me, lot_id, publish)
    feed = services.feed.service
    link = await _until(lambda: feed.link(lot_id), "the lot's opening")
    async with services.sessions.begin() as session:
        for supplier in SUPPLIERS[:2]:
            emit(session, "tendering.supplier_registered", f"lot:{lot_id}",
                 {"lot_id": lot_id, "project_id": project.id, "supplier_org_id": supplier,
                  "at_ms": seed.clock_ms}, at_ms=seed.clock_ms)

    async def invited() -> bool:
        state = await services.openings.state(link.core_id)
        return state.invited == set(SUPPLIERS[:2])

    await _until(invited, "the registered suppliers invited")
    await seed.set_clock(DEADLINE - 10 * MIN)
    w = World(Clock(), services.sessions, services.redis, "", services.projects,
              services.openings, services.executor, services.closer, services.auctions, feed,
              services.relay)
    for n, supplier in enumerate(SUPPLIERS[:2], start=1):
        assert (await _bid(w, link.core_id, supplier, n)).refusal is None
    await seed.set_clock(DEADLINE)  # the runner's schedule closes the bids, its hook pokes

    async def failed() -> bool:
        return (await services.projects.lot(lot_id)).status == LotStatus.FAILED.value

    await _until(failed, "the lot failed at the deadline (O87 41)")
    assert (await services.projects.lot(lot_id)).ended_reason == "too_few_bids"


async def test_the_hall_tells_suppliers_that_someone_was_invited_never_who() -> None:
    from bidroom.opening.hall import event_view
    from bidroom.opening.session import BidderInvited, Invite, OpeningSettings, created, decide
    from bidroom.opening.session import replay as replay_opening
    from bidroom.rooms.views import Audience

    settings = OpeningSettings(opening_id="opn_1", deadline_ms=DEADLINE)
    state = replay_opening([created(settings, ("org-s1",), DEADLINE - 60 * MIN)])
    decision = decide(state, Invite("org-s2", "platform", DEADLINE - MIN))
    event = decision.events[0]
    assert isinstance(event, BidderInvited)
    names = {"org-s2": ("乙公司", "B Ltd")}
    supplier = event_view(event, decision.state, Audience.SUPPLIER, names)
    assert supplier == {"seq": 2, "kind": "bidder_invited"}
    watcher = event_view(event, decision.state, Audience.WATCHER, names)
    assert watcher["invited"] == 2 and "org-s2" not in str(watcher)
