"""Sealed remote bid opening (不见面开标) over HTTP, and CA login (证书登录). Issue #3.

Who does what (``web.auth`` roles; the pure rules are ``bidroom.opening.session``):

* a purchaser, or the agency running the procurement for it, **creates** an opening (invited
  suppliers, the deadline, the windows, optionally a k-of-n backup key) and **runs** it: marks
  a platform fault (撤回), reveals the record (唱标), answers objections, confirms the record;
* an invited supplier **uploads** its sealed bid before the deadline (streamed, checked to be a
  well-formed envelope sealed to its own encryption certificate, answered at once with a receipt
  signed by the platform), replaces or withdraws it, **signs in**, fetches the wrapped content
  key of its bid in the decryption window, unwraps it on its own machine and **submits the
  content key**; raises objections after 唱标;
* the named opening officials each fetch their sealed share of the backup key and, after the
  decryption window only, submit it; k of them rebuild the key;
* supervisors (and admins) see everything, read-only.

The backup key ceremony: when an opening with a backup is created the server generates the
key, splits it k-of-n (Shamir), seals each share at once to its official's encryption
certificate (named in the request) and drops the private key; only the certificate is kept.
No one at the platform, and no single official, can open a bid early.

CA login: ``POST /api/auth/ca/challenge`` gives a single-use random challenge (Redis, 2
minutes); ``POST /api/auth/ca/login`` checks the signature with the signing certificate, which
must chain to a trusted root and be unrevoked now, and issues a short-lived API token (2 h) for
the supplier user of the organisation the certificate names.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import html
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response

from bidroom.config import Settings
from bidroom.errors import (
    BidroomError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnauthenticatedError,
    ValidationError,
)
from bidroom.opening.ca import (
    PlatformCA,
    Usage,
    certificate_fingerprint,
    load_certificate,
    make_challenge,
    verify_login_signature,
)
from bidroom.opening.custody import seal_share
from bidroom.opening.envelope import inspect_envelope, recipient_for
from bidroom.opening.hall import (
    OpeningHall,
    named_record,
    personal_view,
    snapshot_view,
)
from bidroom.opening.runner import (
    CA_DIR,
    OpeningRunner,
    load_or_init_ca,
    ms_to_datetime,
    server_trust_store,
)
from bidroom.opening.session import (
    MAX_TEXT_LENGTH,
    AnswerObjection,
    BackupPolicy,
    BidDecrypted,
    BidReplaced,
    BidSubmitted,
    BidWithdrawn,
    Command,
    CommandRefused,
    Confirm,
    Decision,
    DecryptionFailed,
    MarkPlatformFault,
    ObjectionRaised,
    OpeningSettings,
    OpeningState,
    RaiseObjection,
    RecordConfirmed,
    ReplaceBid,
    Reveal,
    SignIn,
    SubmitBid,
    WithdrawBid,
    can_decrypt,
    phase_at,
    settings_from_dict,
)
from bidroom.opening.shamir import BackupKey, split_backup_key
from bidroom.opening.store import (
    CiphertextFiles,
    OpeningBidRow,
    OpeningRow,
    OpeningShareRow,
    OpeningStore,
    SupplierCertificateRow,
    verify_chain,
)
from bidroom.receipts import PlatformKey, canonical_json, sign_document
from bidroom.stores.redis import RedisClient, store_errors
from market.registry import OrgKind, Principal, Registry, Role
from web.api.common import (
    OperationSet,
    Reply,
    id_list,
    json_response,
    read_json,
    reject_unknown,
    text_field,
)
from web.api.schemas import BOOL, COUNT, ID, INT, MS, OBJECT, STRING, nullable, obj
from web.auth import audience_for, require_principal, require_role, services_of
from web.errors import error_response
from web.services import ServerClock, Services

__all__ = ["authorise_opening", "build_openings", "ops", "record_upload", "refusal_message"]

ops = OperationSet("openings")

CA_CHALLENGE_TTL_S: Final = 120
CA_TOKEN_TTL_MS: Final = 2 * 3600 * 1000
UPLOAD_CHUNK: Final = 1 << 16
BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
MANAGER: Final = "the opening's purchaser or its agency"
PARTY: Final = "the opening's purchaser or agency, invited suppliers, officials, supervisors"

# Refusal reasons of the session, for people (中文 / English).
_REASONS: Final[dict[str, str]] = {
    "not_invited": "未受邀请 / you are not invited to this opening",
    "deadline_passed": "投标截止时间已过，上传未在截止前完成 / the bid deadline has passed: "
    "the upload did not complete before it",
    "already_submitted": "已提交投标文件，请使用替换 / a bid is already submitted",
    "no_bid": "没有投标文件 / you have no bid in this opening",
    "same_bid": "与已提交的投标文件相同 / identical to the bid already submitted",
    "bid_too_large": "投标文件过大 / the bid file is too large",
    "invalid_digest": "摘要无效 / invalid digest",
    "not_a_bidder": "不是本次开标的投标人 / not a bidder in this opening",
    "opening_failed": "投标人不足三家，不予开标 / fewer than three bids: no opening (O87 41)",
    "sign_in_not_open": "签到尚未开始 / sign-in has not opened yet",
    "sign_in_closed": "签到已结束 / sign-in has closed",
    "already_signed_in": "已签到 / already signed in",
    "decryption_not_open": "解密尚未开始（投标截止前任何人不得解密）/ decryption opens at the "
    "deadline: nobody may decrypt before it",
    "window_closed": "解密时间已结束 / the decryption window has ended",
    "already_decrypted": "已解密 / already decrypted",
    "bid_withdrawn": "该投标已按平台故障撤回 / the bid was withdrawn for a platform fault",
    "not_signed_in": "请先签到 / sign in first",
    "record_revealed": "已唱标 / the record has been revealed",
    "already_withdrawn": "已撤回 / already withdrawn",
    "reason_required": "请填写原因 / a reason is required (1–2000 characters)",
    "decryption_in_progress": "解密尚未全部完成且解密时间未结束 / bids are still sealed and "
    "the decryption window is open",
    "already_revealed": "已唱标 / already revealed",
    "not_revealed": "尚未唱标 / the record has not been revealed yet",
    "already_confirmed": "开标记录已确认 / the record is already confirmed",
    "objection_window_closed": "异议时间已结束 / the objection window has ended",
    "objection_window_open": "异议时间尚未结束 / the objection window is still open",
    "objections_unanswered": "尚有异议未答复 / some objections are not answered yet",
    "unknown_objection": "没有该异议 / no such objection",
    "already_answered": "该异议已答复 / already answered",
    "text_required": "请填写内容 / text is required (1–2000 characters)",
    "no_backup": "本项目未设备用密钥 / this opening has no backup key",
    "not_an_official": "不是备用密钥保管人 / you are not an official of the backup key",
    "window_open": "解密时间结束后方可提交密钥分片 / shares are accepted only after the "
    "decryption window",
    "already_rebuilt": "备用密钥已重建 / the backup key was already rebuilt",
    "share_already_submitted": "已提交分片 / your share is already submitted",
    "not_enough_shares": "分片不足 / not enough shares",
    "backup_not_rebuilt": "备用密钥尚未重建 / the backup key is not rebuilt",
    "not_withdrawn_for_fault": "仅平台故障撤回的投标可用备用密钥解密 / only bids withdrawn for a "
    "platform fault are opened with the backup key",
}


def refusal_message(reason: str) -> str:
    return _REASONS.get(reason, reason)


def _refused(refusal: CommandRefused) -> ConflictError:
    return ConflictError(refusal_message(refusal.reason), code=refusal.reason,
                         command=refusal.command)


def new_opening_id() -> str:
    return f"opn_{uuid.uuid4().hex}"


# =============================================================================== composition


async def build_openings(
    settings: Settings,
    redis: RedisClient,
    sessions: async_sessionmaker[AsyncSession],
    registry: Registry,
    clock: ServerClock,
) -> tuple[OpeningRunner, OpeningHall]:
    """The opening runner and hall of one server process (called by ``build_services``).

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
    return runner, hall


# =============================================================================== helpers


@dataclass(frozen=True, slots=True)
class _Opening:
    row: OpeningRow
    state: OpeningState


def _officials(row: OpeningRow) -> list[str]:
    backup = row.settings.get("backup") or {}
    return list(backup.get("officials") or [])


def can_manage(principal: Principal, row: OpeningRow) -> bool:
    if principal.has_role(Role.PURCHASER) and principal.org_id == row.purchaser_org_id:
        return True
    return principal.has_role(Role.AGENCY) and principal.org_id == row.agency_org_id


def _sees_everything(principal: Principal, row: OpeningRow) -> bool:
    return can_manage(principal, row) or principal.has_any_role(Role.SUPERVISOR, Role.ADMIN)


async def authorise_opening(services: Services, principal: Principal,
                            opening_id: str) -> _Opening:
    """The opening, if the caller is a party to it (``opening_not_found``, ``not_invited``)."""
    row = await services.openings.store.get(opening_id)
    if row is None:
        raise NotFoundError(f"opening {opening_id} not found", code="opening_not_found",
                            opening_id=opening_id)
    state = await services.openings.state(opening_id)
    allowed = (
        _sees_everything(principal, row)
        or (principal.has_role(Role.SUPPLIER) and principal.org_id in state.invited)
        or principal.user_id in _officials(row)
    )
    if not allowed:
        raise ForbiddenError("you are not a party to this opening", code="not_invited")
    return _Opening(row, state)


async def _load(request: Request) -> tuple[Services, Principal, _Opening]:
    principal = await require_principal(request)
    services = services_of(request)
    opening = await authorise_opening(services, principal,
                                      request.path_params["opening_id"])
    return services, principal, opening


