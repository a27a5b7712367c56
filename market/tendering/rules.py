"""Tender documents (招标文件), registration (报名) and bid bonds (投标保证金) as pure rules.

- **Documents** are uploaded for a lot by its purchaser or agency while the lot is ``draft``,
  ``announced`` or ``bidding`` (``market.projects.rules.LotStatus``); after that they are the
  record of what suppliers bid on and do not change (``documents_closed``).
- **Downloads** (``may_download``): a supplier downloads the documents of a lot it registered
  for, once the documents are issued (``documents_from_ms``, O87 18), and keeps that access (a
  clarified version reaches every registered supplier). Each download is recorded as evidence
  (DOMAIN.md §4: the same IP address or device fingerprint across suppliers).
- **Registration** (``check_registration``): while the lot is ``announced`` or ``bidding`` and
  before its deadline; one per supplier per lot and round; suppliers only.
- **Bid bonds** (``check_bond``, Reg 33): the lot's ``bond_fen`` (at most 2 % of the budget,
  ``market.projects.rules.check_lot_terms``) is provided by a non-cash payment from the
  supplier's account (``transfer``: a cheque, draft or bank transfer, with its payment
  reference and the paying account, since bonds paid from one account are deemed collusion,
  O87 37) of exactly ``bond_fen``, or by an electronic guarantee (电子保函) with its number and
  issuer. Refunds are due within 5 working days (Reg 33; O87 38): losers from the award
  notice, the winner from the contract's signing, a withdrawn registration from its withdrawal
  (``refund_due``).

Every refusal is a ``Refusal`` naming its code and article; nothing here raises for a rule.
Time (instants in ms) and the calendar come in as inputs: no I/O, no clock.

Must not import: web; no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from market.calendar.rules import CalendarData, StatutoryDate, beijing_day, compute

__all__ = [
    "DOCUMENT_STATUSES",
    "REGISTRATION_STATUSES",
    "BondMethod",
    "BondProvision",
    "RefundBasis",
    "Refusal",
    "check_bond",
    "check_document_upload",
    "check_fingerprint",
    "check_registration",
    "check_withdrawal",
    "may_download",
    "refund_due",
]

#: A lot takes documents until bids close (after it, they are what was bid on).
DOCUMENT_STATUSES: Final = frozenset({"draft", "announced", "bidding"})
#: A supplier registers for a lot that is published and still open for bids.
REGISTRATION_STATUSES: Final = frozenset({"announced", "bidding"})

_REFERENCE: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z/_.:-]{0,63}")
_ACCOUNT: Final = re.compile(r"[0-9A-Za-z]{6,34}")
#: A device fingerprint the page computes: 16 to 128 characters of base64url, hex or a UUID.
_FINGERPRINT: Final = re.compile(r"[0-9A-Za-z_=-]{16,128}")
_MAX_ISSUER: Final = 100


@dataclass(frozen=True, slots=True)
class Refusal:
    """A rule said no: the stable ``code``, the ``article`` (or ""), a bilingual message and
    details for the caller; ``status`` is the HTTP status class the edge answers with."""

    code: str
    status: int
    message: str
    article: str = ""
    details: Mapping[str, object] = field(default_factory=dict)


class BondMethod(StrEnum):
    NONE = "none"  # the lot asks for no bond
    TRANSFER = "transfer"  # 支票、汇票、本票或转账 from the supplier's account (Reg 33: not cash)
    GUARANTEE = "guarantee"  # 电子保函: a bank's or guarantor's electronic guarantee


class RefundBasis(StrEnum):
    AWARD_NOTICE = "award_notice"  # losers: from the award notice (Reg 33; O87 38)
    CONTRACT_SIGNING = "contract_signing"  # the winner: from the contract's signing
    WITHDRAWAL = "withdrawal"  # a registration withdrawn before the deadline


@dataclass(frozen=True, slots=True)
class BondProvision:
    """How a supplier provides the lot's bid bond."""

    method: BondMethod
    amount_fen: int = 0
    reference: str = ""  # transfer: the payment's reference (流水号)
    payer_account: str = ""  # transfer: the account it came from
    guarantee_number: str = ""  # guarantee: the e-guarantee's number (保函编号)
    guarantee_issuer: str = ""  # guarantee: the bank or guarantor that issued it


def check_document_upload(lot_status: str) -> Refusal | None:
    if lot_status not in DOCUMENT_STATUSES:
        return Refusal("documents_closed", 409,
                       f"此包当前状态（{lot_status}）不再接受招标文件 / the lot is {lot_status}: "
                       "its documents no longer change", details={"status": lot_status})
    return None


def check_fingerprint(value: str | None) -> Refusal | None:
    """A device fingerprint header, when sent, is 16–128 characters of ``0-9 A-Z a-z _ = -``."""
    if value is not None and not _FINGERPRINT.fullmatch(value):
        return Refusal("invalid_fingerprint", 422,
                       "设备指纹格式错误 / the device fingerprint must be 16 to 128 characters "
                       "of letters, digits, '_', '=' or '-'")
    return None


