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
  decryption window only, submit it; k ≥ 2 of them rebuild the key;
* supervisors (and admins) see everything, read-only.

The backup key: its use cases (creating it, the ceremony that rebuilds it) are
``bidroom.opening.backup``; the routes here only map HTTP to them. No share, and no key that
opens one, is ever stored in the clear; no one at the platform, and no single official, can
rebuild the key.

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
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response

from bidroom.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from bidroom.opening.backup import (
    OfficialCandidate,
    check_officials,
    create_backup_key,
)
from bidroom.opening.ca import (
    PlatformCA,
)
from bidroom.opening.certificates import (
    CERTIFICATE_FIELDS,
    LoginChallenges,
    SupplierCertificates,
)
from bidroom.opening.hall import (
    personal_view,
    snapshot_view,
)
from bidroom.opening.record import named_record, record_document, render_record_html
from bidroom.opening.runner import (
    CA_DIR,
    OpeningRunner,
    ms_to_datetime,
)
from bidroom.opening.service import NewOpening, opening_settings
from bidroom.opening.service import create_opening as create_opening_use_case
from bidroom.opening.session import (
    MAX_TEXT_LENGTH,
    AnswerObjection,
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
)
from bidroom.opening.store import (
    OpeningBidRow,
    OpeningRow,
    OpeningShareRow,
    verify_chain,
)
from bidroom.receipts import PlatformKey, sign_document
from market.identity import certificate_names, login_supplier
from market.registry import OrgKind, Principal, Role
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
from web.services import Services

__all__ = ["authorise_opening", "ops", "record_upload", "refusal_message"]

ops = OperationSet("openings")

UPLOAD_CHUNK: Final = 1 << 16
BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
MANAGER: Final = "the opening's purchaser or its agency"
PARTY: Final = "the opening's purchaser or agency, invited suppliers, officials, supervisors"

# Refusal reasons of the session, for people (中文 / English).
_REASONS: Final[dict[str, str]] = {
    "not_invited": "未受邀请 / you are not invited to this opening",
    "already_invited": "该供应商已受邀 / this supplier is already invited",
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
    "rebuild_in_progress": "备用密钥正在重建 / the backup key is being rebuilt",
    "ceremony_changed": "备用密钥仪式已由其他进程开始，请重试 / another server process started the "
    "ceremony: try again",
    "ceremony_restarted": "备用密钥仪式已重新开始，请重新提交 / the ceremony was restarted: submit "
    "again",
}


def refusal_message(reason: str) -> str:
    return _REASONS.get(reason, reason)


def _refused(refusal: CommandRefused) -> ConflictError:
    return ConflictError(refusal_message(refusal.reason), code=refusal.reason,
                         command=refusal.command)


def new_opening_id() -> str:
    return f"opn_{uuid.uuid4().hex}"


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


def _certificates(services: Services) -> SupplierCertificates:
    """The suppliers' certificates: registrations, the platform CA, the trust store."""
    return SupplierCertificates(services.openings.store, services.settings.data_dir / CA_DIR,
                                services.openings.trust_store)


