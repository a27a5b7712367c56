"""The core's SQL adapter against SQLite (default) or the real PostgreSQL server."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import ConflictError, NotFoundError, StoreError, ValidationError
from bidroom.stores.sql import (
    AuctionBidRow,
    AuctionRepository,
    AuctionResultRow,
    AuctionRow,
    make_engine,
    make_session_factory,
    normalize_database_url,
)
from web.db import (
    database_revision,
    head_revision,
    included_in_comparison,
    load_models,
    upgrade_database,
    upgrade_database_sync,
)

Sessions = async_sessionmaker[AsyncSession]

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms: beyond 2**31
BIG_FEN = 12_345_678_901_234  # ~1234 亿元 in fen: beyond 2**31


def auction(
    auction_id: str,
    *,
    purchaser: str = "org_purchaser",
    agency: str | None = None,
    start_ms: int = T0,
) -> AuctionRow:
    return AuctionRow(
        id=auction_id,
        title="办公设备采购项目",
        title_en="Office equipment",
        purchaser_org_id=purchaser,
        agency_org_id=agency,
        created_by_user_id="usr_creator",
        settings={"ceiling_fen": BIG_FEN, "start_ms": start_ms, "end_ms": start_ms + 600_000},
        status="scheduled",
        created_at_ms=T0 - 1000,
        start_ms=start_ms,
        end_ms=start_ms + 600_000,
    )


def result(auction_id: str, *, winning_fen: int = BIG_FEN - 1000, failed: bool = False) -> Any:
    return AuctionResultRow(
        auction_id=auction_id,
        failed=failed,
        failure_reason="no_valid_bids" if failed else None,
        winner_org_id=None if failed else "org_s1",
        winning_fen=None if failed else winning_fen,
        ceiling_fen=BIG_FEN,
        savings_fen=None if failed else BIG_FEN - winning_fen,
        savings_bp=None if failed else 1,
        valid_bidders=0 if failed else 2,
        ranking=[] if failed else [{"rank": 1, "supplier": "org_s1", "price_fen": winning_fen}],
        closed_at_ms=T0 + 600_000,
        final_end_ms=T0 + 600_000,
        extensions=0,
        result_sha256="ab" * 32,
        persisted_at_ms=T0 + 600_100,
    )


def bids(auction_id: str, count: int) -> list[AuctionBidRow]:
    return [
        AuctionBidRow(
            auction_id=auction_id,
            seq=seq,
            supplier_org_id=f"org_s{seq % 2 + 1}",
            alias=seq % 2 + 1,
            bid_id=f"bid-{seq}",
            price_fen=BIG_FEN - seq * 100,
            at_ms=T0 + seq * 1000,
        )
        for seq in range(1, count + 1)
    ]


@pytest.fixture
def repo(session_factory: Sessions) -> AuctionRepository:
    return AuctionRepository(session_factory)


async def test_an_auction_is_stored_with_its_settings_and_invitations(
    repo: AuctionRepository,
) -> None:
    await repo.create_auction(auction("auc_1"), ["org_s2", "org_s1", "org_s2"], now_ms=T0)

    stored = await repo.get_auction("auc_1")
    assert stored is not None
    assert stored.title == "办公设备采购项目"
    assert stored.settings["ceiling_fen"] == BIG_FEN
    assert stored.start_ms == T0
    assert stored.status == "scheduled"
    assert stored.closed_at_ms is None
    assert sorted(await repo.invited_suppliers("auc_1")) == ["org_s1", "org_s2"]


async def test_an_unknown_auction_is_none(repo: AuctionRepository) -> None:
    assert await repo.get_auction("auc_missing") is None
    assert await repo.get_result("auc_missing") is None


async def test_creating_an_auction_with_a_taken_id_is_a_conflict(repo: AuctionRepository) -> None:
    await repo.create_auction(auction("auc_1"), [], now_ms=T0)
    with pytest.raises(ConflictError) as caught:
        await repo.create_auction(auction("auc_1"), ["org_s1"], now_ms=T0)
    assert caught.value.code == "auction_exists"
    assert await repo.invited_suppliers("auc_1") == []


async def test_auctions_are_listed_by_purchaser_agency_or_invited_supplier(
    repo: AuctionRepository,
) -> None:
    await repo.create_auction(
        auction("auc_a", purchaser="org_p1", start_ms=T0), ["org_s1"], now_ms=T0
    )
    await repo.create_auction(
        auction("auc_b", purchaser="org_p2", agency="org_g1", start_ms=T0 + 1),
        ["org_s1", "org_s2"],
        now_ms=T0,
    )
    await repo.create_auction(
        auction("auc_c", purchaser="org_p2", start_ms=T0 + 2), ["org_s3"], now_ms=T0
    )

    def ids(rows: list[AuctionRow]) -> list[str]:
        return [row.id for row in rows]

    assert ids(await repo.list_auctions()) == ["auc_c", "auc_b", "auc_a"]  # newest start first
    assert ids(await repo.list_auctions(purchaser_org_id="org_p2")) == ["auc_c", "auc_b"]
    assert ids(await repo.list_auctions(agency_org_id="org_g1")) == ["auc_b"]
    assert ids(await repo.list_auctions(supplier_org_id="org_s1")) == ["auc_b", "auc_a"]
    assert ids(await repo.list_auctions(supplier_org_id="org_nobody")) == []
    # Several filters combine with OR: the purchaser-or-agency view.
    assert ids(await repo.list_auctions(purchaser_org_id="org_p1", agency_org_id="org_g1")) == [
        "auc_b",
        "auc_a",
    ]
    assert ids(await repo.list_auctions(limit=1)) == ["auc_c"]
    await repo.set_status("auc_a", "open")
    assert ids(await repo.list_auctions(statuses=["open"])) == ["auc_a"]
    with pytest.raises(ValidationError):
        await repo.list_auctions(limit=0)


async def test_adding_invitations_ignores_duplicates_and_returns_the_new_ones(
    repo: AuctionRepository,
) -> None:
    await repo.create_auction(auction("auc_1"), ["org_s1"], now_ms=T0)

    added = await repo.add_invitations("auc_1", ["org_s1", "org_s2", "org_s2", "org_s3"], T0 + 5)

    assert added == ["org_s2", "org_s3"]
    assert await repo.invited_suppliers("auc_1") == ["org_s1", "org_s2", "org_s3"]
    assert await repo.add_invitations("auc_1", ["org_s3"], T0 + 6) == []
    assert await repo.add_invitations("auc_1", [], T0 + 7) == []


async def test_inviting_to_an_unknown_auction_is_not_found(repo: AuctionRepository) -> None:
    with pytest.raises(NotFoundError) as caught:
        await repo.add_invitations("auc_missing", ["org_s1"], T0)
    assert caught.value.code == "auction_not_found"


async def test_set_status_changes_the_status_and_closed_time(repo: AuctionRepository) -> None:
    await repo.create_auction(auction("auc_1"), [], now_ms=T0)

    await repo.set_status("auc_1", "open")
    stored = await repo.get_auction("auc_1")
    assert stored is not None and stored.status == "open" and stored.closed_at_ms is None

    await repo.set_status("auc_1", "failed", closed_at_ms=T0 + 10)
    stored = await repo.get_auction("auc_1")
    assert stored is not None and stored.status == "failed" and stored.closed_at_ms == T0 + 10

    with pytest.raises(ValidationError):
        await repo.set_status("auc_1", "paused")
    with pytest.raises(NotFoundError):
        await repo.set_status("auc_missing", "open")


async def test_saving_a_result_stores_it_with_the_bid_log_and_closes_the_auction(
    repo: AuctionRepository,
) -> None:
    await repo.create_auction(auction("auc_1"), ["org_s1", "org_s2"], now_ms=T0)
    log = bids("auc_1", 12)
    random.Random(7).shuffle(log)

    assert await repo.save_result(result("auc_1"), log) is True

    stored = await repo.get_result("auc_1")
    assert stored is not None
    row, stored_bids = stored
    assert row.winning_fen == BIG_FEN - 1000
    assert row.ceiling_fen == BIG_FEN
    assert row.ranking == [{"rank": 1, "supplier": "org_s1", "price_fen": BIG_FEN - 1000}]
    assert [bid.seq for bid in stored_bids] == list(range(1, 13))
    assert stored_bids[-1].price_fen == BIG_FEN - 1200
    auction_row = await repo.get_auction("auc_1")
    assert auction_row is not None
    assert auction_row.status == "closed"
    assert auction_row.closed_at_ms == T0 + 600_000


async def test_saving_a_failed_result_marks_the_auction_failed(repo: AuctionRepository) -> None:
    await repo.create_auction(auction("auc_1"), [], now_ms=T0)

    assert await repo.save_result(result("auc_1", failed=True), []) is True

    stored = await repo.get_result("auc_1")
    assert stored is not None and stored[0].failed and stored[1] == []
    auction_row = await repo.get_auction("auc_1")
    assert auction_row is not None and auction_row.status == "failed"


async def test_saving_a_result_twice_stores_only_the_first(repo: AuctionRepository) -> None:
    await repo.create_auction(auction("auc_1"), [], now_ms=T0)
    assert await repo.save_result(result("auc_1"), bids("auc_1", 3)) is True

    assert await repo.save_result(result("auc_1", winning_fen=5), bids("auc_1", 5)) is False

    stored = await repo.get_result("auc_1")
    assert stored is not None
    assert stored[0].winning_fen == BIG_FEN - 1000
    assert len(stored[1]) == 3


async def test_concurrent_saves_of_one_close_store_exactly_one_result(
    migrated_database_url: str,
) -> None:
    # Two engines stand for two server processes racing to persist the same close.
    engines = [make_engine(migrated_database_url) for _ in range(2)]
    try:
        repos = [AuctionRepository(make_session_factory(engine)) for engine in engines]
        await repos[0].create_auction(auction("auc_1"), ["org_s1"], now_ms=T0)

        outcomes = await asyncio.gather(
            *(
                repos[i % 2].save_result(
                    result("auc_1", winning_fen=BIG_FEN - i), bids("auc_1", 50)
                )
                for i in range(6)
            )
        )

        assert sorted(outcomes) == [False] * 5 + [True]
        stored = await repos[1].get_result("auc_1")
        assert stored is not None
        assert stored[0].winning_fen == BIG_FEN - outcomes.index(True)
        assert [bid.seq for bid in stored[1]] == list(range(1, 51))
    finally:
        for engine in engines:
            await engine.dispose()


async def test_saving_a_result_of_an_unknown_auction_is_not_found(
    repo: AuctionRepository,
) -> None:
    with pytest.raises(NotFoundError):
        await repo.save_result(result("auc_missing"), bids("auc_missing", 1))


async def test_saving_a_result_with_bids_of_another_auction_is_refused(
    repo: AuctionRepository,
) -> None:
    await repo.create_auction(auction("auc_1"), [], now_ms=T0)
    with pytest.raises(ValidationError):
        await repo.save_result(result("auc_1"), bids("auc_2", 1))
    assert await repo.get_result("auc_1") is None


async def test_audit_records_are_appended_and_listed_by_subject(repo: AuctionRepository) -> None:
    first = await repo.append_audit(
        at_ms=T0, action="create", subject="auc_1", actor_user_id="usr_1"
    )
    await repo.append_audit(
        at_ms=T0 + 1, action="pause", subject="auc_2", details={"reason": "网络故障"}
    )
    await repo.append_audit(
        at_ms=T0 + 2,
        action="pause",
        subject="auc_1",
        actor_user_id="usr_1",
        details={"reason": "供应商断线"},
    )

    records = await repo.list_audit("auc_1")

    assert [r.action for r in records] == ["create", "pause"]
    assert records[0].id == first.id
    assert records[0].details == {}
    assert records[1].details == {"reason": "供应商断线"}
    assert records[1].at_ms == T0 + 2
    assert await repo.list_audit("auc_nothing") == []


async def test_migrations_run_twice_without_error(migrated_database_url: str) -> None:
    await upgrade_database(migrated_database_url)
    await upgrade_database(migrated_database_url)
    # From a running loop the sync form migrates on a worker thread.
    upgrade_database_sync(migrated_database_url)

    assert await database_revision(migrated_database_url) == head_revision()


async def test_the_migrations_match_the_models(migrated_database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    metadata = load_models()
    engine = make_engine(migrated_database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync_conn: compare_metadata(
                    MigrationContext.configure(sync_conn, opts={
                        "compare_type": True, "include_name": included_in_comparison}),
                    metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


def test_plain_database_urls_get_an_async_driver() -> None:
    assert normalize_database_url("postgres://u:p%40ss@h:5432/db") == (
        "postgresql+asyncpg://u:p%40ss@h:5432/db"
    )
    assert normalize_database_url("postgresql://h/db").startswith("postgresql+asyncpg://")
    assert normalize_database_url("postgresql+asyncpg://h/db") == "postgresql+asyncpg://h/db"
    assert normalize_database_url("sqlite:///var/x.db") == "sqlite+aiosqlite:///var/x.db"
    assert normalize_database_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    for bad in ("mysql://h/db", "postgresql+psycopg2://h/db", "not a url"):
        with pytest.raises(ValidationError) as caught:
            normalize_database_url(bad)
        assert caught.value.code == "invalid_database_url"


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        async with engine.connect() as conn:
            journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
    finally:
        await engine.dispose()
    assert (journal, foreign_keys, busy) == ("wal", 1, 5000)


async def test_an_unreachable_database_raises_a_store_error() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nothing")
    try:
        repo = AuctionRepository(make_session_factory(engine))
        with pytest.raises(StoreError):
            await repo.get_auction("auc_1")
        with pytest.raises(StoreError):
            await upgrade_database("postgresql://postgres@127.0.0.1:1/nothing")
    finally:
        await engine.dispose()
