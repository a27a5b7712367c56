"""The services one server process holds, built in the app's lifespan and torn down after it.

Also the server clock: Redis' clock in production (the same clock the Lua script reads), or the
test clock — a value in Redis that tests set — when ``BIDROOM_TEST_CLOCK=1``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bidroom.auction.closer import AuctionCloser
from bidroom.auction.executor import AuctionExecutor
from bidroom.config import Settings
from bidroom.errors import StoreError
from bidroom.opening.backup import BackupCeremonies
from bidroom.opening.hall import OpeningHall
from bidroom.opening.runner import CA_DIR, OpeningRunner, load_or_init_ca, server_trust_store
from bidroom.opening.store import CiphertextFiles, OpeningStore
from bidroom.receipts import PlatformKey
from bidroom.rooms.hub import RoomHub
from bidroom.stores.redis import RedisClient, connect_redis, redis_time_ms
from bidroom.stores.sql import AuctionRepository, make_engine, make_session_factory
from market.calendar import CalendarService, CalendarStore
from market.events import Consumer, Relay
from market.experts.service import ExpertService
from market.feed import FEED_GROUP, FEED_KINDS, Feed, FeedReconciler, FeedService
from market.plans.service import PlanService
from market.projects.service import ProjectService
from market.registry import Registry
from market.tendering.service import TenderingService
from market.tendering.store import DocumentFiles
from web.db import upgrade_database

__all__ = ["SERVICES_STATE_KEY", "TEST_CLOCK_KEY", "ServerClock", "Services", "build_feed",
           "build_openings", "build_services", "name_ranking"]

log = logging.getLogger("bidroom.web")

TEST_CLOCK_KEY = "bidroom:testclock"
#: The key of the Services in the app's lifespan state, where the native WebSocket protocol
#: (web.wsproto, outside the ASGI app) finds them through uvicorn's ``app_state``.
SERVICES_STATE_KEY = "bidroom.services"
SHUTDOWN_STEP_S = 5.0


class ServerClock:
    """Server time in ms. ``script_now`` is what the Lua script gets: None = Redis' TIME."""

    def __init__(self, redis: RedisClient, *, test_clock: bool) -> None:
        self._redis = redis
        self._test = test_clock

    async def _test_now(self) -> int | None:
        try:
            raw = await self._redis.get(TEST_CLOCK_KEY)
        except RedisError as exc:
            raise StoreError(f"Redis failed reading the test clock: {exc}") from exc
        return int(raw) if raw is not None else None

    async def script_now(self) -> int | None:
        return await self._test_now() if self._test else None

    async def now_ms(self) -> int:
        if self._test:
            now = await self._test_now()
            if now is not None:
                return now
        return await redis_time_ms(self._redis)


async def name_ranking(registry: Registry, result: dict[str, Any]) -> dict[str, Any]:
    """A result with each ranked supplier's names (zh, en) and the winner's, after the close."""
    names: dict[str, tuple[str, str]] = {}
    ranking = []
    for entry in result.get("ranking", []):
        org = await registry.get_organisation(entry["supplier_id"])
        zh, en = (org.name, org.name_en) if org else ("", "")
        names[entry["supplier_id"]] = (zh, en)
        ranking.append({**entry, "supplier_name": zh, "supplier_name_en": en})
    decorated = {**result, "ranking": ranking}
    winner = result.get("winner_id")
    if winner is not None and winner in names:
        decorated["winner_name"], decorated["winner_name_en"] = names[winner]
    return decorated


@dataclass
class Services:
    settings: Settings
    redis: RedisClient
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry: Registry
    auctions: AuctionRepository
    executor: AuctionExecutor
    hub: RoomHub
    closer: AuctionCloser
    platform_key: PlatformKey
    clock: ServerClock
    openings: OpeningRunner
    hall: OpeningHall
    backup: BackupCeremonies  # the backup key's ceremonies (bidroom.opening.backup)
    calendar: CalendarService
    projects: ProjectService
    relay: Relay
    feed: Feed  # the market's feed of the core (market.feed)
    plans: PlanService
    tendering: TenderingService
    experts: ExpertService

    async def result_with_names(self, result: dict[str, Any]) -> dict[str, Any]:
        """Identities are revealed with the result: add each organisation's names."""
        return await name_ranking(self.registry, result)

    async def aclose(self) -> None:
        """Stop everything; a step that hangs (a dead connection) is abandoned after 5 s."""
        steps = (self.feed.stop, self.relay.stop, self.closer.stop, self.hub.stop, self.backup.stop,
                 self.openings.stop, self.hall.stop,
                 self.engine.dispose, self.redis.aclose)
        for step in steps:
            try:  # asyncio.timeout: unlike 3.11's wait_for it never loses a cancellation
                async with asyncio.timeout(SHUTDOWN_STEP_S):
                    await step()
            except TimeoutError:
                log.warning("shutdown step %s did not finish in %s s", step, SHUTDOWN_STEP_S)
            except (RedisError, OSError) as exc:
                log.warning("shutdown step %s failed: %s", step, exc)


