"""The tendering use cases on real SQL: a refused registration writes nothing, two concurrent
registrations of one supplier make one, refund dates are stored by the platform itself (no
principal), and a document's bytes are content-addressed and write-once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bidroom.backup import _data_files
from bidroom.errors import BidroomError, ConflictError, ValidationError
from market.calendar import BEIJING, CalendarService, CalendarStore
from market.events import OutboxRow
from market.projects.rules import Method, Publish
from market.projects.service import LotDraft, ProjectService
from market.registry import OrgKind, Principal, Role
from market.tendering.rules import BondMethod, BondProvision
from market.tendering.service import DownloadEvidence, TenderingService
from market.tendering.store import DocumentFiles

pytestmark = pytest.mark.asyncio

YUAN = 100
PURCHASER = Principal("u-p", "采购员", "org-p", "某市教育局", OrgKind.PURCHASER,
                      frozenset({Role.PURCHASER}))


def supplier(n: int) -> Principal:
    return Principal(f"u-s{n}", "投标员", f"org-s{n}", f"供应商{n}", OrgKind.SUPPLIER,
                     frozenset({Role.SUPPLIER}))


def at(day: date, hh: int = 9, mm: int = 30) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


class _Clock:
    ms = at(date(2026, 9, 11), 8)

    async def __call__(self) -> int:
        return self.ms


async def _body(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _world(session_factory: Any, data_dir: Path) -> tuple[TenderingService, str, _Clock]:
    clock = _Clock()
    projects = ProjectService(session_factory, CalendarService(CalendarStore(session_factory)),
                              now_ms=clock)
    project, lots = await projects.create_project(
        PURCHASER, title="某市教育局计算机采购", method=Method.OPEN_TENDER, region_code="440100",
        lots=[LotDraft("台式计算机", "A02010104", 1_000_000 * YUAN, 950_000 * YUAN,
                       bond_fen=10_000 * YUAN)])
    await projects.run(PURCHASER, lots[0].id, lambda s, now: Publish(
        now, at(date(2026, 9, 11), 9), at(date(2026, 9, 30), 17), at(date(2026, 10, 8)),
        project.budget_fen))
    return (TenderingService(session_factory, projects, DocumentFiles(data_dir), now_ms=clock),
            lots[0].id, clock)


async def _kinds(session_factory: Any) -> list[str]:
    async with session_factory() as session:
        return list((await session.scalars(select(OutboxRow.kind).where(
            OutboxRow.kind.startswith("tendering.")).order_by(OutboxRow.id))).all())


def _guarantee(number: str) -> BondProvision:
    return BondProvision(BondMethod.GUARANTEE, guarantee_number=number,
                         guarantee_issuer="中国银行广州分行")


async def test_a_refused_registration_writes_nothing_and_a_race_makes_one(
        session_factory: Any, tmp_path: Path) -> None:
    service, lot, _ = await _world(session_factory, tmp_path)
    with pytest.raises(ValidationError) as refused:
        await service.register(supplier(1), lot, BondProvision(BondMethod.NONE))
    assert refused.value.code == "bond_required"
    assert await _kinds(session_factory) == []
    results = await asyncio.gather(
        service.register(supplier(1), lot, _guarantee("BH1")),
        service.register(supplier(1), lot, _guarantee("BH2")), return_exceptions=True)
    made = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(made) == 1 and len(failed) == 1
    assert isinstance(failed[0], ConflictError) and failed[0].code == "already_registered"
    assert await _kinds(session_factory) == ["tendering.supplier_registered"]
    assert await service.registered_suppliers(lot) == ["org-s1"]


async def test_the_platform_records_refund_dates_and_files_are_write_once(
        session_factory: Any, tmp_path: Path) -> None:
    service, lot, clock = await _world(session_factory, tmp_path)
    for n in (1, 2):
        await service.register(supplier(n), lot, _guarantee(f"BH{n}"))
    rows = await service.record_bond_refund_due(None, lot, notice_ms=at(date(2026, 10, 20)),
                                                winner_org_id="org-s1")
    assert [(r.supplier_org_id, r.refund_due_day) for r in rows] == [("org-s2", "2026-10-27")]
    assert rows[0].refund_rule is not None and rows[0].refund_rule["article"] == "Reg 33"

    doc, v1 = await service.upload_document(PURCHASER, lot, title="招标文件",
                                            filename="a.pdf", content_type="",
                                            body=_body(b"same ", b"bytes"))
    _, v2 = await service.add_version(PURCHASER, doc.id, filename="a.pdf",
                                      content_type="text/plain; charset=utf-8",
                                      body=_body(b"same bytes"))
    assert (v1.sha256, v1.storage_path) == (v2.sha256, v2.storage_path)  # one file
    assert (v1.content_type, v2.content_type) == ("application/octet-stream", "text/plain")
    stored = tmp_path / v1.storage_path
    assert stored.read_bytes() == b"same bytes" and stored.stat().st_mode & 0o222 == 0
    assert not list((tmp_path / "tendering" / lot / ".incoming").iterdir())
    (tmp_path / "tendering" / lot / ".incoming" / "upload-x.part").write_bytes(b"partial")
    assert [name for name, _ in _data_files(tmp_path)] == [v1.storage_path]  # in `bidroom backup`
    clock.ms = at(date(2026, 9, 11), 10)
    got = await service.download(supplier(2), doc.id, 1, DownloadEvidence(
        "198.51.100.1", "10.0.0.2", None, "curl/8"))
    assert got.path == stored and got.version.version == 1
    downloads, total = await service.downloads(PURCHASER, lot)
    assert total == 1 and downloads[0].client_ip == "198.51.100.1"
    assert downloads[0].peer_ip == "10.0.0.2" and downloads[0].org_kind == "supplier"


async def test_an_upload_over_the_limit_leaves_no_file(session_factory: Any,
                                                        tmp_path: Path) -> None:
    service, lot, _ = await _world(session_factory, tmp_path)
    service.max_document_bytes = 8
    with pytest.raises(BidroomError) as refused:
        await service.upload_document(PURCHASER, lot, title="招标文件", filename="a.pdf",
                                      content_type="", body=_body(b"12345", b"67890"))
    assert refused.value.code == "document_too_large"
    assert not [p for p in (tmp_path / "tendering").rglob("*") if p.is_file()]
    assert await _kinds(session_factory) == []


async def test_two_concurrent_versions_make_one_and_the_other_is_told(
        session_factory: Any, tmp_path: Path) -> None:
    service, lot, _ = await _world(session_factory, tmp_path)
    doc, _ = await service.upload_document(PURCHASER, lot, title="招标文件", filename="a.pdf",
                                           content_type="", body=_body(b"v1"))
    results = await asyncio.gather(*(
        service.add_version(PURCHASER, doc.id, filename="a.pdf", content_type="",
                            body=_body(f"v2 by {n}".encode())) for n in (1, 2)),
        return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1, results
    assert isinstance(failed[0], ConflictError) and failed[0].code == "concurrent_change"
    docs = await service.documents(PURCHASER, lot)
    assert [v.version for v in docs[0][1]] == [1, 2] and docs[0][0].current_version == 2
    assert (await _kinds(session_factory)).count("tendering.document_published") == 2
