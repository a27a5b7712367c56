"""Tender documents, their versions and downloads, registrations and bonds in SQL; the
documents' bytes in content-addressed, write-once files under ``DATA_DIR/tendering``.

Must not import: web.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bidroom.stores.files import ContentFiles
from bidroom.stores.sql import Base

__all__ = ["DocumentDownloadRow", "DocumentFiles", "DocumentVersionRow", "RegistrationRow",
           "TenderDocumentRow"]

_ID: Final = 64
# SQLite auto-increments only an INTEGER PRIMARY KEY.
_SERIAL: Final = BigInteger().with_variant(Integer(), "sqlite")


class TenderDocumentRow(Base):
    """One tender document of a lot (招标文件, 采购需求, 图纸 …); its bytes are its versions."""

    __tablename__ = "tender_documents"
    __table_args__ = (Index("ix_tender_documents_lot", "lot_id", "created_at_ms"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    lot_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    project_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    current_version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_by: Mapped[str] = mapped_column(String(_ID), nullable=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class DocumentVersionRow(Base):
    """One uploaded version of a document, with its SHA-256 (never changes once written)."""

    __tablename__ = "tender_document_versions"
    __table_args__ = (UniqueConstraint("document_id", "version"),)

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("tender_documents.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    storage_path: Mapped[str] = mapped_column(String(300), nullable=False)
    lot_status: Mapped[str] = mapped_column(String(20), nullable=False)  # when uploaded
    uploaded_by: Mapped[str] = mapped_column(String(_ID), nullable=False)
    uploaded_by_org: Mapped[str] = mapped_column(String(_ID), nullable=False)
    uploaded_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class DocumentDownloadRow(Base):
    """One download: who, when (server clock), from which address and device, which bytes.
    The evidence the collusion rules read (DOMAIN.md §4: same IP or device across bidders)."""

    __tablename__ = "tender_downloads"
    __table_args__ = (Index("ix_tender_downloads_lot", "lot_id", "at_ms"),
                      Index("ix_tender_downloads_ip", "lot_id", "client_ip"),
                      Index("ix_tender_downloads_device", "lot_id", "device_fingerprint"))

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    lot_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    document_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    org_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    org_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    client_ip: Mapped[str] = mapped_column(String(45), nullable=False)
    peer_ip: Mapped[str] = mapped_column(String(45), nullable=False)  # the TCP peer (a proxy?)
    device_fingerprint: Mapped[str | None] = mapped_column(String(128))
    user_agent: Mapped[str] = mapped_column(String(300), nullable=False)


class RegistrationRow(Base):
    """A supplier's registration (报名) for a lot in one round, with its bid bond."""

    __tablename__ = "tender_registrations"
    __table_args__ = (UniqueConstraint("lot_id", "round", "supplier_org_id"),
                      Index("ix_tender_registrations_supplier", "supplier_org_id"))

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    lot_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    project_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    round: Mapped[int] = mapped_column(Integer, nullable=False)
    supplier_org_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    user_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)  # registered / withdrawn
    registered_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    withdrawn_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    bond_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    bond_method: Mapped[str] = mapped_column(String(20), nullable=False)
    bond_reference: Mapped[str] = mapped_column(String(64), nullable=False)
    payer_account: Mapped[str] = mapped_column(String(34), nullable=False)
    guarantee_number: Mapped[str] = mapped_column(String(64), nullable=False)
    guarantee_issuer: Mapped[str] = mapped_column(String(100), nullable=False)
    refund_basis: Mapped[str | None] = mapped_column(String(20))
    refund_due_day: Mapped[str | None] = mapped_column(String(10))
    refund_rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    refunded_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    refund_reference: Mapped[str | None] = mapped_column(String(64))
    refunded_by: Mapped[str | None] = mapped_column(String(_ID))


class DocumentFiles(ContentFiles):
    """Content-addressed, write-once document files: ``DATA_DIR/tendering/<lot>/<sha256>.bin``
    (``bidroom.stores.files``, as the sealed bids are kept); ``document_corrupted`` when a
    stored file no longer matches, so a download never serves other bytes than it records."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, area="tendering", suffix=".bin", what="document")

    def incoming(self, lot_id: str) -> Path:
        """A fresh temporary file name on the same file system as the final place."""
        return self.temporary_name(self.incoming_dir(lot_id))
