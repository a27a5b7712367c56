"""Tendering routes: a lot's tender documents (upload, versions, recorded downloads), suppliers'
registrations (报名) with their bid bonds, and the bonds' refunds. ``market.tendering`` decides;
this module maps HTTP to it (a document's bytes are the raw request body, streamed, like a
sealed bid's). A download's evidence is the client's address (``web.client_address``: the TCP
peer, or ``X-Forwarded-For`` behind a trusted proxy) and the ``X-Device-Fingerprint`` header.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Any, Final

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response

from bidroom.errors import ValidationError
from market.tendering.rules import BondMethod, BondProvision
from market.tendering.service import DownloadEvidence
from market.tendering.store import (
    DocumentDownloadRow,
    DocumentVersionRow,
    RegistrationRow,
    TenderDocumentRow,
)
from web.api.calendar import DATE_VIEW
from web.api.common import (
    LIMIT_PARAM,
    OFFSET_PARAM,
    OperationSet,
    QueryParam,
    Reply,
    json_response,
    optional_int,
    page_of,
    read_json,
    reject_unknown,
    text_field,
)
from web.api.schemas import COUNT, FEN, ID, MS, NAME, STRING, enum_of, nullable, obj
from web.auth import require_principal, services_of
from web.client_address import FINGERPRINT_HEADER, request_addresses

__all__ = ["ops"]

ops = OperationSet("tendering")

_SHA256: Final = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_VERSION = obj({"version": COUNT, "filename": STRING, "content_type": STRING, "sha256": _SHA256,
                "size": COUNT, "uploaded_at_ms": MS, "uploaded_by": ID, "lot_status": STRING})
_DOCUMENT = obj({"id": ID, "lot_id": ID, "project_id": ID, "title": STRING,
                 "current_version": COUNT, "created_at_ms": MS,
                 "versions": {"type": "array", "items": _VERSION}})
_DOWNLOAD = obj({"document_id": ID, "version": COUNT, "sha256": _SHA256, "user_id": ID,
                 "org_id": ID, "org_kind": STRING, "at_ms": MS, "client_ip": STRING,
                 "peer_ip": STRING, "device_fingerprint": nullable(STRING),
                 "user_agent": STRING})
_BOND_METHOD = enum_of([m.value for m in BondMethod],
                       "none; transfer (支票/汇票/本票/转账, Reg 33); guarantee (电子保函)")
_REGISTRATION = obj({
    "id": ID, "lot_id": ID, "project_id": ID, "round": COUNT, "supplier_org_id": ID,
    "status": enum_of(["registered", "withdrawn"]), "registered_at_ms": MS,
    "withdrawn_at_ms": nullable(MS),
    "bond": obj({"method": _BOND_METHOD, "bond_fen": COUNT, "reference": STRING,
                 "payer_account": STRING, "guarantee_number": STRING,
                 "guarantee_issuer": STRING}),
    "refund": obj({"basis": nullable(STRING), "due_day": nullable(STRING),
                   "rule": nullable(DATE_VIEW), "refunded_at_ms": nullable(MS),
                   "reference": nullable(STRING)}),
})
_LOT_404: Final = ("lot_not_found", "project_not_found")
_UPLOAD_ERRORS: Final = {403: ("not_your_project",), 409: ("documents_closed", "concurrent_change"),
                         422: ("empty_upload", "document_too_large", "upload_incomplete",
                               "invalid_filename", "invalid_field", "missing_field")}


def _version_view(v: DocumentVersionRow) -> dict[str, Any]:
    return {"version": v.version, "filename": v.filename, "content_type": v.content_type,
            "sha256": v.sha256, "size": v.size, "uploaded_at_ms": v.uploaded_at_ms,
            "uploaded_by": v.uploaded_by, "lot_status": v.lot_status}


def _document_view(d: TenderDocumentRow, versions: list[DocumentVersionRow]) -> dict[str, Any]:
    return {"id": d.id, "lot_id": d.lot_id, "project_id": d.project_id, "title": d.title,
            "current_version": d.current_version, "created_at_ms": d.created_at_ms,
            "versions": [_version_view(v) for v in versions]}


def _download_view(r: DocumentDownloadRow) -> dict[str, Any]:
    return {"document_id": r.document_id, "version": r.version, "sha256": r.sha256,
            "user_id": r.user_id, "org_id": r.org_id, "org_kind": r.org_kind, "at_ms": r.at_ms,
            "client_ip": r.client_ip, "peer_ip": r.peer_ip,
            "device_fingerprint": r.device_fingerprint, "user_agent": r.user_agent}


def _registration_view(r: RegistrationRow) -> dict[str, Any]:
    return {"id": r.id, "lot_id": r.lot_id, "project_id": r.project_id, "round": r.round,
            "supplier_org_id": r.supplier_org_id, "status": r.status,
            "registered_at_ms": r.registered_at_ms, "withdrawn_at_ms": r.withdrawn_at_ms,
            "bond": {"method": r.bond_method, "bond_fen": r.bond_fen,
                     "reference": r.bond_reference, "payer_account": r.payer_account,
                     "guarantee_number": r.guarantee_number,
                     "guarantee_issuer": r.guarantee_issuer},
            "refund": {"basis": r.refund_basis, "due_day": r.refund_due_day,
                       "rule": r.refund_rule, "refunded_at_ms": r.refunded_at_ms,
                       "reference": r.refund_reference}}


def _query_text(request: Request, name: str, *, required: bool) -> str:
    value = request.query_params.get(name)
    if value is None or not value.strip():
        if required:
            raise ValidationError(f"{name} is required", code="missing_field", field=name)
        return ""
    return value


async def _body(request: Request, limit: int) -> AsyncIterator[bytes]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ValidationError(f"文件超过 {limit} 字节 / the document is larger than {limit} "
                              "bytes", code="document_too_large", max_bytes=limit)
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise ValidationError("上传中断 / the upload was interrupted before its end: send it "
                              "again", code="upload_incomplete") from None


_UPLOAD_DESCRIPTION: Final = (
    "The request body is the file itself (`Content-Type` of the file, e.g. `curl -T "
    "招标文件.pdf -H 'Content-Type: application/pdf'`), streamed to disk and stored by its "
    "SHA-256 under `DATA_DIR/tendering`; at most 100 MiB. Only while the lot is draft, "
    "announced or bidding (`documents_closed` after). Writes the event "
    "`tendering.document_published`.")


@ops.add(
    "POST", "/api/lots/{lot_id}/documents",
    summary_zh="上传招标文件", summary_en="Upload a tender document",
    description=_UPLOAD_DESCRIPTION,
    who="the project's purchaser or agency",
    query=(QueryParam("title", NAME, "the document's title (招标文件, 采购需求 …)", required=True),
           QueryParam("filename", NAME, "the file's name, no path", required=True)),
    responses={201: Reply("the document, version 1", _DOCUMENT)},
    errors={**_UPLOAD_ERRORS, 404: _LOT_404},
)
async def upload_document(request: Request) -> Response:
    principal = await require_principal(request)
    service = services_of(request).tendering
    title = _query_text(request, "title", required=True)
    filename = _query_text(request, "filename", required=True)
    document, version = await service.upload_document(
        principal, request.path_params["lot_id"], title=title, filename=filename,
        content_type=request.headers.get("content-type", ""),
        body=_body(request, service.max_document_bytes))
    return json_response(_document_view(document, [version]), 201)


@ops.add(
    "POST", "/api/documents/{document_id}/versions",
    summary_zh="上传招标文件新版本", summary_en="Upload a new version of a document",
    description=_UPLOAD_DESCRIPTION.replace("SHA-256", "SHA-256 as the next version") +
    " A change that may affect bids also needs a correction (`POST /api/lots/{lot_id}/"
    "corrections`, O87 27).",
    who="the project's purchaser or agency",
    query=(QueryParam("filename", NAME, "the file's name, no path", required=True),),
    responses={201: Reply("the document with the new version", _DOCUMENT)},
    errors={**_UPLOAD_ERRORS, 404: ("document_not_found", *_LOT_404)},
)
async def upload_version(request: Request) -> Response:
    principal = await require_principal(request)
    service = services_of(request).tendering
    filename = _query_text(request, "filename", required=True)
    document, version = await service.add_version(
        principal, request.path_params["document_id"], filename=filename,
        content_type=request.headers.get("content-type", ""),
        body=_body(request, service.max_document_bytes))
    return json_response(_document_view(document, [version]), 201)


@ops.add(
    "GET", "/api/lots/{lot_id}/documents",
    summary_zh="招标文件列表", summary_en="A lot's tender documents",
    description="Every document with its versions and their SHA-256 (no contents). A "
                "supplier sees them once they are issued (`documents_from_ms`, O87 18).",
    who="the project's purchaser or agency, its supervisors (by region), any supplier",
    responses={200: Reply("the documents", obj({"items": {"type": "array",
                                                          "items": _DOCUMENT}}))},
    errors={403: ("not_your_project",), 404: _LOT_404},
)
async def list_documents(request: Request) -> Response:
    principal = await require_principal(request)
    docs = await services_of(request).tendering.documents(principal,
                                                          request.path_params["lot_id"])
    return json_response({"items": [_document_view(d, vs) for d, vs in docs]})


@ops.add(
    "GET", "/api/documents/{document_id}/content",
    summary_zh="下载招标文件", summary_en="Download a tender document",
    description="The file (`version` absent: the current one), after re-checking its SHA-256 "
                "(answered in `Repr-Digest` and `X-Content-SHA256`). Each download is recorded "
                "with the user, the server time, the client's address and the "
                "`X-Device-Fingerprint` header (16–128 of `0-9 A-Z a-z _ = -`), the evidence "
                "of DOMAIN.md §4. A supplier must be registered for the lot, and the documents "
                "issued (`documents_from_ms`, O87 18).",
    who="a registered supplier; the project's purchaser or agency; its supervisors",
    query=(QueryParam("version", {"type": "integer", "minimum": 1}, "a version number"),),
    responses={200: Reply("the file's bytes")},
    errors={403: ("not_your_project", "not_registered"),
            404: ("document_not_found", "version_not_found", *_LOT_404),
            409: ("documents_not_issued", "document_corrupted"),
            422: ("invalid_fingerprint", "invalid_query")},
)
async def download_document(request: Request) -> Response:
    principal = await require_principal(request)
    services = services_of(request)
    raw = request.query_params.get("version")
    version: int | None = None
    if raw is not None and raw != "":
        if not (raw.isascii() and raw.isdigit() and 0 < len(raw) <= 9 and int(raw) > 0):
            raise ValidationError("version: a positive whole number", code="invalid_query",
                                  parameter="version")
        version = int(raw)
    client, peer = request_addresses(request, services.settings.trusted_proxies)
    evidence = DownloadEvidence(client_ip=client, peer_ip=peer,
                                device_fingerprint=request.headers.get(FINGERPRINT_HEADER),
                                user_agent=request.headers.get("user-agent", ""))
    got = await services.tendering.download(principal, request.path_params["document_id"],
                                            version, evidence)
    digest = base64.b64encode(binascii.unhexlify(got.version.sha256)).decode("ascii")
    return FileResponse(got.path, media_type=got.version.content_type,
                        filename=got.version.filename,
                        headers={"Repr-Digest": f"sha-256=:{digest}:",
                                 "X-Content-SHA256": got.version.sha256,
                                 "Cache-Control": "no-store"})


@ops.add(
    "GET", "/api/lots/{lot_id}/downloads",
    summary_zh="招标文件下载记录", summary_en="Who downloaded the documents",
    description="Every download of the lot's documents, oldest first: user, organisation, "
                "server time, client and peer address, device fingerprint, SHA-256.",
    who="the project's purchaser or agency, its supervisors (by region)",
    query=(LIMIT_PARAM, OFFSET_PARAM),
    responses={200: Reply("a page of downloads", obj({
        "items": {"type": "array", "items": _DOWNLOAD}, "total": COUNT}))},
    errors={403: ("not_your_project",), 404: _LOT_404},
)
async def list_downloads(request: Request) -> Response:
    principal = await require_principal(request)
    page = page_of(request)
    rows, total = await services_of(request).tendering.downloads(
        principal, request.path_params["lot_id"], limit=page.limit, offset=page.offset)
    return json_response({"items": [_download_view(r) for r in rows], "total": total})


_BOND_INPUT = obj({"method": _BOND_METHOD, "amount_fen": FEN, "reference": STRING,
                   "payer_account": STRING, "guarantee_number": STRING,
                   "guarantee_issuer": STRING}, ["method"], closed=True)


def _bond(body: dict[str, Any]) -> BondProvision:
    raw = body.get("bond")
    if raw is None:
        return BondProvision(BondMethod.NONE)
    if not isinstance(raw, dict):
        raise ValidationError("bond: an object", code="invalid_field", field="bond")
    reject_unknown(raw, ("method", "amount_fen", "reference", "payer_account",
                         "guarantee_number", "guarantee_issuer"))
    try:
        method = BondMethod(raw.get("method"))
    except ValueError:
        raise ValidationError("bond.method: none, transfer or guarantee", code="invalid_field",
                              field="bond.method") from None
    return BondProvision(
        method, amount_fen=optional_int(raw, "amount_fen") or 0,
        reference=text_field(raw, "reference", required=False, max_length=64) or "",
        payer_account=text_field(raw, "payer_account", required=False, max_length=34) or "",
        guarantee_number=text_field(raw, "guarantee_number", required=False,
                                    max_length=64) or "",
        guarantee_issuer=text_field(raw, "guarantee_issuer", required=False,
                                    max_length=100) or "")


@ops.add(
    "POST", "/api/lots/{lot_id}/registrations",
    summary_zh="报名", summary_en="Register for a lot",
    description="While the lot is announced or bidding and before its deadline; one per "
                "supplier per lot and round. A lot with a bond (`bond_fen` > 0) needs it "
                "(Reg 33): `transfer` with `amount_fen` = `bond_fen`, the payment's `reference` "
                "and the `payer_account`, or `guarantee` (电子保函) with `guarantee_number` and "
                "`guarantee_issuer`. Writes `tendering.supplier_registered`.",
    who="a supplier",
    body=obj({"bond": _BOND_INPUT}, [], closed=True),
    body_required=False,
    body_example={"bond": {"method": "guarantee", "guarantee_number": "BH2026091100017",
                           "guarantee_issuer": "中国银行广州分行"}},
    responses={201: Reply("the registration", _REGISTRATION)},
    errors={403: ("suppliers_only",), 404: _LOT_404,
            409: ("registration_not_open", "deadline_passed", "already_registered",
                  "registration_withdrawn", "bond_reference_used"),
            422: ("bond_required", "bond_not_required", "bond_amount_mismatch", "invalid_bond",
                  "invalid_field")},
)
async def register(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request, optional=True)
    reject_unknown(body, ("bond",))
    row = await services_of(request).tendering.register(principal, request.path_params["lot_id"],
                                                         _bond(body))
    return json_response(_registration_view(row), 201)


@ops.add(
    "GET", "/api/lots/{lot_id}/registrations",
    summary_zh="报名列表", summary_en="A lot's registrations",
    description="Every round's registrations with their bonds and refunds; a supplier sees "
                "its own only.",
    who="the project's purchaser or agency, its supervisors (by region); a supplier (its own)",
    responses={200: Reply("the registrations", obj({"items": {"type": "array",
                                                              "items": _REGISTRATION}}))},
    errors={403: ("not_your_project",), 404: _LOT_404},
)
async def list_registrations(request: Request) -> Response:
    principal = await require_principal(request)
    rows = await services_of(request).tendering.registrations(principal,
                                                              request.path_params["lot_id"])
    return json_response({"items": [_registration_view(r) for r in rows]})


@ops.add(
    "DELETE", "/api/registrations/{registration_id}",
    summary_zh="撤回报名", summary_en="Withdraw a registration",
    description="Before the deadline; a bond is then due back within 5 working days "
                "(O87 38). Writes `tendering.registration_withdrawn`.",
    who="the registered supplier",
    responses={200: Reply("the registration, withdrawn", _REGISTRATION)},
    errors={403: ("not_your_registration",), 404: ("registration_not_found", *_LOT_404),
            409: ("registration_withdrawn", "deadline_passed")},
)
async def withdraw_registration(request: Request) -> Response:
    principal = await require_principal(request)
    row = await services_of(request).tendering.withdraw(
        principal, request.path_params["registration_id"])
    return json_response(_registration_view(row))


@ops.add(
    "POST", "/api/lots/{lot_id}/bond-refund-due",
    summary_zh="登记保证金退还期限", summary_en="Set the bonds' refund due dates",
    description="Told the award notice's instant (`notice_ms`, and the `winner_org_id` to "
                "leave out), every other bond of the current round is due back within 5 working "
                "days of the notice; told the contract's signing (`signing_ms` and "
                "`winner_org_id`), the winner's (Reg 33; O87 38). Each date with its rule.",
    who="the project's purchaser or agency",
    body=obj({"notice_ms": MS, "signing_ms": MS, "winner_org_id": ID}, [], closed=True),
    body_example={"notice_ms": 1791961200000, "winner_org_id": "org_9c0d…"},
    responses={200: Reply("the registrations whose due date was set",
                          obj({"items": {"type": "array", "items": _REGISTRATION}}))},
    errors={403: ("not_your_project",), 404: _LOT_404,
            422: ("invalid_field", "missing_field")},
)
async def bond_refund_due(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("notice_ms", "signing_ms", "winner_org_id"))
    notice, signing = optional_int(body, "notice_ms"), optional_int(body, "signing_ms")
    for name, value in (("notice_ms", notice), ("signing_ms", signing)):
        if value is not None and not 0 <= value <= 10**14:
            raise ValidationError(f"{name}: ms since the epoch", code="invalid_field",
                                  field=name)
    winner = text_field(body, "winner_org_id", required=False, max_length=64)
    rows = await services_of(request).tendering.record_bond_refund_due(
        principal, request.path_params["lot_id"], notice_ms=notice, signing_ms=signing,
        winner_org_id=winner)
    return json_response({"items": [_registration_view(r) for r in rows]})


@ops.add(
    "POST", "/api/registrations/{registration_id}/bond-refund",
    summary_zh="登记保证金已退还", summary_en="Record a bond's refund",
    description="Marks the bond refunded now (server time) with the transfer's `reference`. "
                "Writes `tendering.bond_refunded`.",
    who="the project's purchaser or agency",
    body=obj({"reference": STRING}, ["reference"], closed=True),
    responses={200: Reply("the registration", _REGISTRATION)},
    errors={403: ("not_your_project",), 404: ("registration_not_found", *_LOT_404),
            409: ("no_bond", "bond_already_refunded"),
            422: ("invalid_field", "missing_field")},
)
async def refund_bond(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("reference",))
    reference = text_field(body, "reference", required=True, max_length=64) or ""
    row = await services_of(request).tendering.refund_bond(
        principal, request.path_params["registration_id"], reference=reference)
    return json_response(_registration_view(row))