async def _manage(request: Request) -> tuple[Services, Principal, _Opening]:
    services, principal, opening = await _load(request)
    if not can_manage(principal, opening.row):
        raise ForbiddenError("only the opening's purchaser or its agency may do this",
                             code="not_your_opening")
    return services, principal, opening


async def _supplier(request: Request) -> tuple[Services, Principal, _Opening]:
    services, principal, opening = await _load(request)
    if not principal.has_role(Role.SUPPLIER):
        raise ForbiddenError("only suppliers do this", code="suppliers_only")
    if principal.org_id not in opening.state.invited:
        raise ForbiddenError("you are not invited to this opening", code="not_invited")
    return services, principal, opening


async def _run(services: Services, opening_id: str,
               make: Callable[[OpeningState, int], Command], *, actor: str) -> Decision:
    decision = await services.openings.execute(opening_id, make, actor=actor)
    await services.hall.refresh(opening_id)
    return decision


def _accept(decision: Decision) -> Decision:
    if decision.refusal is not None:
        raise _refused(decision.refusal)
    return decision


def _content_key(body: dict[str, Any]) -> bytes:
    """The 32-byte content key: ``content_key_b64`` (base64, as WebCrypto gives it) or
    ``content_key_hex`` (hex, as ``bidroom bid unwrap-key`` prints it)."""
    reject_unknown(body, KEY_FIELDS)
    b64, hexa = body.get("content_key_b64"), body.get("content_key_hex")
    if (b64 is None) == (hexa is None):
        raise ValidationError("send content_key_b64 or content_key_hex (one of them)",
                              code="missing_field", field="content_key_b64")
    try:
        if isinstance(hexa, str):
            key = bytes.fromhex(hexa.strip())
        elif isinstance(b64, str):
            cleaned = "".join(b64.split()).rstrip("=").replace("-", "+").replace("_", "/")
            key = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
        else:
            raise ValueError("not a string")
    except (binascii.Error, ValueError):
        raise ValidationError("the content key is not base64 / hex",
                              code="invalid_content_key") from None
    if len(key) != 32:
        raise ValidationError("a content key is 32 bytes (AES-256)", code="invalid_content_key")
    return key


def _ca(services: Services) -> PlatformCA:
    return PlatformCA.load(services.settings.data_dir / CA_DIR)


async def _registered_encryption(services: Services, org_id: str) -> list[str]:
    """The encryption certificates (PEM) the organisation registered, newest first."""
    rows = await services.openings.store.registered_certificates(org_id)
    return [r.encryption_certificate_pem for r in rows]


def _encryption_certificates(services: Services, org_id: str, now_ms: int, *,
                             valid_only: bool = True,
                             registered: Iterable[str] = ()) -> list[x509.Certificate]:
    """The organisation's encryption certificates: those it registered (``registered``, PEM,
    newest first: e.g. from a licensed CA) before those the platform CA issued, each group
    newest first. With ``valid_only``, those valid at ``now_ms`` (and, for the platform's,
    unrevoked: what its bids must be sealed to); otherwise all of them (the trust store then
    says what is wrong with one)."""
    at = ms_to_datetime(now_ms)
    own = [load_certificate(pem) for pem in registered]
    own = [c for c in own if not valid_only
           or c.not_valid_before_utc <= at <= c.not_valid_after_utc]
    ca = _ca(services)
    records = [r for r in ca.list_issued() if r.org_id == org_id and r.usage == "encryption"
               and (not valid_only
                    or (r.revoked_at is None and r.not_before <= at <= r.not_after))]
    records.sort(key=lambda r: r.not_before, reverse=True)
    return own + [ca.issued_certificate(r.serial) for r in records]


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


