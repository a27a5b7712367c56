"""Feeding the core (issue #11 item 7): a published lot gets its opening or its auction, the
suppliers that register for it are invited, and the core's results come back to the lot.

Two halves, both idempotent:

* **Handlers** of domain events (``FeedService.handle``, run by a ``market.events.Consumer``
  of group ``market.feed``):

  - ``project.lot_published``: a lot whose bids are sealed (``bid_mode`` ``sealed``) gets an
    opening (``bidroom.opening.service.create_opening``) with the lot's deadline, titled with
    the project's and the lot's titles, for the project's purchaser and agency; a lot bid live
    (``auction``) gets an auction (``market.auctions.open_auction``) with the lot's ceiling and
    budget, starting at the deadline and lasting ``auction_minutes``. Every registration the
    feed already saw for the lot is invited at creation. The lot → core link is a row of
    ``feed_links``; the core object's id is derived from the lot and its round, so a redelivery
    after a crash between the core's commit and ours finds it (``opening_exists``) instead of
    making a second one.
  - ``tendering.supplier_registered``: the registration is kept in ``feed_registrations`` (the
    feed never reads the tendering module's store) and the supplier is invited to the lot's
    opening (``Invite``) or auction (the executor's ``invite``) if the link exists; if the
    registration comes first, the lot's publication invites it.

* **Reconciliation** (``FeedService.reconcile_once``, run by ``FeedReconciler`` every
  ``poll_ms`` and whenever the core's hooks poke it): for every lot still bidding it reads the
  core's state through the core's own functions (the opening log replayed by
  ``OpeningRunner.state``; the stored auction result) and moves the lot on:
  ``CloseBidding(at, bidders)`` once the bids are closed (the opening's deadline passed, the
  auction closed), ``RecordOpening(at, bidders)`` once the opening's record is confirmed (the
  opened bidders) or the auction closed (its valid bidders). Fewer than 3 bids fail the lot
  (O87 41, in ``market.projects.rules``). It also invites registrations a race left
  uninvited. The lot's state machine and its version counter make each step happen once:
  a second process, or a second pass, finds the lot already moved on.

Must not import: web.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.auction.closer import AuctionCloser
from bidroom.auction.executor import AuctionExecutor
from bidroom.auction.rules import AuctionSettings, CommandRefused, validate_settings
from bidroom.errors import BidroomError, ConflictError, NotFoundError, ValidationError
from bidroom.opening.runner import OpeningRunner
from bidroom.opening.service import NewOpening, create_opening
from bidroom.opening.session import BidStatus, OpeningSettings, opening_record
from bidroom.schedule import DuePass
from bidroom.stores.sql import AuctionRepository, sql_errors
from market.auctions import open_auction
from market.events.consumer import Consumer
from market.events.outbox import DomainEvent
from market.feed.store import FeedLinkRow, FeedRegistrationRow
from market.projects.rules import CloseBidding, Command, LotState, Method, RecordOpening
from market.projects.service import ProjectService

__all__ = ["FEED_GROUP", "FEED_KINDS", "PLATFORM", "Feed", "FeedReconciler", "FeedService",
           "LotResults", "core_id_for"]

log = logging.getLogger("bidroom.feed")

#: The consumer group of the feed, and the events it handles.
FEED_GROUP: Final = "market.feed"
LOT_PUBLISHED: Final = "project.lot_published"
SUPPLIER_REGISTERED: Final = "tendering.supplier_registered"
FEED_KINDS: Final = (LOT_PUBLISHED, SUPPLIER_REGISTERED)
#: Who acts when the platform does (the opening's creator, the invitations' ``by``).
PLATFORM: Final = "platform"
_MINUTE: Final = 60_000


def core_id_for(kind: str, lot_id: str, round_: int) -> str:
    """The id of the opening (``opn_…``) or auction (``auc_…``) of a lot's round: derived,
    so that handling the publication twice finds the first one."""
    digest = hashlib.sha256(f"{lot_id}#{round_}".encode()).hexdigest()[:32]
    return f"{'opn' if kind == 'opening' else 'auc'}_{digest}"


def _lot_of(event: DomainEvent) -> str:
    prefix, _, lot_id = event.aggregate.partition(":")
    if prefix != "lot" or not lot_id:
        raise ValueError(f"not a lot's event: {event.aggregate}")
    return lot_id


@dataclass(frozen=True, slots=True)
class LotResults:
    """What the core says about a lot's round, read from the core, never copied by hand:
    ``opened`` the 唱标 entries (supplier, price in fen, the whole opening form) of an opening,
    or the ranking of an auction; ``not_opened`` the bids 撤销 / 撤回 with why."""

    kind: str
    core_id: str
    closed: bool
    confirmed: bool
    opened: tuple[dict[str, Any], ...]
    not_opened: tuple[dict[str, Any], ...]


class FeedService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], projects: ProjectService,
                 openings: OpeningRunner, executor: AuctionExecutor,
                 auctions: AuctionRepository, closer: AuctionCloser, *,
                 now_ms: Callable[[], Awaitable[int]], auction_minutes: int = 30,
                 decryption_window_ms: int = 30 * _MINUTE) -> None:
        self._sessions = sessions
        self.projects = projects
        self.openings = openings
        self.executor = executor
        self.auctions = auctions
        self.closer = closer
        self._now_ms = now_ms
        self.auction_minutes = auction_minutes
        self.decryption_window_ms = decryption_window_ms

    # ------------------------------------------------------------------ event handlers

    async def handle(self, session: AsyncSession, event: DomainEvent) -> None:
        """The consumer's handler: its writes go in ``session`` (the consumer commits)."""
        if event.kind == LOT_PUBLISHED:
            await self._lot_published(session, event)
        elif event.kind == SUPPLIER_REGISTERED:
            await self._supplier_registered(session, event)

    async def _lot_published(self, session: AsyncSession, event: DomainEvent) -> None:
        lot_id = _lot_of(event)
        try:
            project, lots = await self.projects.project(str(event.payload["project_id"]))
        except NotFoundError:  # not a project of this database: nothing to feed
            log.warning("lot %s published, but its project is unknown here", lot_id)
            return
        lot = next((row for row in lots if row.id == lot_id), None)
        if lot is None:
            raise NotFoundError(f"lot {lot_id} not found", code="lot_not_found")
        if lot.status != "announced" or lot.deadline_ms is None:
            log.info("lot %s is %s: no opening or auction for an old publication", lot_id,
                     lot.status)
            return
        if await session.get(FeedLinkRow, (lot_id, lot.rounds)) is not None:
            return  # this round is fed already
        kind = "auction" if lot.bid_mode == "auction" else "opening"
        core_id = core_id_for(kind, lot_id, lot.rounds)
        registrations = await self._registrations(session, lot_id, event.at_ms)
        invited = [r.supplier_org_id for r in registrations]
        now = await self._now_ms()
        title = f"{project.title} {lot.title}"
        # The core's writes (own transactions) come before ours: with SQLite, this
        # transaction must not hold a snapshot older than the core's commit when it writes.
        if kind == "opening":
            created = await self._create_opening(core_id, title, project.title_en, lot.deadline_ms,
                                                 project.purchaser_org_id,
                                                 project.agency_org_id, invited, now,
                                                 single_source=lot.method ==
                                                 Method.SINGLE_SOURCE.value)
        else:
            created = await self._create_auction(core_id, title, project.title_en, lot,
                                                 project.purchaser_org_id,
                                                 project.agency_org_id, invited, now)
        if not created:  # made by an earlier delivery: invite what it may have missed
            for registration in registrations:
                registration.outcome = await self._invite(kind, core_id,
                                                          registration.supplier_org_id)
                registration.invited_to = core_id
        else:
            for registration in registrations:
                registration.invited_to, registration.outcome = core_id, "invited"
        session.add(FeedLinkRow(lot_id=lot_id, round=lot.rounds, project_id=project.id,
                                kind=kind, core_id=core_id, published_at_ms=event.at_ms,
                                created_at_ms=now, settled=False))

    async def _create_opening(self, opening_id: str, title: str, title_en: str,
                              deadline_ms: int, purchaser: str, agency: str | None,
                              invited: Sequence[str], now: int, *,
                              single_source: bool) -> bool:
        settings = OpeningSettings(opening_id=opening_id, deadline_ms=deadline_ms,
                                   decryption_window_ms=self.decryption_window_ms,
                                   min_bids=1 if single_source else 3)
        try:
            await create_opening(self.openings, NewOpening(
                opening_id=opening_id, title=title, title_en=title_en,
                purchaser_org_id=purchaser, agency_org_id=agency,
                created_by_user_id=PLATFORM, invited=invited), settings, now_ms=now)
        except ConflictError as exc:
            if exc.code != "opening_exists":
                raise
            return False
        return True

    async def _create_auction(self, auction_id: str, title: str, title_en: str, lot: Any,
                              purchaser: str, agency: str | None, invited: Sequence[str],
                              now: int) -> bool:
        if await self.auctions.get_auction(auction_id) is not None:
            return False
        start = int(lot.deadline_ms)
        settings = AuctionSettings(
            auction_id=auction_id, ceiling_fen=lot.ceiling_fen, start_ms=start,
            end_ms=start + self.auction_minutes * _MINUTE, budget_fen=lot.budget_fen,
            min_valid_bidders=1 if lot.method == Method.SINGLE_SOURCE.value else 3)
        problems = validate_settings(settings)
        if problems:
            raise ValidationError("the lot's auction settings are not valid: " + "; ".join(
                f"{p.field}: {p.message}" for p in problems), code="invalid_settings")
        await open_auction(self.executor, self.auctions, self.closer, settings=settings,
                           title=title, title_en=title_en, purchaser_org_id=purchaser,
                           agency_org_id=agency, created_by_user_id=PLATFORM,
                           actor_org_id=purchaser, invited=invited, now_ms=now,
                           audit_details={"lot_id": lot.id, "round": lot.rounds})
        return True

    async def _supplier_registered(self, session: AsyncSession, event: DomainEvent) -> None:
        payload = event.payload
        lot_id, supplier = str(payload["lot_id"]), str(payload["supplier_org_id"])
        at = int(payload.get("at_ms", event.at_ms))
        # Reads, then the core's write, then ours (see ``_lot_published``).
        row = await session.get(FeedRegistrationRow, (lot_id, supplier))
        link = await self._open_link(session, lot_id)
        invited: tuple[str, str] | None = None
        if link is not None and (row is None or row.invited_to != link.core_id):
            invited = (link.core_id, await self._invite(link.kind, link.core_id, supplier))
        if row is None:
            row = FeedRegistrationRow(lot_id=lot_id, supplier_org_id=supplier,
                                      project_id=str(payload["project_id"]),
                                      registered_at_ms=at)
            session.add(row)
        else:  # registered again (a re-tendered lot's new round)
            row.registered_at_ms = max(row.registered_at_ms, at)
        if invited is not None:
            row.invited_to, row.outcome = invited

    # ------------------------------------------------------------------ inviting

    async def _invite(self, kind: str, core_id: str, supplier: str) -> str:
        """Invite one supplier; the final outcome (``invited``, ``already_invited``,
        ``deadline_passed``). A store failure raises: the event is retried."""
        if kind == "opening":
            decision = await self.openings.invite(core_id, supplier, by=PLATFORM,
                                                  actor=PLATFORM)
            return "invited" if decision.refusal is None else decision.refusal.reason
        outcome = await self.executor.invite(core_id, [supplier])
        if isinstance(outcome, CommandRefused):
            return "deadline_passed" if outcome.reason == "auction_ended" else outcome.reason
        await self.auctions.add_invitations(core_id, list(outcome.supplier_ids), outcome.at_ms)
        return "invited"

    @staticmethod
    async def _open_link(session: AsyncSession, lot_id: str) -> FeedLinkRow | None:
        return (await session.scalars(
            select(FeedLinkRow).where(FeedLinkRow.lot_id == lot_id,
                                      FeedLinkRow.settled.is_(False))
            .order_by(FeedLinkRow.round.desc()).limit(1))).first()

    @staticmethod
    async def _registrations(session: AsyncSession, lot_id: str,
                             since_ms: int) -> list[FeedRegistrationRow]:
        """The lot's registrations for the round published at ``since_ms`` or later (one for
        an earlier round, before a re-tender, does not carry over)."""
        return list((await session.scalars(
            select(FeedRegistrationRow).where(FeedRegistrationRow.lot_id == lot_id,
                                              FeedRegistrationRow.registered_at_ms
                                              >= since_ms)
            .order_by(FeedRegistrationRow.registered_at_ms,
                      FeedRegistrationRow.supplier_org_id))).all())

    # ------------------------------------------------------------------ results

    async def link(self, lot_id: str) -> FeedLinkRow | None:
        """The lot's latest round's link (None: not fed yet)."""
        with sql_errors("read a lot's link"):
            async with self._sessions() as session:
                return (await session.scalars(
                    select(FeedLinkRow).where(FeedLinkRow.lot_id == lot_id)
                    .order_by(FeedLinkRow.round.desc()).limit(1))).first()

    async def results(self, lot_id: str) -> LotResults:
        """The core's results for the lot's latest round, as the core states them: the
        opening's record (``session.opening_record``: 唱标 prices from the opened forms) or the
        auction's stored ranking (``lot_not_fed`` before the publication was handled)."""
        link = await self.link(lot_id)
        if link is None:
            raise NotFoundError("此包尚未创建开标或竞价 / the lot has no opening or auction yet",
                                code="lot_not_fed")
        if link.kind == "opening":
            state = await self.openings.state(link.core_id)
            record = opening_record(state)
            opened = tuple({**entry, "total_price_fen": entry["form"].get("total_price_fen")}
                           for entry in record["opened"]) if state.closed else ()
            return LotResults("opening", link.core_id, state.closed,
                              state.confirmed_at_ms is not None, opened,
                              tuple(record["not_opened"]) if state.closed else ())
        stored = await self.auctions.get_result(link.core_id)
        if stored is None:
            return LotResults("auction", link.core_id, False, False, (), ())
        ranking = tuple({**entry, "total_price_fen": entry["price_fen"]}
                        for entry in stored[0].ranking)
        return LotResults("auction", link.core_id, True, True, ranking, ())

    # ------------------------------------------------------------------ reconciliation

    async def reconcile_once(self) -> int:
        """Move every lot still bidding on from what its core object says; invite the
        registrations left uninvited. Returns the number of lot commands applied."""
        with sql_errors("read the feed's links"):
            async with self._sessions() as session:
                links = list((await session.scalars(
                    select(FeedLinkRow).where(FeedLinkRow.settled.is_(False))
                    .order_by(FeedLinkRow.created_at_ms).limit(1000))).all())
        applied = 0
        for link in links:
            try:
                await self._invite_missing(link)
                applied += await self._advance(link)
            except BidroomError as exc:
                log.warning("feeding lot %s from %s: %s", link.lot_id, link.core_id,
                            exc.message)
        return applied

    async def _invite_missing(self, link: FeedLinkRow) -> None:
        with sql_errors("read registrations"):
            async with self._sessions() as session:
                waiting = [r for r in await self._registrations(session, link.lot_id,
                                                                 link.published_at_ms)
                           if r.invited_to != link.core_id]
        for registration in waiting:
            outcome = await self._invite(link.kind, link.core_id, registration.supplier_org_id)
            with sql_errors("record an invitation"):
                async with self._sessions.begin() as session:
                    await session.execute(
                        update(FeedRegistrationRow)
                        .where(FeedRegistrationRow.lot_id == link.lot_id,
                               FeedRegistrationRow.supplier_org_id
                               == registration.supplier_org_id)
                        .values(invited_to=link.core_id, outcome=outcome))

    async def _core_results(self, link: FeedLinkRow) -> tuple[
            tuple[int, tuple[str, ...]] | None, tuple[int, tuple[str, ...]] | None]:
        """(when the bids closed and who bid, when the result was confirmed and who is in),
        each None until it happened."""
        if link.kind == "opening":
            state = await self.openings.state(link.core_id)
            closed = (None if state.closed_at_ms is None
                      else (state.closed_at_ms, state.bidders))
            if state.confirmed_at_ms is None:
                return closed, None
            opened = tuple(s for s in state.bidders
                           if state.bids[s].status is BidStatus.DECRYPTED)
            return closed, (state.confirmed_at_ms, opened)
        stored = await self.auctions.get_result(link.core_id)
        if stored is None:
            return None, None
        row = stored[0]
        bidders = tuple(entry["supplier_id"] for entry in row.ranking)
        return (row.closed_at_ms, bidders), (row.closed_at_ms, bidders)

    async def _advance(self, link: FeedLinkRow) -> int:
        closed, confirmed = await self._core_results(link)
        applied = 0
        for _ in range(2):  # at most CloseBidding, then RecordOpening
            lot = await self.projects.lot(link.lot_id)
            if lot.rounds != link.round or lot.status not in ("announced", "bidding"):
                await self._settle(link)
                return applied
            command: CloseBidding | RecordOpening
            if lot.status == "announced" and closed is not None:
                command = CloseBidding(*closed)
            elif lot.status == "bidding" and confirmed is not None:
                command = RecordOpening(*confirmed)
            else:
                return applied
            await self.projects.run(None, link.lot_id, _constant(command))
            applied += 1
        return applied

    async def _settle(self, link: FeedLinkRow) -> None:
        with sql_errors("settle a lot's link"):
            async with self._sessions.begin() as session:
                await session.execute(update(FeedLinkRow)
                                      .where(FeedLinkRow.lot_id == link.lot_id,
                                             FeedLinkRow.round == link.round)
                                      .values(settled=True))