def check_registration(*, lot_status: str, deadline_ms: int | None, now_ms: int,
                       is_supplier: bool, existing_status: str | None) -> Refusal | None:
    """May this caller register for the lot now? ``existing_status``: its registration in the
    lot's current round (``registered``, ``withdrawn``) or None."""
    if not is_supplier:
        return Refusal("suppliers_only", 403,
                       "只有登记的供应商可以报名 / only a registered supplier registers for a lot")
    if lot_status not in REGISTRATION_STATUSES:
        return Refusal("registration_not_open", 409,
                       f"此包当前状态（{lot_status}）不接受报名 / the lot is {lot_status}: it "
                       "takes no registrations", details={"status": lot_status})
    if deadline_ms is None or now_ms >= deadline_ms:
        return Refusal("deadline_passed", 409,
                       "投标截止时间已过 / the bid deadline has passed", "GPL 35",
                       {"deadline_ms": deadline_ms})
    if existing_status == "registered":
        return Refusal("already_registered", 409,
                       "已报名此包 / already registered for this lot")
    if existing_status is not None:
        return Refusal("registration_withdrawn", 409,
                       "已撤回本轮报名，不能再次报名 / a registration withdrawn in this round "
                       "cannot be made again")
    return None


def check_withdrawal(*, status: str, deadline_ms: int | None, now_ms: int) -> Refusal | None:
    """A registration is withdrawn before the deadline (O87 34 lets a bid go until then)."""
    if status != "registered":
        return Refusal("registration_withdrawn", 409, "此报名已撤回 / already withdrawn")
    if deadline_ms is not None and now_ms >= deadline_ms:
        return Refusal("deadline_passed", 409,
                       "投标截止时间已过 / the bid deadline has passed", "O87 34",
                       {"deadline_ms": deadline_ms})
    return None


def check_bond(bond_fen: int, bond: BondProvision) -> Refusal | None:
    """The bond matches what the lot asks (Reg 33)."""
    if bond_fen == 0:
        if bond.method is not BondMethod.NONE:
            return Refusal("bond_not_required", 422,
                           "此包不收取投标保证金 / this lot asks for no bid bond", "Reg 33")
        return None
    if bond.method is BondMethod.NONE:
        return Refusal("bond_required", 422,
                       "此包须提交投标保证金（转账或电子保函）/ this lot needs a bid bond (a "
                       "transfer or an e-guarantee)", "Reg 33", {"bond_fen": bond_fen})
    if bond.method is BondMethod.TRANSFER:
        if bond.amount_fen != bond_fen:
            return Refusal("bond_amount_mismatch", 422,
                           f"保证金金额须为 {bond_fen} 分 / the bond is {bond_fen} fen",
                           "Reg 33", {"bond_fen": bond_fen})
        if not _REFERENCE.fullmatch(bond.reference):
            return Refusal("invalid_bond", 422,
                           "付款流水号：1–64 位字母数字 / the payment reference: 1 to 64 "
                           "letters and digits", "Reg 33", {"field": "reference"})
        if not _ACCOUNT.fullmatch(bond.payer_account):
            return Refusal("invalid_bond", 422,
                           "付款账号：6–34 位字母数字 / the paying account: 6 to 34 letters "
                           "and digits", "O87 37", {"field": "payer_account"})
        return None
    if not _REFERENCE.fullmatch(bond.guarantee_number):
        return Refusal("invalid_bond", 422,
                       "保函编号：1–64 位字母数字 / the guarantee number: 1 to 64 letters and "
                       "digits", "Reg 33", {"field": "guarantee_number"})
    issuer = bond.guarantee_issuer.strip()
    if not issuer or len(issuer) > _MAX_ISSUER:
        return Refusal("invalid_bond", 422,
                       f"出具保函的机构：1–{_MAX_ISSUER} 字 / the guarantee's issuer: 1 to "
                       f"{_MAX_ISSUER} characters", "Reg 33", {"field": "guarantee_issuer"})
    return None


def may_download(*, lot_status: str, documents_from_ms: int | None, now_ms: int,
                 registered: bool) -> Refusal | None:
    """A supplier's download: registered for the lot, the documents issued (O87 18)."""
    if not registered:
        return Refusal("not_registered", 403,
                       "报名后方可获取招标文件 / register for the lot to get its documents")
    if lot_status == "draft" or documents_from_ms is None or now_ms < documents_from_ms:
        return Refusal("documents_not_issued", 409,
                       "招标文件尚未开始发售 / the documents are not issued yet", "O87 18",
                       {"documents_from_ms": documents_from_ms})
    return None


def refund_due(calendar: CalendarData, at_ms: int) -> StatutoryDate:
    """The last day a bond is refunded: 5 working days from the Beijing day of the notice,
    the signing or the withdrawal (Reg 33; O87 38; ``RefundBasis`` says which, recorded
    beside the date), with the article and how sure it is."""
    return compute(calendar, "bond_refund", beijing_day(at_ms))