async def build_openings(
    settings: Settings,
    redis: RedisClient,
    sessions: async_sessionmaker[AsyncSession],
    registry: Registry,
    clock: ServerClock,
) -> tuple[OpeningRunner, OpeningHall, BackupCeremonies]:
    """The opening runner, hall and backup ceremonies of one server process (called by
    ``build_services``).

    Creates the platform CA in ``DATA_DIR/ca`` on first start (``bidroom ca init`` uses the
    same directory); the trust store is that CA (with its current CRL) plus the external
    roots in ``DATA_DIR/ca/roots``, read afresh for every check so a revocation applies at
    once.
    """
    data_dir = settings.data_dir
    now = await clock.now_ms()
    await asyncio.to_thread(load_or_init_ca, data_dir / CA_DIR, now_ms=now)
    store = OpeningStore(sessions)
    runner = OpeningRunner(
        store, redis, CiphertextFiles(data_dir), now_ms=clock.now_ms,
        trust=lambda: server_trust_store(data_dir),
        poll_ms=100 if settings.test_clock else 1_000,
    )

    async def names(org_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for org_id in org_ids:
            org = await registry.get_organisation(org_id)
            found[org_id] = (org.name, org.name_en) if org else ("", "")
        return found

    async def meta(opening_id: str) -> dict[str, Any]:
        row = await store.get(opening_id)
        return {} if row is None else {"title": row.title, "title_en": row.title_en}

    hall = OpeningHall(runner, names=names, meta=meta, poll_s=0.2 if settings.test_clock else 1)
    backup = BackupCeremonies(runner, poll_ms=100 if settings.test_clock else 1_000)
    return runner, hall, backup


def build_feed(settings: Settings, redis: RedisClient,
               sessions: async_sessionmaker[AsyncSession], projects: ProjectService,
               openings: OpeningRunner, executor: AuctionExecutor, auctions: AuctionRepository,
               closer: AuctionCloser, clock: ServerClock) -> Feed:
    """The market's feed of the core: the consumer of ``project.lot_published`` and
    ``tendering.supplier_registered``, and the reconciler the core's hooks poke (the opening
    runner's ``on_change``, the auction closer's ``on_result``): the core announces, it never
    imports the market."""
    service = FeedService(sessions, projects, openings, executor, auctions, closer,
                          now_ms=clock.now_ms)
    consumer = Consumer(sessions, redis, group=FEED_GROUP, handler=service.handle,
                        now_ms=clock.now_ms, kinds=FEED_KINDS,
                        block_ms=200 if settings.test_clock else 1_000)
    reconciler = FeedReconciler(service, now_ms=clock.now_ms,
                                poll_ms=200 if settings.test_clock else 5_000)
    openings.on_change = reconciler.poke
    closer.on_result = reconciler.poke
    return Feed(service, consumer, reconciler)


async def build_services(settings: Settings, *, redis_url: str, database_url: str) -> Services:
    """Connect, migrate, load the platform key, start the hub and the closer."""
    redis = connect_redis(redis_url)
    clock = ServerClock(redis, test_clock=settings.test_clock)
    if settings.test_clock:
        log.warning("BIDROOM_TEST_CLOCK=1: server time comes from the Redis key %s",
                    TEST_CLOCK_KEY)
    await upgrade_database(database_url)
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    registry = Registry(sessions)
    auctions = AuctionRepository(sessions)
    executor = AuctionExecutor(redis, now_source=clock.script_now,
                               stream_maxlen=settings.stream_maxlen)
    platform_key = PlatformKey.load_or_create(settings.data_dir / "platform-key.pem")

    async def decorate_result(result: dict[str, Any]) -> dict[str, Any]:
        return await name_ranking(registry, result)

    hub = RoomHub(executor, now_ms=clock.now_ms, decorate_result=decorate_result)
    closer = AuctionCloser(executor, auctions, now_ms=clock.now_ms,
                           poll_ms=100 if settings.test_clock else 1_000)
    openings, hall, backup = await build_openings(settings, redis, sessions, registry, clock)
    calendar = CalendarService(CalendarStore(sessions))
    projects = ProjectService(sessions, calendar, now_ms=clock.now_ms)
    relay = Relay(sessions, redis, now_ms=clock.now_ms)
    feed = build_feed(settings, redis, sessions, projects, openings, executor, auctions, closer,
                      clock)
    plans = PlanService(sessions, calendar, now_ms=clock.now_ms,
                        threshold_fen=projects.rules.open_tender_threshold_fen)
    tendering = TenderingService(sessions, projects, DocumentFiles(settings.data_dir),
                                 now_ms=clock.now_ms)
    experts = ExpertService(sessions, now_ms=clock.now_ms)
    services = Services(settings, redis, engine, sessions, registry, auctions, executor, hub,
                        closer, platform_key, clock, openings, hall, backup, calendar, projects,
                        relay, feed, plans, tendering, experts)
    await hub.start()
    closer.start()
    await hall.start()
    openings.start()
    await backup.start_all()
    relay.start()
    feed.start()
    return services