def _constant(command: CloseBidding | RecordOpening) -> Callable[[LotState, int], Command]:
    """A lot command fixed by the core's facts (its instant is the core's, not now)."""
    def build(state: LotState, now: int) -> Command:
        return command
    return build


class FeedReconciler(DuePass):
    """``FeedService.reconcile_once`` every ``poll_ms``, and at once when poked (the opening
    runner's ``on_change`` and the auction closer's ``on_result`` hooks poke it)."""

    def __init__(self, feed: FeedService, *, now_ms: Callable[[], Awaitable[int]],
                 poll_ms: int = 5_000) -> None:
        super().__init__(now_ms=now_ms, poll_ms=poll_ms, name="bidroom-feed")
        self.feed = feed

    async def run_once(self) -> int | None:
        await self.feed.reconcile_once()
        return None

    async def poke(self, *_: object) -> None:
        """A hook's callback: something changed in the core."""
        self.wake()


class Feed:
    """The feed of one server process: the consumer of group ``market.feed`` and the
    reconciler, started and stopped with the app (``web/services.py``)."""

    def __init__(self, service: FeedService, consumer: Consumer,
                 reconciler: FeedReconciler) -> None:
        self.service = service
        self.consumer = consumer
        self.reconciler = reconciler
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.consumer.run(), name="feed-consumer")
        self.reconciler.start()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.reconciler.stop()