def _challenges(services: Services) -> LoginChallenges:
    return LoginChallenges(services.redis, services.openings.trust_store)


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
        view["certificates"]["encryption_certificate_pem"] = await _certificates(
            services).seal_to(principal.org_id, now)
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
        "backup": obj({"k": {**INT, "minimum": 2,
                             "description": "officials needed to rebuild the backup key; at "
                             "least 2 (`threshold_too_low`): with 1, each official alone "
                             "would hold the whole key"},
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
               "deemed_accepted": {"type": "array"},
               "platform_fault": {"type": "array", "description": "bidders that did not sign "
                                  "in and whose bid was ruled a platform fault: not absent, "
                                  "not deemed to accept"},
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
        "bidders must then seal to the backup certificate too. `k` is at least 2 "
        "(`threshold_too_low`: with k = 1 each official alone would hold the whole key and "
        "could open every bid), at most the number of officials; at most k-1 officials may "
        "share one certificate (`officials_share_a_key`)."
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
              "official_certificate_mismatch", "threshold_too_low", "officials_share_a_key",
              "unknown_ca",
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
    settings = opening_settings(opening_id, raw)
    now = await services.clock.now_ms()
    if settings.deadline_ms <= now:  # before the backup key is made: that takes a while
        raise ValidationError("the deadline is in the past", code="deadline_in_past",
                              deadline_ms=settings.deadline_ms, server_time_ms=now)
    backup_pem: str | None = None
    shares: list[OpeningShareRow] = []
    if settings.backup is not None:
        backup_pem, shares = await asyncio.to_thread(
            create_backup_key, _ca(services), opening_id, settings.backup, certificates,
            now=ms_to_datetime(now))
    await create_opening_use_case(
        services.openings,
        NewOpening(opening_id=opening_id, title=title, title_en=title_en,
                   purchaser_org_id=purchaser_org_id, agency_org_id=agency_org_id,
                   created_by_user_id=principal.user_id, invited=invited),
        settings, now_ms=now, backup_certificate_pem=backup_pem, shares=shares)
    opening = await authorise_opening(services, principal, opening_id)
    return json_response(await opening_view(services, principal, opening), 201)


async def _check_officials(services: Services, raw: Any) -> tuple[list[str],
                                                                   list[x509.Certificate]]:
    """The officials' user ids and encryption certificates (``backup.check_officials``: k ≥ 2,
    each certificate verified and naming the official's organisation, none held by k)."""
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
    candidates: list[OfficialCandidate] = []
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
        candidates.append(OfficialCandidate(user_id, user.org_id, pem))
    certificates = check_officials(k, candidates, trust, now_ms=now)
    return [c.user_id for c in candidates], certificates


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
        await _certificates(services).check_upload(
            temporary, supplier_id, now,
            backup_certificate_pem=opening.row.backup_certificate_pem)
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
    recipient, cert = await _certificates(services).recipient_of(
        services.openings.files.path(bid.storage_path), supplier_id, bid.uploaded_at_ms)
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
        "withdrawn (撤回, the bond is returned). The stated reason goes into the log and the "
        "signed record (the bid's `ruling`). Until 唱标, also for a bid already revoked at the "
        "end of the window."
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
        "to accept (O87 42), except a bidder whose bid was ruled a platform fault: it could not "
        "act and the record lists it under `platform_fault`. The opening is concluded."
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


_BACKUP_STATUS = obj(
    {"state": {"enum": ["waiting_for_window", "collecting", "rebuilding", "ceremony_restarted",
                        "rebuilt", "closed"]},
     "k": COUNT, "n": COUNT, "submitted": COUNT, "needed": COUNT,
     "submitted_by": {"type": "array", "items": ID},
     "resubmit": {"type": "array", "items": ID,
                  "description": "officials whose submission a lost ceremony voided: they "
                  "submit again"},
     "ceremony_id": nullable(STRING), "ceremony_restarts": COUNT, "accepted_from_ms": MS,
     "rebuilt": BOOL, "opened_by_backup": {"type": "array", "items": ID}},
    description="where the backup key's ceremony stands (docs/opening.md §6)",
)


def _official(principal: Principal, opening: _Opening) -> None:
    if principal.user_id not in _officials(opening.row):
        raise ForbiddenError("you are not an official of this backup key",
                             code="not_an_official")


@ops.add(
    "GET",
    "/api/openings/{opening_id}/backup",
    summary_zh="备用密钥仪式状态",
    summary_en="The backup key's ceremony",
    description=(
        "How many officials have submitted their share in the current ceremony, and "
        "`ceremony_restarted` with `resubmit` when the server process holding the ceremony was "
        "lost: those officials submit again."
    ),
    who="any party",
    responses={200: Reply("the ceremony's status", _BACKUP_STATUS)},
    errors={403: ("not_invited",), 404: ("opening_not_found",), 409: ("no_backup",)},
)
async def get_backup_status(request: Request) -> Response:
    services, _, opening = await _load(request)
    status = await services.backup.status(opening.row.id)
    return json_response({"opening_id": opening.row.id, **status})


@ops.add(
    "GET",
    "/api/openings/{opening_id}/backup/share",
    summary_zh="获取本人保管的备用密钥分片（已加密）",
    summary_en="Your sealed share of the backup key",
    description=(
        "The share is sealed to your encryption certificate: unwrap `encrypted_key_b64` on "
        "your own machine (`bidroom bid unwrap-key`) and, after the decryption window, POST "
        "the result to `/backup/shares`. `status`: the ceremony (as `GET …/backup`)."
    ),
    who="a named official",
    responses={200: Reply("your sealed share", obj({
        "opening_id": ID, "official_user_id": ID, "encrypted_key_b64": STRING,
        "recipient_serial": STRING, "accepted_from_ms": MS, "k": COUNT, "n": COUNT,
        "status": _BACKUP_STATUS}))},
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
        "status": await services.backup.status(opening.row.id),
    })


@ops.add(
    "POST",
    "/api/openings/{opening_id}/backup/shares",
    summary_zh="提交备用密钥分片",
    summary_en="Submit your share of the backup key",
    description=(
        "Only after the decryption window. The server opens your sealed share with the key you "
        "unwrapped, in memory, and keeps it only sealed to the current ceremony's key, which "
        "exists in the memory of one server process alone; neither the share nor your key is "
        "stored in the clear anywhere. With k shares (k ≥ 2) that process rebuilds the backup "
        "key once, opens only the bids the agency ruled a platform fault (never one revoked or "
        "withdrawn), and drops it; every step is logged. The answer waits for the rebuild "
        "(`state: rebuilt`); `rebuilding` if it takes longer. Should that process be lost, "
        "`state` becomes `ceremony_restarted` and the officials in `resubmit` submit again."
    ),
    who="a named official",
    body=_KEY_INPUT,
    body_example={"content_key_b64": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="},
    responses={200: Reply("accepted", obj({"opening_id": ID, **_BACKUP_STATUS["properties"]}))},
    errors={403: ("not_invited", "not_an_official"), 404: ("opening_not_found",),
            409: ("no_backup", "window_open", "record_revealed", "already_rebuilt",
                  "rebuild_in_progress", "share_already_submitted", "opening_failed",
                  "ceremony_changed", "ceremony_restarted"),
            422: ("missing_field", "invalid_content_key", "bad_key_or_tampered")},
)
async def submit_backup_share(request: Request) -> Response:
    services, principal, opening = await _load(request)
    key = _content_key(await read_json(request))
    if opening.state.settings.backup is None:  # before "not an official": nobody is one here
        raise ConflictError("this opening has no backup key", code="no_backup")
    _official(principal, opening)
    outcome = await services.backup.submit(opening.row.id, principal.user_id, key)
    await services.hall.refresh(opening.row.id)
    _accept(outcome.decision)
    return json_response({"opening_id": opening.row.id, **outcome.status})


# =============================================================================== the record


async def _record_document(services: Services, opening_id: str) -> dict[str, Any]:
    """The signed opening record (``bidroom.opening.record``), names from the registry."""
    state = await services.openings.state(opening_id)
    return await record_document(services.openings.store, state, services.platform_key,
                                 lambda org_ids: _names(services, org_ids))


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


_CERTIFICATES_INPUT = obj({name: STRING for name in CERTIFICATE_FIELDS}, closed=True)
_CERTIFICATE_INFO = obj({"serial": STRING, "fingerprint": STRING, "subject": STRING,
                         "issuer": STRING, "not_after_ms": MS, "pem": STRING})
_CERTIFICATES = obj({"org_id": ID, "source": STRING, "registered_at_ms": nullable(MS),
                     "signing": nullable(_CERTIFICATE_INFO),
                     "encryption": nullable(_CERTIFICATE_INFO)})


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
    reject_unknown(body, CERTIFICATE_FIELDS)
    names = await certificate_names(services.registry, principal.org_id)
    now = await services.clock.now_ms()
    registered = await _certificates(services).register(
        principal.org_id, names, body, user_id=principal.user_id, now_ms=now)
    return json_response({"org_id": principal.org_id, **registered})


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
    now = await services.clock.now_ms()
    in_force = await _certificates(services).in_force(principal.org_id, now)
    return json_response({"org_id": principal.org_id, **in_force})


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
    issued = await _challenges(services).issue(await services.clock.now_ms())
    return json_response({"challenge": issued.challenge, "expires_at_ms": issued.expires_at_ms})


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
    now = await services.clock.now_ms()
    identity = await _challenges(services).verify(
        fields["challenge"], fields["signature_b64"], fields["certificate_pem"], now)
    login = await login_supplier(services.registry, identity, now)
    return json_response({
        "token": login.token, "expires_at_ms": login.expires_at_ms,
        "user": {"id": login.user.id, "name": login.user.name},
        "org": {"id": login.org.id, "name": login.org.name},
        "certificate": {"serial": f"{identity.serial:x}", "fingerprint": identity.fingerprint},
    })
