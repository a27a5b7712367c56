"""The tendering use cases (issue #11 item 6): tender documents and their versions, recorded
downloads, suppliers' registrations (报名) with their bid bonds, and the bonds' refunds. Each
use case writes in one SQL transaction, with its domain event (``market.events.emit``):

=================================  ===========================================================
``tendering.document_published``   lot_id, project_id, document_id, version, sha256, size, at_ms
``tendering.document_downloaded``  lot_id, project_id, document_id, version, sha256, org_id,
                                   user_id, client_ip, device_fingerprint, at_ms
``tendering.supplier_registered``  lot_id, project_id, supplier_org_id, at_ms
``tendering.registration_withdrawn`` lot_id, project_id, supplier_org_id, at_ms
``tendering.bond_refunded``        lot_id, project_id, supplier_org_id, bond_fen, at_ms
=================================  ===========================================================

(aggregate ``lot:<lot_id>``). The lot and its project are read through ``ProjectService``'s
public methods, never its tables. Who may do what:

- the project's purchaser and agency (``ProjectService.may_manage``; an administrator only
  inside its region) manage documents, see every registration and download, record refunds;
- supervisors and administrators whose region holds the project's ``region_code``
  (``market.registry.rules``) see documents, registrations and downloads;
- a supplier registers, withdraws and sees its own registration; it lists a lot's documents
  and downloads them once registered (``rules.may_download``).

Must not import: web.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import (
    BidroomError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from bidroom.stores.sql import sql_errors
from market.calendar.rules import StatutoryDate
from market.calendar.views import date_view
from market.events.outbox import emit
from market.projects.service import ProjectService
from market.projects.store import LotRow, ProjectRow
from market.registry import OrgKind, Principal, Role
from market.tendering.rules import (
    BondMethod,
    BondProvision,
    RefundBasis,
    Refusal,
    check_bond,
    check_document_upload,
    check_fingerprint,
    check_registration,
    check_withdrawal,
    may_download,
    refund_due,
)
from market.tendering.store import (
    DocumentDownloadRow,
    DocumentFiles,
    DocumentVersionRow,
    RegistrationRow,
    TenderDocumentRow,
)

__all__ = [
    "DEFAULT_MAX_DOCUMENT_BYTES",
    "Download",
    "DownloadEvidence",
    "TenderingService",
    "refusal_error",
]

#: A tender document's size limit (a setting of the service): 100 MiB.
DEFAULT_MAX_DOCUMENT_BYTES: Final = 100 * 1024 * 1024
_FILENAME: Final = re.compile(r"[^/\\\x00-\x1f\x7f-\x9f]{1,200}")
_CONTENT_TYPE: Final = re.compile(
    r"[a-z0-9][a-z0-9!#$&^_.+-]{0,40}/[a-z0-9][a-z0-9!#$&^_.+-]{0,58}")
_BAD_TEXT: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def refusal_error(refusal: Refusal) -> BidroomError:
    kind = {403: ForbiddenError, 409: ConflictError}.get(refusal.status, ValidationError)
    details = dict(refusal.details)
    if refusal.article:
        details["article"] = refusal.article
    return kind(refusal.message, code=refusal.code, **details)


def _refuse(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise refusal_error(refusal)


def _not_yours() -> ForbiddenError:
    return ForbiddenError("不是本项目的当事人或监督部门 / not a party to this project nor its "
                          "supervisor", code="not_your_project")


@dataclass(frozen=True, slots=True)
class DownloadEvidence:
    """What the edge knows of a download's origin (the collusion rules compare these)."""

    client_ip: str
    peer_ip: str
    device_fingerprint: str | None
    user_agent: str


@dataclass(frozen=True, slots=True)
class Download:
    """A recorded download: the version served and the verified file to send."""

    version: DocumentVersionRow
    path: Path