async def _names(services: Services, org_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for org_id in dict.fromkeys(org_ids):
        org = await services.registry.get_organisation(org_id)
        found[org_id] = (org.name, org.name_en) if org else ("", "")
    return found


async def _org_ref(services: Services, org_id: str | None) -> dict[str, Any] | None:
    if org_id is None:
        return None
    org = await services.registry.get_organisation(org_id)
    return {"id": org_id, "name": org.name if org else "", "name_en": org.name_en if org else ""}


async def opening_view(services: Services, principal: Principal, opening: _Opening) -> dict[
    str, Any
]:
    """The opening as this caller may see it: the record of creation, the live hall
    (snapshot), a supplier's own facts and the certificates it must seal to."""
    row, state = opening.row, opening.state
    now = await services.clock.now_ms()
    audience = audience_for(principal)
    names = await _names(services, state.invited)
    view: dict[str, Any] = {
        "id": row.id,
        "title": row.title,
        "title_en": row.title_en,
        "purchaser": await _org_ref(services, row.purchaser_org_id),
        "agency": await _org_ref(services, row.agency_org_id),
        "created_by_user_id": row.created_by_user_id,
        "created_at_ms": row.created_at_ms,
        "deadline_ms": row.deadline_ms,
        "phase": phase_at(state, now).value,
        "settings": row.settings,
        "hall": snapshot_view(state, audience, now, names,
                              {"title": row.title, "title_en": row.title_en}),
        "certificates": {"backup_certificate_pem": row.backup_certificate_pem},
    }
    if _sees_everything(principal, row):
        # Suppliers never learn who else is invited (collusion risk, DOMAIN §4).
        view["invited_supplier_ids"] = sorted(state.invited)
    if principal.has_role(Role.SUPPLIER) and principal.org_id in state.invited:
        view["you"] = personal_view(state, principal.org_id, now)
        registered = await _registered_encryption(services, principal.org_id)
        certs = await asyncio.to_thread(_encryption_certificates, services, principal.org_id,
                                        now, registered=registered)
        view["certificates"]["encryption_certificate_pem"] = _pem(certs[0]) if certs else None
    return view


# =============================================================================== schemas

_OPENING_SETTINGS_INPUT = obj(
    {
        "deadline_ms": {**MS, "description": "投标截止时间 = 开标时间 (O87 39)"},
        "sign_in_ms": {**COUNT, "description": "sign-in opens this long before the deadline "
                       "(default 30 min)"},
        "decryption_window_ms": {**INT, "minimum": 60_000,
                                 "description": "解密时间 (default 30 min)"},
        "objection_window_ms": {**COUNT, "description": "异议时间 after 唱标 (default 15 min)"},
        "min_bids": {**INT, "minimum": 1, "description": "fewer bids: no opening (default 3)"},
        "max_bid_bytes": {**INT, "minimum": 1024, "description": "default 1 GiB"},
    },
    ["deadline_ms"],
    closed=True,
)
_OFFICIAL_INPUT = obj(
    {"user_id": ID, "certificate_pem": {**STRING, "description": "the official's encryption "
                                        "certificate (PEM); its share is sealed to it"}},
    closed=True,
)
_OPENING_INPUT = obj(
    {
        "title": {**STRING, "minLength": 1, "maxLength": 200},
        "title_en": {**STRING, "maxLength": 200},
        "purchaser_org_id": {**ID, "description": "an agency names the purchaser"},
        "invited_supplier_ids": {"type": "array", "items": ID},
        "settings": _OPENING_SETTINGS_INPUT,
        "backup": obj({"k": {**INT, "minimum": 2},
                       "officials": {"type": "array", "items": _OFFICIAL_INPUT,
                                     "minItems": 2}}, closed=True),
    },
    ["title", "invited_supplier_ids", "settings"],
    closed=True,
)
_OPENING = obj(
    {"id": ID, "title": STRING, "deadline_ms": MS, "phase": STRING, "settings": OBJECT,
     "hall": OBJECT, "certificates": OBJECT},
    description="the opening: its settings, the live hall for your audience, `you` for a "
    "supplier, the certificates to seal to",
)
_RECEIPT = obj(
    {"v": {"const": 1}, "kind": {"const": "opening_bid_receipt"}, "opening_id": ID,
     "supplier_id": ID, "sha256": STRING, "size": COUNT, "server_time_ms": MS, "seq": COUNT,
     "replaces": nullable(STRING), "key_id": STRING, "signature": STRING},
    description="signed by the platform key (verify with bidroom.receipts.verify_document)",
)
_UPLOADED = obj({"opening_id": ID, "supplier_id": ID, "status": STRING, "sha256": STRING,
                 "size": COUNT, "receipt": _RECEIPT})
_SIMPLE = obj({"opening_id": ID, "seq": COUNT, "at_ms": MS}, ["opening_id"])
_TEXT_INPUT = obj({"text": {**STRING, "minLength": 1, "maxLength": MAX_TEXT_LENGTH}},
                  closed=True)
KEY_FIELDS: Final = ("content_key_b64", "content_key_hex")
_KEY_INPUT = obj({"content_key_b64": {**STRING, "description": "the 32-byte content key "
                                      "you unwrapped locally, base64"},
                  "content_key_hex": {**STRING, "description": "or the same in hex "
                                      "(`bidroom bid unwrap-key` prints hex)"}},
                 [], closed=True)
_RECORD = obj({"v": {"const": 1}, "kind": {"const": "opening_record"}, "opening_id": ID,
               "opened": {"type": "array"}, "not_opened": {"type": "array"},
               "sha256": STRING, "key_id": STRING, "signature": STRING},
              ["kind", "opening_id", "opened", "not_opened", "sha256", "signature"])

_DIGEST_EXAMPLE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_RECEIPT_EXAMPLE = {
    "v": 1, "kind": "opening_bid_receipt", "opening_id": "opn_5d0c", "supplier_id": "org_9a",
    "sha256": _DIGEST_EXAMPLE, "size": 1048576, "server_time_ms": 1767229199000, "seq": 7,
    "replaces": None, "key_id": "3f9a0c1d2e4b5a6f", "signature": "q0n…",
}


# =============================================================================== create, read


@ops.add(
    "POST",
    "/api/openings",
    summary_zh="创建不见面开标",
    summary_en="Create a sealed remote bid opening",
    description=(
        "The deadline is also the opening instant (O87 39). With `backup`, the server "
        "generates a backup opening key, splits it k-of-n among the named officials, seals "
        "each share to that official's encryption certificate and destroys the private key; "
        "bidders must then seal to the backup certificate too. At most k-1 officials may "
        "share one certificate."
    ),
    who="purchaser or agency",
    body=_OPENING_INPUT,
    body_example={
        "title": "某市第一中学计算机采购项目", "title_en": "No. 1 Middle School computers",
        "invited_supplier_ids": ["org_5a1c", "org_77d0", "org_c3e9"],
        "settings": {"deadline_ms": 1767229200000, "decryption_window_ms": 1800000},
    },
    responses={201: Reply("the opening", _OPENING)},
    errors={
        403: ("role_required", "not_your_organisation"),
        422: ("missing_field", "invalid_field", "invalid_title", "invalid_settings",
              "deadline_in_past", "unknown_supplier", "unknown_purchaser", "unknown_official",
              "official_certificate_mismatch", "officials_share_a_key", "unknown_ca",
              "certificate_revoked", "certificate_expired", "wrong_key_usage",
              "bad_certificate"),
    },
)
async def create_opening(request: Request) -> Response:
    principal = await require_principal(request)
    require_role(principal, Role.PURCHASER, Role.AGENCY)
    body = await read_json(request)
    reject_unknown(body, ("title", "title_en", "purchaser_org_id", "invited_supplier_ids",
                          "settings", "backup"))
    services = services_of(request)
    title = text_field(body, "title", required=True, code="invalid_title")
    title_en = text_field(body, "title_en", required=False, code="invalid_title") or ""
    assert title is not None
    named = text_field(body, "purchaser_org_id", required=False, max_length=64)
    agency_org_id: str | None = None
    if principal.has_role(Role.PURCHASER):
        if named is not None and named != principal.org_id:
            raise ForbiddenError("a purchaser creates openings only for itself",
                                 code="not_your_organisation")
        purchaser_org_id = principal.org_id
    else:
        if named is None:
            raise ValidationError("an agency must name the purchaser (purchaser_org_id)",
                                  code="missing_field", field="purchaser_org_id")
        purchaser = await services.registry.get_organisation(named)
        if purchaser is None or purchaser.kind != OrgKind.PURCHASER.value:
            raise ValidationError(f"{named} is not a purchaser organisation",
                                  code="unknown_purchaser")
        purchaser_org_id, agency_org_id = named, principal.org_id
    invited = id_list(body, "invited_supplier_ids", required=True)
    unknown = []
    for supplier_id in invited:
        org = await services.registry.get_organisation(supplier_id)
        if org is None or org.kind != OrgKind.SUPPLIER.value:
            unknown.append(supplier_id)
    if unknown:
        raise ValidationError(f"not supplier organisations: {', '.join(unknown)}",
                              code="unknown_supplier", supplier_ids=unknown)

    opening_id = new_opening_id()
    raw_settings = body.get("settings")
    if not isinstance(raw_settings, dict):
        raise ValidationError("settings must be an object", code="invalid_settings")
    if "opening_id" in raw_settings or "backup" in raw_settings:
        raise ValidationError("opening_id and backup are not settings fields",
                              code="invalid_settings")
    officials, certificates = await _check_officials(services, body.get("backup"))
    raw = {**raw_settings, "opening_id": opening_id}
    if officials:
        raw["backup"] = {"k": body["backup"]["k"], "officials": officials}
    settings, problems = settings_from_dict(raw)
    if settings is None:
        raise ValidationError(
            "the opening settings are not valid: "
            + "; ".join(f"{p.field}: {p.message}" for p in problems),
            code="invalid_settings",
            problems=[{"code": p.code, "field": p.field, "message": p.message}
                      for p in problems],
        )
    now = await services.clock.now_ms()
    if settings.deadline_ms <= now:
        raise ValidationError("the deadline is in the past", code="deadline_in_past",
                              deadline_ms=settings.deadline_ms, server_time_ms=now)
    row = OpeningRow(
        id=opening_id, title=title, title_en=title_en, purchaser_org_id=purchaser_org_id,
        agency_org_id=agency_org_id, created_by_user_id=principal.user_id,
        settings=settings.to_dict(), deadline_ms=settings.deadline_ms, created_at_ms=now,
        concluded_at_ms=None, backup_certificate_pem=None,
    )
    shares: list[OpeningShareRow] = []
    if settings.backup is not None:
        row.backup_certificate_pem, shares = await asyncio.to_thread(
            _backup_ceremony, services, settings, certificates, now)
    await services.openings.create(row, settings, invited, actor=principal.user_id,
                                   now_ms=now, shares=shares)
    opening = await authorise_opening(services, principal, opening_id)
    return json_response(await opening_view(services, principal, opening), 201)


async def _check_officials(services: Services, raw: Any) -> tuple[list[str],
                                                                   list[x509.Certificate]]:
    """The officials' user ids and encryption certificates, each verified now and naming
    the official's own organisation; no certificate held by k or more of them."""
    if raw is None:
        return [], []
    if not isinstance(raw, dict) or not isinstance(raw.get("officials"), list):
        raise ValidationError("backup needs k and officials", code="invalid_field",
                              field="backup")
    reject_unknown(raw, ("k", "officials"))
    k = raw.get("k")
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValidationError("backup.k must be a whole number", code="invalid_field",
                              field="backup.k")
    now = await services.clock.now_ms()
    trust = await asyncio.to_thread(services.openings.trust_store)
    users: list[str] = []
    certificates: list[x509.Certificate] = []
    for entry in raw["officials"]:
        if not isinstance(entry, dict):
            raise ValidationError("each official is {user_id, certificate_pem}",
                                  code="invalid_field", field="backup.officials")
        reject_unknown(entry, ("user_id", "certificate_pem"))
        user_id, pem = entry.get("user_id"), entry.get("certificate_pem")
        if not isinstance(user_id, str) or not isinstance(pem, str):
            raise ValidationError("each official is {user_id, certificate_pem}",
                                  code="invalid_field", field="backup.officials")
        user = await services.registry.get_user(user_id)
        if user is None or user.disabled:
            raise ValidationError(f"no such user {user_id}", code="unknown_official",
                                  user_id=user_id)
        cert = load_certificate(pem)
        identity = trust.verify(cert, at=ms_to_datetime(now), usage="encryption")
        if identity.org_id != user.org_id:
            raise ValidationError(
                f"the certificate of {user_id} names {identity.name}, not the official's "
                "organisation", code="official_certificate_mismatch", user_id=user_id)
        users.append(user_id)
        certificates.append(cert)
    fingerprints = [certificate_fingerprint(c) for c in certificates]
    if any(fingerprints.count(f) >= k for f in fingerprints):
        raise ValidationError(
            "k or more officials share one certificate: its holder alone could rebuild the "
            "backup key", code="officials_share_a_key")
    return users, certificates


def _backup_ceremony(services: Services, settings: OpeningSettings,
                     certificates: list[x509.Certificate],
                     now_ms: int) -> tuple[str, list[OpeningShareRow]]:
    """(thread) Generate the backup key, split it, seal each share to its official, and
    forget the private key. Returns the certificate (PEM) and the sealed shares."""
    backup = settings.backup
    assert isinstance(backup, BackupPolicy)
    ca = _ca(services)
    key = BackupKey.generate(ca, now=ms_to_datetime(now_ms), org_id=settings.opening_id[:64])
    shares = split_backup_key(key.private_key_pem, backup.k, backup.n)
    rows = []
    for official, certificate, share in zip(backup.officials, certificates, shares,
                                            strict=True):
        sealed = seal_share(share, certificate)
        rows.append(OpeningShareRow(
            opening_id=settings.opening_id, official_user_id=official,
            certificate_fingerprint=sealed["recipient_fingerprint"], sealed=sealed,
            share=None, submitted_at_ms=None))
    certificate = key.certificate
    del key, shares  # the private key and the plain shares exist nowhere after this
    return _pem(certificate), rows


@ops.add(
    "GET",
    "/api/openings",
    summary_zh="开标列表",
    summary_en="List openings",
    description="The openings the caller is a party to, newest deadline first.",
    who="any party",
    responses={200: Reply("openings", obj({"items": {"type": "array"}}))},
)
async def list_openings(request: Request) -> Response:
    principal = await require_principal(request)
    services = services_of(request)
    store = services.openings.store
    if principal.has_any_role(Role.SUPERVISOR, Role.ADMIN):
        rows = await store.list_openings(everything=True)
    else:
        rows = await store.list_openings(
            purchaser_org_id=principal.org_id if principal.has_role(Role.PURCHASER) else None,
            agency_org_id=principal.org_id if principal.has_role(Role.AGENCY) else None,
            supplier_org_id=principal.org_id if principal.has_role(Role.SUPPLIER) else None,
        )
    now = await services.clock.now_ms()
    items = []
    for row in rows:
        state = await services.openings.state(row.id)
        items.append({"id": row.id, "title": row.title, "title_en": row.title_en,
                      "deadline_ms": row.deadline_ms, "phase": phase_at(state, now).value})
    return json_response({"items": items})


@ops.add(
    "GET",
    "/api/openings/{opening_id}",
    summary_zh="开标详情与开标大厅状态",
    summary_en="An opening and its hall",
    description=(
        "The settings, the hall as your audience sees it (no bid content before 唱标), and "
        "for a supplier `you` plus `certificates.encryption_certificate_pem` (its own) and "
        "`certificates.backup_certificate_pem`: seal your bid to both."
    ),
    who=PARTY,
    responses={200: Reply("the opening", _OPENING)},
    errors={403: ("not_invited",), 404: ("opening_not_found",)},
)
async def get_opening(request: Request) -> Response:
    services, principal, opening = await _load(request)
    return json_response(await opening_view(services, principal, opening))


# =============================================================================== bids


@ops.add(
    "PUT",
    "/api/openings/{opening_id}/bid",
    summary_zh="上传（或替换）密封投标文件",
    summary_en="Upload (or replace) your sealed bid",
    description=(
        "The request body is the sealed envelope itself (`Content-Type: "
        "application/octet-stream`, e.g. `curl -T bid.cms`), streamed to disk. It must be a "
        "well-formed CMS AuthEnvelopedData sealed to your encryption certificate (and to the "
        "backup certificate when the opening has one). The upload completes when the server "
        "has the last byte, has checked the envelope and recorded it; that instant, on the "
        "receipt, must be before the deadline (电子招标投标办法 27). A second upload replaces "
        "the first (O87 34); the same file again answers 200 with the original receipt."
    ),
    who="an invited supplier",
    responses={201: Reply("accepted, with the signed receipt", _UPLOADED,
                          {"opening_id": "opn_5d0c", "supplier_id": "org_9a",
                           "status": "submitted", "sha256": _DIGEST_EXAMPLE, "size": 1048576,
                           "receipt": _RECEIPT_EXAMPLE}),
               200: Reply("the same file again: the original receipt", _UPLOADED)},
    errors={
        403: ("suppliers_only", "not_invited"),
        404: ("opening_not_found",),
        409: ("deadline_passed", "already_submitted", "no_bid"),
        422: ("empty_upload", "bid_too_large", "not_encrypted", "malformed_envelope",
              "unsupported_algorithm", "weak_key_transport", "not_a_recipient",
              "not_sealed_to_backup", "no_encryption_certificate", "certificate_revoked",
              "certificate_expired", "unknown_ca"),
    },
)
async def upload_bid(request: Request) -> Response:
    services, principal, opening = await _supplier(request)
    opening_id, supplier_id = opening.row.id, principal.org_id
    settings = opening.state.settings
    now = await services.clock.now_ms()
    if now >= settings.deadline_ms:
        raise _refused(CommandRefused("submit_bid", "deadline_passed"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_bid_bytes:
        raise ValidationError(f"the bid is larger than {settings.max_bid_bytes} bytes",
                              code="bid_too_large", max_bytes=settings.max_bid_bytes)
    files = services.openings.files
    temporary = files.temporary_name(files.incoming_dir(opening_id))
    try:
        sha256, size = await _receive(request, temporary, settings.max_bid_bytes)
        registered = await _registered_encryption(services, supplier_id)
        await asyncio.to_thread(_check_envelope, services, opening, supplier_id, temporary,
                                now, registered)
        relative = await asyncio.to_thread(files.keep, opening_id, sha256, temporary)
    finally:
        temporary.unlink(missing_ok=True)

    decision = await record_upload(services.openings, services.platform_key, opening_id,
                                   supplier_id, sha256=sha256, size=size, relative=relative,
                                   actor=principal.user_id)
    await services.hall.refresh(opening_id)
    refusal = decision.refusal
    if refusal is not None and refusal.reason == "same_bid":
        current = await services.openings.store.current_bid(opening_id, supplier_id)
        assert current is not None
        return json_response({"opening_id": opening_id, "supplier_id": supplier_id,
                              "status": "unchanged", "sha256": sha256, "size": size,
                              "receipt": current.receipt})
    if refusal is not None:
        kept = {b.sha256 for b in await services.openings.store.bids(opening_id)}
        if sha256 not in kept:
            files.path(relative).unlink(missing_ok=True)
        raise _refused(refusal)
    current = await services.openings.store.current_bid(opening_id, supplier_id)
    assert current is not None
    replaced = any(isinstance(e, BidReplaced) for e in decision.events)
    return json_response({"opening_id": opening_id, "supplier_id": supplier_id,
                          "status": "replaced" if replaced else "submitted",
                          "sha256": sha256, "size": size, "receipt": current.receipt}, 201)


async def record_upload(runner: OpeningRunner, platform_key: PlatformKey, opening_id: str,
                        supplier_id: str, *, sha256: str, size: int, relative: str,
                        actor: str) -> Decision:
    """Record a checked, stored upload as the supplier's bid (submit or replace) and issue
    its receipt, signed by the platform, at the decision's server time."""

    def make(state: OpeningState, at: int) -> Command:
        if supplier_id in state.bids:
            return ReplaceBid(supplier_id, sha256, size, at)
        return SubmitBid(supplier_id, sha256, size, at)

    def attach(decision: Decision) -> OpeningBidRow | None:
        for event in decision.events:
            if isinstance(event, BidSubmitted | BidReplaced):
                receipt = sign_document(platform_key, {
                    "v": 1, "kind": "opening_bid_receipt", "opening_id": opening_id,
                    "supplier_id": supplier_id, "sha256": sha256, "size": size,
                    "server_time_ms": event.at_ms, "seq": event.seq,
                    "replaces": event.previous_sha256 if isinstance(event, BidReplaced)
                    else None,
                })
                return OpeningBidRow(opening_id=opening_id, supplier_org_id=supplier_id,
                                     sha256=sha256, size=size, storage_path=relative,
                                     receipt=receipt, uploaded_at_ms=event.at_ms,
                                     seq=event.seq, current=True, status="sealed")
        return None

    return await runner.execute(opening_id, make, actor=actor, attach=attach)


async def _receive(request: Request, path: Path, limit: int) -> tuple[str, int]:
    """Stream the body to ``path`` while hashing it; never more than one chunk in memory."""
    digest = hashlib.sha256()
    size = 0
    with path.open("xb") as sink:
        try:
            async for chunk in request.stream():
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise ValidationError(f"the bid is larger than {limit} bytes",
                                          code="bid_too_large", max_bytes=limit)
                digest.update(chunk)
                sink.write(chunk)
        except ClientDisconnect:
            raise ValidationError("the upload was interrupted before its end: send it again",
                                  code="upload_incomplete") from None
    if size == 0:
        raise ValidationError("the upload is empty: send the sealed file as the body",
                              code="empty_upload")
    return digest.hexdigest(), size


def _check_envelope(services: Services, opening: _Opening, supplier_id: str, path: Path,
                    now_ms: int, registered: Iterable[str] = ()) -> None:
    """(thread) A well-formed envelope, sealed to one of the supplier's valid encryption
    certificates (registered or platform-issued; and to the backup key's certificate when
    there is one)."""
    info = inspect_envelope(path)
    certificates = _encryption_certificates(services, supplier_id, now_ms, valid_only=False,
                                            registered=registered)
    if not certificates:
        raise ValidationError(
            "you have no encryption certificate: register yours (PUT /api/certificates/me) "
            "or ask the platform CA for one (bidroom ca issue) before sealing",
            code="no_encryption_certificate")
    sealed_to = []
    for cert in certificates:
        try:
            recipient_for(info, cert)
        except BidroomError:
            continue
        sealed_to.append(cert)
    if not sealed_to:
        raise ValidationError(
            "the bid is not sealed to your encryption certificate (GET the opening: "
            "certificates.encryption_certificate_pem)", code="not_a_recipient")
    trust = services.openings.trust_store()
    problem: BidroomError | None = None
    for cert in sealed_to:
        try:
            trust.verify(cert, at=ms_to_datetime(now_ms), usage="encryption")
            break
        except BidroomError as exc:
            problem = problem or exc
    else:
        assert problem is not None
        raise problem
    if opening.row.backup_certificate_pem:
        try:
            recipient_for(info, load_certificate(opening.row.backup_certificate_pem))
        except BidroomError as exc:
            raise ValidationError(
                "this opening has a backup key: seal your bid to the backup certificate too "
                "(GET the opening: certificates.backup_certificate_pem)",
                code="not_sealed_to_backup") from exc


@ops.add(
    "DELETE",
    "/api/openings/{opening_id}/bid",
    summary_zh="撤回投标文件",
    summary_en="Withdraw your bid",
    description="Until the deadline (O87 34).",
    who="an invited supplier",
    responses={200: Reply("withdrawn", _SIMPLE)},
    errors={403: ("suppliers_only", "not_invited"), 404: ("opening_not_found",),
            409: ("deadline_passed", "no_bid")},
)
async def withdraw_bid(request: Request) -> Response:
    services, principal, opening = await _supplier(request)
    supplier_id = principal.org_id
    decision = _accept(await _run(services, opening.row.id,
                                  lambda s, at: WithdrawBid(supplier_id, at),
                                  actor=principal.user_id))
    event = next(e for e in decision.events if isinstance(e, BidWithdrawn))
    return json_response({"opening_id": opening.row.id, "sha256": event.sha256,
                          "seq": event.seq, "at_ms": event.at_ms})


@ops.add(
    "GET",
    "/api/openings/{opening_id}/receipts",
    summary_zh="投标回执",
    summary_en="Upload receipts",
    description=(
        "A supplier gets its own uploads with their signed receipts; the purchaser, agency and "
        "supervisors get everyone's, but only after the deadline."
    ),
    who=PARTY,
    responses={200: Reply("uploads, oldest first", obj({"items": {"type": "array"}}))},
    errors={403: ("not_invited",), 404: ("opening_not_found",), 409: ("decryption_not_open",)},
)
async def list_receipts(request: Request) -> Response:
    services, principal, opening = await _load(request)
    store = services.openings.store
    if principal.has_role(Role.SUPPLIER):
        rows = await store.bids(opening.row.id, principal.org_id)
    elif _sees_everything(principal, opening.row):
        now = await services.clock.now_ms()
        if now < opening.state.settings.deadline_ms:
            raise ConflictError("who has bid stays secret until the deadline",
                                code="decryption_not_open")
        rows = await store.bids(opening.row.id)
    else:
        rows = []
    items = [{"supplier_id": r.supplier_org_id, "sha256": r.sha256, "size": r.size,
              "uploaded_at_ms": r.uploaded_at_ms, "current": r.current, "status": r.status,
              "reason": r.reason, "receipt": r.receipt} for r in rows]
    return json_response({"items": items})


@ops.add(
    "POST",
    "/api/openings/{opening_id}/sign-in",
    summary_zh="签到",
    summary_en="Sign in (bidder)",
    description="Opens `sign_in_ms` before the deadline; needed before decrypting.",
    who="a bidder",
    responses={200: Reply("signed in", _SIMPLE)},
    errors={403: ("suppliers_only", "not_invited"), 404: ("opening_not_found",),
            409: ("not_a_bidder", "opening_failed", "sign_in_not_open", "sign_in_closed",
                  "already_signed_in")},
)
async def opening_sign_in(request: Request) -> Response:
    services, principal, opening = await _supplier(request)
    supplier_id = principal.org_id
    decision = _accept(await _run(services, opening.row.id,
                                  lambda s, at: SignIn(supplier_id, at),
                                  actor=principal.user_id))
    return json_response({"opening_id": opening.row.id, "seq": decision.state.seq,
                          "at_ms": decision.events[-1].at_ms})  # type: ignore[union-attr]


# =============================================================================== decryption


@ops.add(
    "GET",
    "/api/openings/{opening_id}/bid/encrypted-key",
    summary_zh="获取本方投标的加密密钥",
    summary_en="Your bid's wrapped content key",
    description=(
        "In the decryption window, after sign-in: the `encryptedKey` of your recipient info, "
        "base64. Unwrap it on your own machine with your encryption private key "
        "(`bidroom bid unwrap-key`, or WebCrypto RSA-OAEP-SHA256) and POST the result to "
        "`/decrypt`. Your private key never leaves your machine."
    ),
    who="a bidder",
    responses={200: Reply("the wrapped key", obj({
        "opening_id": ID, "encrypted_key_b64": STRING, "key_encryption_oid": STRING,
        "recipient_serial": STRING, "recipient_issuer": STRING, "sha256": STRING,
        "window_ends_ms": MS}))},
    errors={403: ("suppliers_only", "not_invited"), 404: ("opening_not_found",),
            409: ("decryption_not_open", "window_closed", "not_signed_in", "not_a_bidder",
                  "already_decrypted", "bid_withdrawn", "opening_failed",
                  "ciphertext_corrupted")},
)
async def get_encrypted_key(request: Request) -> Response:
    services, principal, opening = await _supplier(request)
    supplier_id, opening_id = principal.org_id, opening.row.id
    now = await services.clock.now_ms()
    refusal = can_decrypt(opening.state, supplier_id, now)
    if refusal is not None:
        raise _refused(CommandRefused("encrypted_key", refusal))
    bid = await services.openings.store.current_bid(opening_id, supplier_id)
    assert bid is not None
    registered = await _registered_encryption(services, supplier_id)
    certificates = await asyncio.to_thread(_encryption_certificates, services, supplier_id,
                                           bid.uploaded_at_ms, valid_only=False,
                                           registered=registered)
    files = services.openings.files

    def find() -> tuple[Any, x509.Certificate]:
        info = inspect_envelope(files.path(bid.storage_path))
        for cert in certificates:
            try:
                return recipient_for(info, cert), cert
            except BidroomError:
                continue
        raise ConflictError("the stored bid is not sealed to your certificate",
                            code="ciphertext_corrupted")

    recipient, cert = await asyncio.to_thread(find)
    await services.openings.note(opening_id, "key_issued", {"supplier_id": supplier_id},
                                 actor=principal.user_id)
    await services.hall.refresh(opening_id)
    return json_response({
        "opening_id": opening_id,
        "encrypted_key_b64": base64.b64encode(recipient.encrypted_key).decode("ascii"),
        "key_encryption_oid": recipient.key_encryption_oid,
        "recipient_serial": f"{cert.serial_number:x}",
        "recipient_issuer": recipient.issuer_name,
        "sha256": bid.sha256,
        "window_ends_ms": opening.state.settings.window_ends_ms,
    })


@ops.add(
    "POST",
    "/api/openings/{opening_id}/decrypt",
    summary_zh="提交内容密钥解密投标文件",
    summary_en="Decrypt your bid with its content key",
    description=(
        "The server re-hashes the stored ciphertext against your receipt, opens it with the "
        "key, verifies the inner signature against your signing certificate (valid and "
        "unrevoked at upload time) and keeps the opening form hidden until 唱标. A wrong key "
        "or a bad signature answers 422 with the reason (`details.attempts`) and may be "
        "retried within the window."
    ),
    who="a bidder",
    body=_KEY_INPUT,
    body_example={"content_key_b64": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="},
    responses={200: Reply("decrypted", obj({"opening_id": ID, "status": STRING,
                                            "seq": COUNT, "at_ms": MS}))},
    errors={403: ("suppliers_only", "not_invited"), 404: ("opening_not_found",),
            409: ("decryption_not_open", "window_closed", "not_signed_in", "not_a_bidder",
                  "already_decrypted", "bid_withdrawn", "opening_failed"),
            422: ("missing_field", "invalid_content_key", "bad_key_or_tampered",
                  "bad_signature", "digest_mismatch", "signer_mismatch",
                  "ciphertext_corrupted", "unknown_ca", "certificate_revoked",
                  "certificate_expired", "wrong_key_usage", "bad_certificate",
                  "malformed_envelope", "invalid_package", "invalid_opening_form")},
)
async def decrypt_bid(request: Request) -> Response:
    services, principal, opening = await _supplier(request)
    key = _content_key(await read_json(request))
    outcome = await services.openings.decrypt(opening.row.id, principal.org_id, key,
                                              actor=principal.user_id)
    await services.hall.refresh(opening.row.id)
    decision = outcome.decision
    for event in decision.events:
        if isinstance(event, BidDecrypted):
            return json_response({"opening_id": opening.row.id, "status": "decrypted",
                                  "seq": event.seq, "at_ms": event.at_ms})
        if isinstance(event, DecryptionFailed):
            return error_response(
                event.reason, outcome.message or event.reason, 422,
                {"attempts": event.attempts, "seq": event.seq,
                 "window_ends_ms": decision.state.settings.window_ends_ms,
                 "retry": "allowed until the window ends"})
    assert decision.refusal is not None
    raise _refused(decision.refusal)


@ops.add(
    "POST",
    "/api/openings/{opening_id}/bids/{supplier_id}/platform-fault",
    summary_zh="认定平台原因未解密（撤回）",
    summary_en="Mark a platform fault (撤回)",
    description=(
        "The bid was not decrypted for a reason outside the bidder (电子招标投标办法 31): it is "
        "withdrawn (撤回, the bond is returned), recorded with the reason. Until 唱标, also "
        "for a bid already revoked at the end of the window."
    ),
    who=MANAGER,
    body=obj({"reason": {**STRING, "minLength": 1, "maxLength": MAX_TEXT_LENGTH}},
             closed=True),
    body_example={"reason": "CA 服务中断，供应商无法解密 / the CA service was down"},
    responses={200: Reply("withdrawn", _SIMPLE)},
    errors={403: ("not_invited", "not_your_opening"), 404: ("opening_not_found",),
            409: ("decryption_not_open", "opening_failed", "not_a_bidder", "record_revealed",
                  "already_decrypted", "already_withdrawn", "reason_required")},
)
async def mark_platform_fault(request: Request) -> Response:
    services, principal, opening = await _manage(request)
    body = await read_json(request)
    reject_unknown(body, ("reason",))
    reason = body.get("reason")
    if not isinstance(reason, str):
        reason = ""
    supplier_id = request.path_params["supplier_id"]
    decision = _accept(await _run(
        services, opening.row.id,
        lambda s, at: MarkPlatformFault(supplier_id, reason, principal.user_id, at),
        actor=principal.user_id))
    return json_response({"opening_id": opening.row.id, "seq": decision.state.seq,
                          "at_ms": decision.events[-1].at_ms})  # type: ignore[union-attr]


# =============================================================================== 唱标, objections


@ops.add(
    "POST",
    "/api/openings/{opening_id}/reveal",
    summary_zh="唱标",
    summary_en="Reveal the opening record (唱标)",
    description=(
        "When every bid is decrypted or withdrawn, or the decryption window has ended: names, "
        "prices and the 开标一览表 of every decrypted bid are revealed to everyone at once "
        "(O87 41); the objection window starts."
    ),
    who=MANAGER,
    responses={200: Reply("the record", obj({"opening_id": ID, "seq": COUNT,
                                             "record": OBJECT, "objection_ends_ms": MS}))},
    errors={403: ("not_invited", "not_your_opening"), 404: ("opening_not_found",),
            409: ("decryption_not_open", "opening_failed", "already_revealed",
                  "decryption_in_progress")},
)
async def reveal_record(request: Request) -> Response:
    services, principal, opening = await _manage(request)
    decision = _accept(await _run(services, opening.row.id,
                                  lambda s, at: Reveal(principal.user_id, at),
                                  actor=principal.user_id))
    state = decision.state
    names = await _names(services, state.bidders)
    return json_response({"opening_id": opening.row.id, "seq": state.seq,
                          "record": named_record(state.record, names),
                          "objection_ends_ms": state.objection_ends_ms})


@ops.add(
    "POST",
    "/api/openings/{opening_id}/objections",
    summary_zh="提出异议",
    summary_en="Raise an objection",
    description="After 唱标, within the objection window (O87 42); everyone sees it.",
    who="a bidder",
    body=_TEXT_INPUT,
    body_example={"text": "对供应商2的交货期有疑义 / we question bidder 2's delivery time"},
    responses={201: Reply("raised", obj({"opening_id": ID, "objection_id": COUNT,
                                         "seq": COUNT, "at_ms": MS}))},
    errors={403: ("suppliers_only", "not_invited"), 404: ("opening_not_found",),
            409: ("not_a_bidder", "not_revealed", "already_confirmed",
                  "objection_window_closed", "text_required")},
)
async def raise_objection(request: Request) -> Response:
    services, principal, opening = await _supplier(request)
    body = await read_json(request)
    reject_unknown(body, ("text",))
    text = body.get("text") if isinstance(body.get("text"), str) else ""
    supplier_id = principal.org_id
    decision = _accept(await _run(services, opening.row.id,
                                  lambda s, at: RaiseObjection(supplier_id, str(text), at),
                                  actor=principal.user_id))
    event = next(e for e in decision.events if isinstance(e, ObjectionRaised))
    return json_response({"opening_id": opening.row.id, "objection_id": event.objection_id,
                          "seq": event.seq, "at_ms": event.at_ms}, 201)


@ops.add(
    "POST",
    "/api/openings/{opening_id}/objections/{objection_id}/answer",
    summary_zh="答复异议",
    summary_en="Answer an objection",
    who=MANAGER,
    body=_TEXT_INPUT,
    body_example={"text": "经核对，交货期符合招标文件要求 / checked: it meets the requirement"},
    responses={200: Reply("answered", _SIMPLE)},
    errors={403: ("not_invited", "not_your_opening"), 404: ("opening_not_found",),
            409: ("unknown_objection", "already_answered", "already_confirmed",
                  "text_required")},
)
async def answer_objection(request: Request) -> Response:
    services, principal, opening = await _manage(request)
    body = await read_json(request)
    reject_unknown(body, ("text",))
    text = body.get("text") if isinstance(body.get("text"), str) else ""
    raw_id = request.path_params["objection_id"]
    objection_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() else -1
    decision = _accept(await _run(
        services, opening.row.id,
        lambda s, at: AnswerObjection(objection_id, str(text), principal.user_id, at),
        actor=principal.user_id))
    return json_response({"opening_id": opening.row.id, "seq": decision.state.seq,
                          "at_ms": decision.events[-1].at_ms})  # type: ignore[union-attr]


@ops.add(
    "POST",
    "/api/openings/{opening_id}/confirm",
    summary_zh="确认开标记录",
    summary_en="Confirm the opening record",
    description=(
        "After the objection window, with every objection answered; absent bidders are deemed "
        "to accept (O87 42). The opening is concluded."
    ),
    who=MANAGER,
    responses={200: Reply("confirmed", obj({"opening_id": ID, "seq": COUNT, "at_ms": MS,
                                            "record_sha256": STRING}))},
    errors={403: ("not_invited", "not_your_opening"), 404: ("opening_not_found",),
            409: ("not_revealed", "already_confirmed", "objections_unanswered",
                  "objection_window_open")},
)
async def confirm_record(request: Request) -> Response:
    services, principal, opening = await _manage(request)
    decision = _accept(await _run(services, opening.row.id,
                                  lambda s, at: Confirm(principal.user_id, at),
                                  actor=principal.user_id))
    event = next(e for e in decision.events if isinstance(e, RecordConfirmed))
    document = await _record_document(services, opening.row.id)
    return json_response({"opening_id": opening.row.id, "seq": event.seq, "at_ms": event.at_ms,
                          "record_sha256": document["sha256"]})


# =============================================================================== backup key


@ops.add(
    "GET",
    "/api/openings/{opening_id}/backup/share",
    summary_zh="获取本人保管的备用密钥分片（已加密）",
    summary_en="Your sealed share of the backup key",
    description=(
        "The share is sealed to your encryption certificate: unwrap `encrypted_key_b64` on "
        "your own machine (`bidroom bid unwrap-key`) and, after the decryption window, POST "
        "the result to `/backup/shares`."
    ),
    who="a named official",
    responses={200: Reply("your sealed share", obj({
        "opening_id": ID, "official_user_id": ID, "encrypted_key_b64": STRING,
        "recipient_serial": STRING, "accepted_from_ms": MS, "k": COUNT, "n": COUNT}))},
    errors={403: ("not_invited", "not_an_official"), 404: ("opening_not_found",),
            409: ("no_backup",)},
)
async def get_backup_share(request: Request) -> Response:
    services, principal, opening = await _load(request)
    row = await services.openings.store.share(opening.row.id, principal.user_id)
    backup = opening.state.settings.backup
    if backup is None:
        raise ConflictError("this opening has no backup key", code="no_backup")
    if row is None:
        raise ForbiddenError("you are not an official of this backup key",
                             code="not_an_official")
    return json_response({
        "opening_id": opening.row.id, "official_user_id": principal.user_id,
        "encrypted_key_b64": row.sealed["encrypted_key"],
        "recipient_serial": row.sealed["recipient_serial"],
        "accepted_from_ms": opening.state.settings.window_ends_ms,
        "k": backup.k, "n": backup.n,
    })


@ops.add(
    "POST",
    "/api/openings/{opening_id}/backup/shares",
    summary_zh="提交备用密钥分片",
    summary_en="Submit your share of the backup key",
    description=(
        "Only after the decryption window. With k shares the backup key is rebuilt once, opens "
        "the bids withdrawn for a platform fault, and is dropped; every step is logged."
    ),
    who="a named official",
    body=_KEY_INPUT,
    body_example={"content_key_b64": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="},
    responses={200: Reply("accepted", obj({"opening_id": ID, "submitted": COUNT,
                                           "needed": COUNT, "rebuilt": BOOL,
                                           "opened_by_backup": {"type": "array"}}))},
    errors={403: ("not_invited", "not_an_official"), 404: ("opening_not_found",),
            409: ("no_backup", "window_open", "record_revealed", "already_rebuilt",
                  "share_already_submitted", "opening_failed"),
            422: ("missing_field", "invalid_content_key", "bad_key_or_tampered")},
)
async def submit_backup_share(request: Request) -> Response:
    services, principal, opening = await _load(request)
    key = _content_key(await read_json(request))
    if principal.user_id not in _officials(opening.row):
        raise ForbiddenError("you are not an official of this backup key",
                             code="not_an_official")
    decision = await services.openings.submit_share(
        opening.row.id, principal.user_id, key,
        backup_certificate_pem=opening.row.backup_certificate_pem or "")
    await services.hall.refresh(opening.row.id)
    _accept(decision)
    state = decision.state
    backup = state.settings.backup
    assert backup is not None
    return json_response({
        "opening_id": opening.row.id,
        "submitted": len(state.shares_submitted),
        "needed": backup.k,
        "rebuilt": state.backup_rebuilt_at_ms is not None,
        "opened_by_backup": [s for s, b in state.bids.items() if b.by_backup],
    })


# =============================================================================== the record


async def _record_document(services: Services, opening_id: str) -> dict[str, Any]:
    """The signed opening record: the record as revealed, the objections and answers, the
    confirmation, and the log entry it rests on; ``sha256`` over the canonical JSON of
    everything else, then the platform's signature over all of it."""
    row = await services.openings.store.get(opening_id)
    assert row is not None
    state = await services.openings.state(opening_id)
    if state.record is None:
        raise ConflictError(refusal_message("not_revealed"), code="not_revealed")
    names = await _names(services, state.bidders)
    log = await services.openings.store.log(opening_id)
    anchor = [r for r in log if r.kind != "noted"][-1]
    confirmed = next((r.data for r in reversed(log) if r.kind == "record_confirmed"), None)
    core: dict[str, Any] = {
        "v": 1,
        "kind": "opening_record",
        "opening_id": opening_id,
        "title": row.title,
        "title_en": row.title_en,
        "purchaser": await _org_ref(services, row.purchaser_org_id),
        "agency": await _org_ref(services, row.agency_org_id),
        "deadline_ms": state.settings.deadline_ms,
        "opened_at_ms": state.settings.deadline_ms,  # O87 39: the opening is the deadline
        "bids_closed_at_ms": state.closed_at_ms,  # when the server recorded it
        "revealed_at_ms": state.revealed_at_ms,
        "confirmed_at_ms": state.confirmed_at_ms,
        "status": "confirmed" if state.confirmed_at_ms is not None else "revealed",
        "bids_at_deadline": len(state.bidders),
        "opened": (named_record(state.record, names) or {}).get("opened", []),
        "not_opened": (named_record(state.record, names) or {}).get("not_opened", []),
        "objections": [
            {"objection_id": o.objection_id, "supplier_id": o.supplier_id,
             "name": names.get(o.supplier_id, ("", ""))[0], "text": o.text,
             "raised_at_ms": o.raised_at_ms, "answer": o.answer,
             "answered_at_ms": o.answered_at_ms}
            for o in state.objections
        ],
        "deemed_accepted": [] if confirmed is None else [
            {"supplier_id": s, "name": names.get(s, ("", ""))[0]}
            for s in confirmed.get("deemed_accepted", [])
        ],
        "log": {"seq": anchor.seq, "hash": anchor.hash},
    }
    digest = hashlib.sha256(canonical_json(core)).hexdigest()
    return sign_document(services.platform_key, {**core, "sha256": digest})


@ops.add(
    "GET",
    "/api/openings/{opening_id}/record",
    summary_zh="开标记录（签名 JSON）",
    summary_en="The opening record (signed JSON)",
    description=(
        "After 唱标. `sha256` is the SHA-256 of the canonical JSON (sorted keys, no spaces, "
        "UTF-8) of every field but `sha256`, `key_id` and `signature`; `signature` is the "
        "platform's Ed25519 signature over every field but itself (`GET /api/platform-key`). "
        "`log` names the opening-log entry the record rests on (hash-chained)."
    ),
    who=PARTY,
    responses={200: Reply("the signed record", _RECORD)},
    errors={403: ("not_invited",), 404: ("opening_not_found",), 409: ("not_revealed",)},
)
async def get_opening_record(request: Request) -> Response:
    services, _, opening = await _load(request)
    return json_response(await _record_document(services, opening.row.id))


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _yuan(fen: Any) -> str:
    if isinstance(fen, bool) or not isinstance(fen, int):
        return "—"
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def render_record_html(doc: dict[str, Any]) -> str:
    """A printable page of a signed record (Chinese first); every value escaped."""
    e = html.escape

    def cell(value: Any) -> str:
        return f"<td>{e(str(value))}</td>"

    opened_rows = []
    for entry in doc["opened"]:
        form = entry.get("form", {})
        items = "; ".join(f"{i.get('name', '')}: {i.get('value', '')}"
                          for i in form.get("items", []) if isinstance(i, dict))
        opened_rows.append(
            "<tr>" + cell(entry["order"]) + cell(f"{entry['name']} {entry.get('name_en', '')}")
            + cell(_yuan(form.get("total_price_fen"))) + cell(form.get("delivery_days", "—"))
            + cell(form.get("warranty_months", "—")) + cell(items or "—")
            + cell("备用密钥 backup key" if entry.get("by_backup") else "投标人 bidder")
            + f"<td class=mono>{e(entry['sha256'])}</td></tr>")
    not_opened_rows = [
        "<tr>" + cell(f"{entry['name']} {entry.get('name_en', '')}")
        + cell(f"{entry['status_zh']} {entry['status']}") + cell(entry.get("reason") or "—")
        + "</tr>" for entry in doc["not_opened"]]
    objection_rows = [
        "<tr>" + cell(o["objection_id"]) + cell(o["name"]) + cell(o["text"])
        + cell(o.get("answer") or "—") + "</tr>" for o in doc["objections"]]
    deemed = ", ".join(d["name"] for d in doc["deemed_accepted"]) or "—"
    agency = (doc.get("agency") or {}).get("name", "—")
    purchaser = (doc.get("purchaser") or {}).get("name", "—")
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>开标记录 Opening record — {e(doc['title'])}</title>
<style>
body {{ font-family: "Noto Serif CJK SC", "Songti SC", serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #444; padding: 4px 6px; text-align: left; vertical-align: top; }}
th {{ background: #eee; }} .mono {{ font-family: monospace; font-size: 0.75em; }}
footer {{ font-size: 0.8em; word-break: break-all; }}
@media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>开标记录 <small>Opening record</small></h1>
<table>
<tr><th>项目 Project</th><td>{e(doc['title'])}<br>{e(doc.get('title_en') or '')}</td></tr>
<tr><th>开标编号 Opening</th><td class=mono>{e(doc['opening_id'])}</td></tr>
<tr><th>采购人 Purchaser</th><td>{e(purchaser)}</td></tr>
<tr><th>代理机构 Agency</th><td>{e(agency)}</td></tr>
<tr><th>投标截止 / 开标时间 Deadline = opening (O87 39)</th>
<td>{_when(doc['deadline_ms'])} (北京时间 Beijing time)</td></tr>
<tr><th>唱标时间 Revealed</th><td>{_when(doc['revealed_at_ms'])}</td></tr>
<tr><th>确认时间 Confirmed</th><td>{_when(doc['confirmed_at_ms'])}</td></tr>
<tr><th>截止时投标人数 Bids at the deadline</th><td>{e(str(doc['bids_at_deadline']))}</td></tr>
</table>
<h2>唱标 <small>Bids opened</small></h2>
<table><tr><th>序号 No.</th><th>投标人 Bidder</th><th>投标总价 Total price</th>
<th>交货期（天）Delivery (days)</th><th>质保期（月）Warranty (months)</th>
<th>开标一览表 Items</th><th>解密 Decrypted by</th><th>密文 SHA-256 Ciphertext</th></tr>
{''.join(opened_rows) or '<tr><td colspan=8>—</td></tr>'}</table>
<h2>未解密的投标 <small>Bids not opened (撤销: bidder's fault; 撤回: platform fault)</small></h2>
<table><tr><th>投标人 Bidder</th><th>状态 Status</th><th>原因 Reason</th></tr>
{''.join(not_opened_rows) or '<tr><td colspan=3>—</td></tr>'}</table>
<h2>异议与答复 <small>Objections and answers (O87 42)</small></h2>
<table><tr><th>编号 No.</th><th>投标人 Bidder</th><th>异议 Objection</th><th>答复 Answer</th></tr>
{''.join(objection_rows) or '<tr><td colspan=4>—</td></tr>'}</table>
<p>未参加开标、视为认可开标结果的投标人 / absent, deemed to accept (O87 42): {e(deemed)}</p>
<footer>
<p>记录摘要 SHA-256: <span class=mono>{e(doc['sha256'])}</span></p>
<p>平台签名 Platform signature (Ed25519, key {e(doc['key_id'])}):
<span class=mono>{e(doc['signature'])}</span></p>
<p>开标日志 Opening log: entry {e(str(doc['log']['seq']))},
<span class=mono>{e(doc['log']['hash'])}</span></p>
</footer></body></html>
"""


@ops.add(
    "GET",
    "/api/openings/{opening_id}/record.html",
    summary_zh="开标记录（可打印页面）",
    summary_en="The opening record (printable page)",
    description="The signed record as a printable HTML page, Chinese first, with its hash.",
    who=PARTY,
    responses={200: Reply("text/html")},
    errors={403: ("not_invited",), 404: ("opening_not_found",), 409: ("not_revealed",)},
)
async def get_opening_record_html(request: Request) -> Response:
    services, _, opening = await _load(request)
    doc = await _record_document(services, opening.row.id)
    return HTMLResponse(render_record_html(doc))


@ops.add(
    "GET",
    "/api/openings/{opening_id}/log",
    summary_zh="开标日志（全程留痕）",
    summary_en="The opening log (hash-chained)",
    description=(
        "Every step, in order: `hash = sha256(prev_hash + canonical entry)` where the entry "
        "is the canonical JSON of `{opening_id, actor, event}`. `chain_ok` says whether the "
        "stored chain verifies. Before the deadline only supervisors (it names who has bid); "
        "bidders after 唱标."
    ),
    who=PARTY,
    responses={200: Reply("the log", obj({"items": {"type": "array"}, "chain_ok": BOOL,
                                          "problem": nullable(STRING)}))},
    errors={403: ("not_invited",), 404: ("opening_not_found",),
            409: ("not_revealed", "decryption_not_open")},
)
async def get_opening_log(request: Request) -> Response:
    services, principal, opening = await _load(request)
    if not _sees_everything(principal, opening.row) and not opening.state.revealed:
        raise ConflictError(refusal_message("not_revealed"), code="not_revealed")
    now = await services.clock.now_ms()
    if (now < opening.state.settings.deadline_ms
            and not principal.has_any_role(Role.SUPERVISOR, Role.ADMIN)):
        # Before the deadline the log names who has bid: nobody running the procurement may
        # learn that (collusion risk, DOMAIN §4); supervisors may.
        raise ConflictError("who has bid stays secret until the deadline",
                            code="decryption_not_open")
    rows = await services.openings.store.log(opening.row.id)
    problem = verify_chain(rows)
    items = [{"seq": r.seq, "at_ms": r.at_ms, "kind": r.kind, "actor": r.actor,
              "event": _redacted(r.data, opening.state), "prev_hash": r.prev_hash,
              "hash": r.hash} for r in rows]
    return json_response({"items": items, "chain_ok": problem is None, "problem": problem})


def _redacted(data: dict[str, Any], state: OpeningState) -> dict[str, Any]:
    """Before 唱标 a decrypted bid's form stays out of every view, the log's included."""
    if data.get("kind") == "bid_decrypted" and not state.revealed:
        return {k: v for k, v in data.items() if k not in ("form", "signer")}
    return data


# ===================================================================== supplier certificates


_CERTIFICATE_FIELDS: Final = ("signing_certificate_pem", "encryption_certificate_pem")
_CERTIFICATES_INPUT = obj({name: STRING for name in _CERTIFICATE_FIELDS}, closed=True)
_CERTIFICATE_INFO = obj({"serial": STRING, "fingerprint": STRING, "subject": STRING,
                         "issuer": STRING, "not_after_ms": MS, "pem": STRING})
_CERTIFICATES = obj({"org_id": ID, "source": STRING, "registered_at_ms": nullable(MS),
                     "signing": nullable(_CERTIFICATE_INFO),
                     "encryption": nullable(_CERTIFICATE_INFO)})


def _subject_values(cert: x509.Certificate) -> set[str]:
    """The subject's OU and serialNumber values (where CAs put an organisation's id)."""
    found: set[str] = set()
    for oid in (NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.SERIAL_NUMBER):
        for attribute in cert.subject.get_attributes_for_oid(oid):
            value = attribute.value
            text = value if isinstance(value, str) else value.decode("utf-8", "replace")
            found.add(text.strip().upper())
    return found


def _certificate_info(cert: x509.Certificate) -> dict[str, Any]:
    return {"serial": f"{cert.serial_number:x}", "fingerprint": certificate_fingerprint(cert),
            "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "not_after_ms": int(cert.not_valid_after_utc.timestamp() * 1000), "pem": _pem(cert)}


@ops.add(
    "PUT",
    "/api/certificates/me",
    summary_zh="登记本单位的数字证书（签名证书和加密证书）",
    summary_en="Register your organisation's certificates (signing + encryption)",
    description=(
        "For certificates from a licensed CA whose root the platform imported (`bidroom ca "
        "import-root`). Both must chain to a trusted root and be valid and unrevoked now; the "
        "signing certificate must allow signing, the encryption certificate key encipherment "
        "(RSA ≥ 2048). Each must name your organisation: its subject `OU` or `serialNumber` "
        "is your organisation id (`org_…`) or your unified social credit code "
        "(统一社会信用代码). Once registered they win over certificates the platform CA "
        "issued: openings name the registered encryption certificate, uploads must be sealed "
        "to it, and a bid signed with the registered signing certificate is yours. A new "
        "registration replaces the old for new bids; bids sealed before stay openable."
    ),
    who="a supplier",
    body=_CERTIFICATES_INPUT,
    body_example={"signing_certificate_pem": "-----BEGIN CERTIFICATE-----\n…",
                  "encryption_certificate_pem": "-----BEGIN CERTIFICATE-----\n…"},
    responses={200: Reply("registered", _CERTIFICATES)},
    errors={403: ("role_required",),
            422: ("missing_field", "bad_certificate", "unknown_ca", "certificate_expired",
                  "certificate_revoked", "wrong_key_usage", "certificate_not_yours")},
)
async def register_certificates(request: Request) -> Response:
    principal = await require_principal(request)
    require_role(principal, Role.SUPPLIER)
    services = services_of(request)
    body = await read_json(request)
    reject_unknown(body, _CERTIFICATE_FIELDS)
    certificates: dict[str, x509.Certificate] = {}
    for name in _CERTIFICATE_FIELDS:
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"{name} is required", code="missing_field", field=name)
        certificates[name] = load_certificate(value.strip())
    org = await services.registry.get_organisation(principal.org_id)
    accepted = {principal.org_id.upper()}
    if org is not None and org.credit_code:
        accepted.add(org.credit_code.strip().upper())
    now = await services.clock.now_ms()
    trust = await asyncio.to_thread(services.openings.trust_store)
    usages: tuple[tuple[str, Usage], ...] = (("signing_certificate_pem", "signing"),
                                             ("encryption_certificate_pem", "encryption"))
    for name, usage in usages:
        cert = certificates[name]
        trust.verify(cert, at=ms_to_datetime(now), usage=usage)
        if not _subject_values(cert) & accepted:
            raise ValidationError(
                f"the {usage} certificate ({cert.subject.rfc4514_string()}) does not name "
                "your organisation: its OU or serialNumber must be your organisation id or "
                "your unified social credit code", code="certificate_not_yours", field=name)
    signing = certificates["signing_certificate_pem"]
    encryption = certificates["encryption_certificate_pem"]
    await services.openings.store.register_certificates(SupplierCertificateRow(
        org_id=principal.org_id,
        signing_certificate_pem=_pem(signing),
        encryption_certificate_pem=_pem(encryption),
        signing_fingerprint=certificate_fingerprint(signing),
        encryption_fingerprint=certificate_fingerprint(encryption),
        registered_by_user_id=principal.user_id,
        registered_at_ms=now,
    ))
    return json_response({"org_id": principal.org_id, "source": "registered",
                          "registered_at_ms": now, "signing": _certificate_info(signing),
                          "encryption": _certificate_info(encryption)})


@ops.add(
    "GET",
    "/api/certificates/me",
    summary_zh="查看本单位的数字证书",
    summary_en="Your organisation's certificates",
    description=(
        "The certificates in force: the newest registered pair (`source: registered`); "
        "without one, the newest encryption certificate the platform CA issued "
        "(`source: platform`, `signing` null: the platform CA keeps no link between them); "
        "otherwise `source: none`."
    ),
    who="a supplier",
    responses={200: Reply("the certificates", _CERTIFICATES)},
    errors={403: ("role_required",)},
)
async def get_certificates(request: Request) -> Response:
    principal = await require_principal(request)
    require_role(principal, Role.SUPPLIER)
    services = services_of(request)
    rows = await services.openings.store.registered_certificates(principal.org_id)
    if rows:
        row = rows[0]
        return json_response({
            "org_id": principal.org_id, "source": "registered",
            "registered_at_ms": row.registered_at_ms,
            "signing": _certificate_info(load_certificate(row.signing_certificate_pem)),
            "encryption": _certificate_info(load_certificate(row.encryption_certificate_pem)),
        })
    now = await services.clock.now_ms()
    issued = await asyncio.to_thread(_encryption_certificates, services, principal.org_id, now)
    return json_response({
        "org_id": principal.org_id, "source": "platform" if issued else "none",
        "registered_at_ms": None, "signing": None,
        "encryption": _certificate_info(issued[0]) if issued else None,
    })


# =============================================================================== CA login


@ops.add(
    "POST",
    "/api/auth/ca/challenge",
    summary_zh="证书登录：获取挑战",
    summary_en="CA login: get a challenge",
    description="A single-use random challenge, valid 2 minutes: sign its UTF-8 bytes with "
    "your signing key (ECDSA or RSA with SHA-256).",
    public=True,
    responses={200: Reply("the challenge", obj({"challenge": STRING, "expires_at_ms": MS}))},
)
async def ca_challenge(request: Request) -> Response:
    services = services_of(request)
    challenge = make_challenge()
    with store_errors("Redis"):
        await services.redis.set(_challenge_key(challenge), b"1", ex=CA_CHALLENGE_TTL_S, nx=True)
    now = await services.clock.now_ms()
    return json_response({"challenge": challenge,
                          "expires_at_ms": now + CA_CHALLENGE_TTL_S * 1000})


def _challenge_key(challenge: str) -> str:
    return f"bidroom:ca-challenge:{challenge}"


@ops.add(
    "POST",
    "/api/auth/ca/login",
    summary_zh="证书登录",
    summary_en="CA login",
    description=(
        "The signing certificate must chain to a trusted root and be valid and unrevoked now; "
        "the organisation it names must be a registered supplier. Answers a short-lived API "
        "token (2 hours) for that supplier's user."
    ),
    public=True,
    body=obj({"challenge": STRING, "signature_b64": STRING, "certificate_pem": STRING},
             closed=True),
    body_example={"challenge": "0u7…", "signature_b64": "MEUCIQ…",
                  "certificate_pem": "-----BEGIN CERTIFICATE-----\n…"},
    responses={200: Reply("a token", obj({"token": STRING, "expires_at_ms": MS, "user": OBJECT,
                                          "org": OBJECT, "certificate": OBJECT}))},
    errors={401: ("invalid_challenge", "bad_signature", "unknown_ca", "certificate_revoked",
                  "certificate_expired", "wrong_key_usage", "bad_certificate",
                  "unknown_organisation"),
            403: ("no_supplier_user",),
            422: ("missing_field",)},
)
async def ca_login(request: Request) -> Response:
    services = services_of(request)
    body = await read_json(request)
    reject_unknown(body, ("challenge", "signature_b64", "certificate_pem"))
    fields: dict[str, str] = {}
    for name in ("challenge", "signature_b64", "certificate_pem"):
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise ValidationError(f"{name} is required", code="missing_field", field=name)
        fields[name] = value
    with store_errors("Redis"):
        existed = await services.redis.delete(_challenge_key(fields["challenge"]))
    if not existed:
        raise UnauthenticatedError("the challenge is unknown, expired or already used",
                                   code="invalid_challenge")
    try:
        signature = base64.b64decode(fields["signature_b64"], validate=True)
    except (binascii.Error, ValueError):
        raise UnauthenticatedError("signature_b64 is not base64", code="bad_signature") from None
    now = await services.clock.now_ms()
    trust = await asyncio.to_thread(services.openings.trust_store)
    try:
        identity = verify_login_signature(fields["challenge"].encode("utf-8"), signature,
                                          fields["certificate_pem"].encode("utf-8"), trust,
                                          ms_to_datetime(now))
    except ValidationError as exc:
        raise UnauthenticatedError(exc.message, code=exc.code) from exc
    org = None if identity.org_id is None else await services.registry.get_organisation(
        identity.org_id)
    if org is None or org.kind != OrgKind.SUPPLIER.value:
        raise UnauthenticatedError(
            f"the certificate names {identity.name}, which is not a registered supplier",
            code="unknown_organisation")
    users = [u for u in await services.registry.list_users(org.id)
             if Role.SUPPLIER in u.roles and not u.disabled]
    if not users:
        raise ForbiddenError("the organisation has no active supplier user",
                             code="no_supplier_user")
    user = users[0]
    expires = now + CA_TOKEN_TTL_MS
    token, _ = await services.registry.issue_token(
        user.id, label=f"ca-login {identity.serial:x}", now_ms=now, expires_at_ms=expires)
    return json_response({
        "token": token, "expires_at_ms": expires,
        "user": {"id": user.id, "name": user.name},
        "org": {"id": org.id, "name": org.name},
        "certificate": {"serial": f"{identity.serial:x}", "fingerprint": identity.fingerprint},
    })