class TenderingService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], projects: ProjectService,
                 files: DocumentFiles, *, now_ms: Callable[[], Awaitable[int]],
                 max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> None:
        self._sessions = sessions
        self._projects = projects
        self.files = files
        self._now_ms = now_ms
        self.max_document_bytes = max_document_bytes

    # ------------------------------------------------------------------ who

    @staticmethod
    def manages(principal: Principal, project: ProjectRow) -> bool:
        """The project's purchaser or agency; an administrator only within its region."""
        if Role.ADMIN in principal.roles:
            scope = principal.scope
            return scope is not None and scope.sees(project.region_code)
        return ProjectService.may_manage(principal, project)

    @staticmethod
    def oversees(principal: Principal, project: ProjectRow) -> bool:
        """A supervisor or administrator whose region holds the project's."""
        if not principal.has_any_role(Role.SUPERVISOR, Role.ADMIN):
            return False
        scope = principal.scope
        return scope is not None and scope.sees(project.region_code)

    @staticmethod
    def is_supplier(principal: Principal) -> bool:
        return Role.SUPPLIER in principal.roles and principal.org_kind is OrgKind.SUPPLIER

    async def _lot(self, lot_id: str) -> tuple[LotRow, ProjectRow]:
        lot = await self._projects.lot(lot_id)
        project, _ = await self._projects.project(lot.project_id)
        return lot, project

    async def _manage(self, principal: Principal, lot_id: str) -> tuple[LotRow, ProjectRow]:
        lot, project = await self._lot(lot_id)
        if not self.manages(principal, project):
            raise ForbiddenError("不是本项目的采购人或代理机构 / not this project's purchaser or "
                                 "agency", code="not_your_project")
        return lot, project

    # ------------------------------------------------------------------ documents

    async def upload_document(self, principal: Principal, lot_id: str, *, title: str,
                              filename: str, content_type: str,
                              body: AsyncIterable[bytes]) -> tuple[TenderDocumentRow,
                                                                   DocumentVersionRow]:
        """A new document of the lot, as its version 1."""
        lot, project = await self._manage(principal, lot_id)
        _refuse(check_document_upload(lot.status))
        title = _line(title, "title", 200)
        document = TenderDocumentRow(id=f"doc_{secrets.token_hex(12)}", lot_id=lot.id,
                                     project_id=project.id, title=title, current_version=1,
                                     created_by=principal.user_id, created_at_ms=0)
        version = await self._store_version(principal, lot.id, document, 1, filename,
                                            content_type, body, new=True)
        return document, version

    async def add_version(self, principal: Principal, document_id: str, *, filename: str,
                          content_type: str, body: AsyncIterable[bytes]) -> tuple[
                              TenderDocumentRow, DocumentVersionRow]:
        """A new version of a document (a clarification or correction of the documents; the
        correction's announcement is the project's, O87 27)."""
        document = await self._document(document_id)
        lot, _ = await self._manage(principal, document.lot_id)
        _refuse(check_document_upload(lot.status))
        version = await self._store_version(principal, lot.id, document,
                                            document.current_version + 1, filename,
                                            content_type, body, new=False)
        return document, version

    async def _store_version(self, principal: Principal, lot_id: str,
                             document: TenderDocumentRow, number: int, filename: str,
                             content_type: str, body: AsyncIterable[bytes],
                             *, new: bool) -> DocumentVersionRow:
        filename = filename.strip()
        if not _FILENAME.fullmatch(filename) or _BAD_TEXT.search(filename):
            raise ValidationError("文件名：1–200 字，不含路径 / filename: 1 to 200 characters, no "
                                  "path", code="invalid_filename")
        content_type = (content_type.split(";")[0].strip().lower()
                        or "application/octet-stream")
        if not _CONTENT_TYPE.fullmatch(content_type):
            content_type = "application/octet-stream"
        temporary = self.files.incoming(lot_id)
        try:
            sha256, size = await self._receive(body, temporary)
            relative = await asyncio.to_thread(self.files.keep, lot_id, sha256, temporary)
        finally:
            temporary.unlink(missing_ok=True)
        lot = await self._projects.lot(lot_id)  # its state once the bytes are in
        _refuse(check_document_upload(lot.status))
        try:
            with sql_errors("store a tender document"):
                async with self._sessions.begin() as session:
                    now = await self._now_ms()
                    if new:
                        document.created_at_ms = now
                        session.add(document)
                        await session.flush()
                    else:
                        stored = await session.get(TenderDocumentRow, document.id)
                        assert stored is not None
                        if stored.current_version != number - 1:
                            raise ConflictError("此文件刚有新版本，请重试 / the document got a "
                                                "new version meanwhile: try again",
                                                code="concurrent_change")
                        stored.current_version = number
                        document.current_version = number
                    version = DocumentVersionRow(
                        document_id=document.id, version=number, filename=filename,
                        content_type=content_type, sha256=sha256, size=size,
                        storage_path=relative, lot_status=lot.status,
                        uploaded_by=principal.user_id, uploaded_by_org=principal.org_id,
                        uploaded_at_ms=now)
                    session.add(version)
                    emit(session, "tendering.document_published", f"lot:{lot_id}",
                         {"lot_id": lot_id, "project_id": document.project_id,
                          "document_id": document.id, "version": number, "sha256": sha256,
                          "size": size, "at_ms": now}, at_ms=now)
        except ConflictError as error:
            if error.code == "integrity_conflict":
                raise ConflictError("此文件刚有新版本，请重试 / the document got a new version "
                                    "meanwhile: try again", code="concurrent_change") from error
            raise
        return version

    async def _receive(self, body: AsyncIterable[bytes], path: Path) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        limit = self.max_document_bytes
        with path.open("xb") as sink:
            async for chunk in body:
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise ValidationError(f"文件超过 {limit} 字节 / the document is larger than "
                                          f"{limit} bytes", code="document_too_large",
                                          max_bytes=limit)
                digest.update(chunk)
                sink.write(chunk)
        if size == 0:
            raise ValidationError("上传内容为空 / the upload is empty: send the file as the body",
                                  code="empty_upload")
        return digest.hexdigest(), size

    async def _document(self, document_id: str) -> TenderDocumentRow:
        with sql_errors("read a tender document"):
            async with self._sessions() as session:
                row = await session.get(TenderDocumentRow, document_id)
        if row is None:
            raise NotFoundError("没有这个招标文件 / no such tender document",
                                code="document_not_found")
        return row

    async def documents(self, principal: Principal, lot_id: str) -> list[
            tuple[TenderDocumentRow, list[DocumentVersionRow]]]:
        """A lot's documents with their versions (newest last): for its managers, its
        supervisors and, once the documents are issued, any supplier (the contents need a
        registration)."""
        lot, project = await self._lot(lot_id)
        if not (self.manages(principal, project) or self.oversees(principal, project)):
            if not self.is_supplier(principal):
                raise _not_yours()
            if (lot.status == "draft" or lot.documents_from_ms is None
                    or await self._now_ms() < lot.documents_from_ms):
                return []  # not issued yet: a supplier sees none (O87 18)
        with sql_errors("list tender documents"):
            async with self._sessions() as session:
                docs = (await session.scalars(
                    select(TenderDocumentRow).where(TenderDocumentRow.lot_id == lot_id)
                    .order_by(TenderDocumentRow.created_at_ms, TenderDocumentRow.id))).all()
                versions = (await session.scalars(
                    select(DocumentVersionRow)
                    .where(DocumentVersionRow.document_id.in_([d.id for d in docs]))
                    .order_by(DocumentVersionRow.version))).all() if docs else []
        by_doc: dict[str, list[DocumentVersionRow]] = {d.id: [] for d in docs}
        for v in versions:
            by_doc[v.document_id].append(v)
        return [(d, by_doc[d.id]) for d in docs]

    async def download(self, principal: Principal, document_id: str, version: int | None,
                       evidence: DownloadEvidence) -> Download:
        """Record a download and give the verified file. A supplier must be registered for
        the lot in its current round, after the documents' first issue (O87 18)."""
        _refuse(check_fingerprint(evidence.device_fingerprint))
        document = await self._document(document_id)
        lot, project = await self._lot(document.lot_id)
        if not (self.manages(principal, project) or self.oversees(principal, project)):
            if not self.is_supplier(principal):
                raise _not_yours()
            mine = await self._registration_of(lot, principal.org_id)
            now = await self._now_ms()
            _refuse(may_download(lot_status=lot.status, documents_from_ms=lot.documents_from_ms,
                                 now_ms=now,
                                 registered=mine is not None and mine.status == "registered"))
        number = document.current_version if version is None else version
        with sql_errors("read a tender document"):
            async with self._sessions() as session:
                row = await session.scalar(select(DocumentVersionRow).where(
                    DocumentVersionRow.document_id == document_id,
                    DocumentVersionRow.version == number))
        if row is None:
            raise NotFoundError("没有这个版本 / no such version", code="version_not_found",
                                versions=document.current_version)
        path = await asyncio.to_thread(self.files.verify, row.storage_path, row.sha256)
        with sql_errors("record a download"):
            async with self._sessions.begin() as session:
                now = await self._now_ms()
                session.add(DocumentDownloadRow(
                    lot_id=lot.id, document_id=document_id, version=number, sha256=row.sha256,
                    user_id=principal.user_id, org_id=principal.org_id,
                    org_kind=str(principal.org_kind), at_ms=now,
                    client_ip=evidence.client_ip[:45], peer_ip=evidence.peer_ip[:45],
                    device_fingerprint=evidence.device_fingerprint,
                    user_agent=evidence.user_agent[:300]))
                emit(session, "tendering.document_downloaded", f"lot:{lot.id}",
                     {"lot_id": lot.id, "project_id": project.id, "document_id": document_id,
                      "version": number, "sha256": row.sha256, "org_id": principal.org_id,
                      "user_id": principal.user_id, "client_ip": evidence.client_ip,
                      "device_fingerprint": evidence.device_fingerprint, "at_ms": now},
                     at_ms=now)
        return Download(row, path)

    async def downloads(self, principal: Principal, lot_id: str, *, limit: int = 100,
                        offset: int = 0) -> tuple[list[DocumentDownloadRow], int]:
        """Every download of the lot's documents, oldest first: for its managers and
        supervisors (the evidence of DOMAIN.md §4)."""
        _, project = await self._lot(lot_id)
        if not (self.manages(principal, project) or self.oversees(principal, project)):
            raise _not_yours()
        with sql_errors("list downloads"):
            async with self._sessions() as session:
                where = DocumentDownloadRow.lot_id == lot_id
                total = await session.scalar(select(func.count()).select_from(
                    DocumentDownloadRow).where(where))
                rows = (await session.scalars(
                    select(DocumentDownloadRow).where(where)
                    .order_by(DocumentDownloadRow.at_ms, DocumentDownloadRow.id)
                    .limit(limit).offset(offset))).all()
        return list(rows), int(total or 0)

    # ------------------------------------------------------------------ registration

    async def _registration_of(self, lot: LotRow, org_id: str) -> RegistrationRow | None:
        with sql_errors("read a registration"):
            async with self._sessions() as session:
                return await session.scalar(select(RegistrationRow).where(
                    RegistrationRow.lot_id == lot.id, RegistrationRow.round == lot.rounds,
                    RegistrationRow.supplier_org_id == org_id))

    async def register(self, principal: Principal, lot_id: str,
                       bond: BondProvision) -> RegistrationRow:
        """Register the caller's supplier for the lot (报名) with its bid bond (Reg 33)."""
        lot, project = await self._lot(lot_id)
        supplier = self.is_supplier(principal)
        existing = await self._registration_of(lot, principal.org_id) if supplier else None
        now = await self._now_ms()
        _refuse(check_registration(lot_status=lot.status, deadline_ms=lot.deadline_ms,
                                   now_ms=now, is_supplier=supplier,
                                   existing_status=existing.status if existing else None))
        _refuse(check_bond(lot.bond_fen, bond))
        row = RegistrationRow(
            id=f"reg_{secrets.token_hex(12)}", lot_id=lot.id, project_id=project.id,
            round=lot.rounds, supplier_org_id=principal.org_id, user_id=principal.user_id,
            status="registered", registered_at_ms=now, bond_fen=lot.bond_fen,
            bond_method=str(bond.method), bond_reference=bond.reference.strip(),
            payer_account=bond.payer_account.strip(),
            guarantee_number=bond.guarantee_number.strip(),
            guarantee_issuer=bond.guarantee_issuer.strip())
        try:
            with sql_errors("register for a lot"):
                async with self._sessions.begin() as session:
                    await self._check_bond_unused(session, row)
                    session.add(row)
                    emit(session, "tendering.supplier_registered", f"lot:{lot.id}",
                         {"lot_id": lot.id, "project_id": project.id,
                          "supplier_org_id": principal.org_id, "at_ms": now}, at_ms=now)
        except ConflictError as error:
            if error.code == "integrity_conflict":
                raise ConflictError("已报名此包 / already registered for this lot",
                                    code="already_registered") from error
            raise
        return row

    @staticmethod
    async def _check_bond_unused(session: AsyncSession, row: RegistrationRow) -> None:
        """One payment or one guarantee backs one registration of a lot."""
        if row.bond_method == BondMethod.TRANSFER:
            same = RegistrationRow.bond_reference == row.bond_reference
        elif row.bond_method == BondMethod.GUARANTEE:
            same = ((RegistrationRow.guarantee_number == row.guarantee_number)
                    & (RegistrationRow.guarantee_issuer == row.guarantee_issuer))
        else:
            return
        used = await session.scalar(select(RegistrationRow.id).where(
            RegistrationRow.lot_id == row.lot_id, RegistrationRow.bond_method == row.bond_method,
            same).limit(1))
        if used is not None:
            raise ConflictError("此付款或保函已用于本包的另一报名 / this payment or guarantee "
                                "already backs another registration for the lot",
                                code="bond_reference_used")

    async def registrations(self, principal: Principal, lot_id: str) -> list[RegistrationRow]:
        """The lot's registrations (every round): all of them for its managers and
        supervisors, a supplier's own for a supplier."""
        _, project = await self._lot(lot_id)
        where = [RegistrationRow.lot_id == lot_id]
        if not (self.manages(principal, project) or self.oversees(principal, project)):
            if not self.is_supplier(principal):
                raise _not_yours()
            where.append(RegistrationRow.supplier_org_id == principal.org_id)
        with sql_errors("list registrations"):
            async with self._sessions() as session:
                return list((await session.scalars(
                    select(RegistrationRow).where(*where)
                    .order_by(RegistrationRow.registered_at_ms, RegistrationRow.id))).all())

    async def registered_suppliers(self, lot_id: str) -> list[str]:
        """The suppliers registered (not withdrawn) for the lot's current round, in order of
        registration: whom its opening or auction invites."""
        lot = await self._projects.lot(lot_id)
        with sql_errors("list registrations"):
            async with self._sessions() as session:
                return list((await session.scalars(
                    select(RegistrationRow.supplier_org_id).where(
                        RegistrationRow.lot_id == lot_id, RegistrationRow.round == lot.rounds,
                        RegistrationRow.status == "registered")
                    .order_by(RegistrationRow.registered_at_ms, RegistrationRow.id))).all())

    async def _registration(self, registration_id: str) -> RegistrationRow:
        with sql_errors("read a registration"):
            async with self._sessions() as session:
                row = await session.get(RegistrationRow, registration_id)
        if row is None:
            raise NotFoundError("没有这个报名 / no such registration",
                                code="registration_not_found")
        return row

    async def withdraw(self, principal: Principal, registration_id: str) -> RegistrationRow:
        """The supplier withdraws its registration before the deadline; a bond is then due
        back within 5 working days (O87 38)."""
        row = await self._registration(registration_id)
        if row.supplier_org_id != principal.org_id or not self.is_supplier(principal):
            raise ForbiddenError("只能撤回本单位的报名 / a supplier withdraws its own "
                                 "registration only", code="not_your_registration")
        lot, _ = await self._lot(row.lot_id)
        calendar = await self._projects.calendar.data()
        with sql_errors("withdraw a registration"):
            async with self._sessions.begin() as session:
                stored = await session.get(RegistrationRow, registration_id)
                assert stored is not None
                now = await self._now_ms()
                _refuse(check_withdrawal(status=stored.status, deadline_ms=lot.deadline_ms,
                                         now_ms=now))
                stored.status = "withdrawn"
                stored.withdrawn_at_ms = now
                if stored.bond_fen > 0:
                    _set_due(stored, RefundBasis.WITHDRAWAL, refund_due(calendar, now))
                emit(session, "tendering.registration_withdrawn", f"lot:{lot.id}",
                     {"lot_id": lot.id, "project_id": stored.project_id,
                      "supplier_org_id": stored.supplier_org_id, "at_ms": now}, at_ms=now)
        return stored

    # ------------------------------------------------------------------ bonds

    async def record_bond_refund_due(self, principal: Principal | None, lot_id: str, *,
                                     notice_ms: int | None = None,
                                     signing_ms: int | None = None,
                                     winner_org_id: str | None = None) -> list[RegistrationRow]:
        """Store when each bond of the lot's current round is due back (Reg 33; O87 38): told
        the award notice's instant, every registration but the winner's (5 working days from
        the notice); told the contract's signing, the winner's. ``principal`` None: the
        platform itself (a consumer of the award's events)."""
        if (notice_ms is None) == (signing_ms is None):
            raise ValidationError("须给出中标通知书发出时间或合同签订时间之一 / give the award "
                                  "notice's or the contract's signing instant, one of them",
                                  code="invalid_field", field="notice_ms")
        if signing_ms is not None and winner_org_id is None:
            raise ValidationError("合同签订须指明中标人 / the signing needs the winner",
                                  code="missing_field", field="winner_org_id")
        lot, _ = await self._lot(lot_id)
        if principal is not None:
            await self._manage(principal, lot_id)
        calendar = await self._projects.calendar.data()
        basis = RefundBasis.AWARD_NOTICE if notice_ms is not None else RefundBasis.CONTRACT_SIGNING
        at = notice_ms if notice_ms is not None else signing_ms
        assert at is not None
        due = refund_due(calendar, at)
        changed: list[RegistrationRow] = []
        with sql_errors("record bond refund dates"):
            async with self._sessions.begin() as session:
                rows = (await session.scalars(select(RegistrationRow).where(
                    RegistrationRow.lot_id == lot_id, RegistrationRow.round == lot.rounds,
                    RegistrationRow.status == "registered", RegistrationRow.bond_fen > 0,
                    RegistrationRow.refunded_at_ms.is_(None)))).all()
                for row in rows:
                    winner = row.supplier_org_id == winner_org_id
                    if winner != (basis is RefundBasis.CONTRACT_SIGNING):
                        continue
                    _set_due(row, basis, due)
                    changed.append(row)
        return changed

    async def refund_bond(self, principal: Principal, registration_id: str, *,
                          reference: str) -> RegistrationRow:
        """The purchaser or agency records that a bond was refunded (with the transfer's
        reference); ``details.late`` in the answer is the refund's day after its due day."""
        row = await self._registration(registration_id)
        _, project = await self._manage(principal, row.lot_id)
        reference = _line(reference, "reference", 64)
        with sql_errors("record a bond refund"):
            async with self._sessions.begin() as session:
                stored = await session.get(RegistrationRow, registration_id)
                assert stored is not None
                if stored.bond_fen == 0 or stored.bond_method == BondMethod.NONE:
                    raise ConflictError("此报名没有保证金 / this registration has no bond",
                                        code="no_bond")
                if stored.refunded_at_ms is not None:
                    raise ConflictError("保证金已退还 / the bond is already refunded",
                                        code="bond_already_refunded",
                                        refunded_at_ms=stored.refunded_at_ms)
                now = await self._now_ms()
                stored.refunded_at_ms = now
                stored.refund_reference = reference
                stored.refunded_by = principal.user_id
                emit(session, "tendering.bond_refunded", f"lot:{stored.lot_id}",
                     {"lot_id": stored.lot_id, "project_id": project.id,
                      "supplier_org_id": stored.supplier_org_id, "bond_fen": stored.bond_fen,
                      "at_ms": now}, at_ms=now)
        return stored


def _set_due(row: RegistrationRow, basis: RefundBasis, due: StatutoryDate) -> None:
    row.refund_basis = str(basis)
    row.refund_due_day = due.day.isoformat()
    row.refund_rule = date_view(due)


def _line(value: str, field: str, limit: int) -> str:
    text = value.strip()
    if not text or len(text) > limit or _BAD_TEXT.search(text):
        raise ValidationError(f"{field}: 1–{limit} 个字符 / 1 to {limit} characters",
                              code="invalid_field", field=field)
    return text
