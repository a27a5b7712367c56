"""Auction routes: create, list, view, invite, pause/resume, sign in, bid, result and audit.

Who may do what (issue #2, ``web.auth``): a purchaser — or the agency running the auction for
it — creates and manages its own auctions; an invited supplier views the room, signs in and
bids only as itself; a supervisor (and an admin) sees every auction, read-only. Until the close
every view is background-to-background (背靠背): no supplier identities, to anyone. The result,
stored in SQL by the closer, reveals them.

Order of writes when creating: the Redis room first, then the SQL row, then the close schedule.
A failure after the room leaves an orphan room nobody can see (no SQL row, never scheduled); the
reverse order could leave a visible auction without a room.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bidroom.auction.rules import (
    MAX_REASON_LENGTH,
    AuctionPaused,
    AuctionResumed,
    CommandRefused,
    Phase,
    Problem,
    SignedIn,
    SuppliersInvited,
    phase_at,
    settings_from_dict,
)
from bidroom.errors import ForbiddenError, NotFoundError, ValidationError
from bidroom.stores.sql import AUCTION_STATUSES, AuctionResultRow, AuctionRow
from market.auctions import open_auction
from market.registry import OrganisationRow, OrgKind, Principal, Role
from web.api.common import (
    LIMIT_PARAM,
    OFFSET_PARAM,
    ErrorBody,
    OperationSet,
    QueryParam,
    Reply,
    id_list,
    json_response,
    new_auction_id,
    page_of,
    paginate,
    read_json,
    ref,
    refused,
    reject_unknown,
    text_field,
)
from web.auth import (
    can_manage,
    require_manage,
    require_principal,
    require_role,
    require_view,
    services_of,
)
from web.bidding import place_bid
from web.errors import error_response
from web.rooms import auction_not_found, load_room, view_for
from web.services import Services

__all__ = ["auction_summary", "ops"]

ops = OperationSet("auctions")

MANAGER = "the auction's purchaser or its agency"
PARTY = "the auction's purchaser or agency, invited suppliers, supervisors, admins"
MAX_TITLE = 200

_SETTINGS_EXAMPLE: dict[str, Any] = {
    "ceiling_fen": 100_000_000,
    "start_ms": 1767229200000,
    "end_ms": 1767231000000,
    "step_kind": "amount",
    "step_value": 10_000,
    "improvement": "own_previous",
    "budget_fen": 120_000_000,
    "sniping_window_ms": 300_000,
    "sniping_trigger": "any_valid_bid",
    "extension_ms": 300_000,
    "max_extensions": 6,
    "max_total_extension_ms": 1_800_000,
    "min_valid_bidders": 3,
    "show_lowest_to_suppliers": True,
    "sign_in_ms": 0,
}
_AUCTION_EXAMPLE: dict[str, Any] = {
    "title": "某市第一中学计算机采购项目网上竞价",
    "title_en": "No. 1 Middle School computers: online reverse auction",
    "invited_supplier_ids": ["org_5a1c", "org_77d0", "org_c3e9"],
    "settings": _SETTINGS_EXAMPLE,
}


# --------------------------------------------------------------------------- helpers


async def _load_auction(services: Services, auction_id: str) -> AuctionRow:
    row = await services.auctions.get_auction(auction_id)
    if row is None:
        raise auction_not_found(auction_id)
    return row


async def _manage(request: Request) -> tuple[Services, Principal, AuctionRow]:
    """The caller, who must manage the auction named in the path."""
    principal = await require_principal(request)
    services = services_of(request)
    auction = await _load_auction(services, request.path_params["auction_id"])
    require_manage(principal, auction)
    return services, principal, auction


def _sees_invitations(principal: Principal, auction: AuctionRow) -> bool:
    return can_manage(principal, auction) or principal.has_any_role(Role.SUPERVISOR, Role.ADMIN)


class _OrgNames:
    """Organisation names looked up once per request."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._cache: dict[str, OrganisationRow | None] = {}

    async def get(self, org_id: str) -> OrganisationRow | None:
        if org_id not in self._cache:
            self._cache[org_id] = await self._services.registry.get_organisation(org_id)
        return self._cache[org_id]

    async def ref(self, org_id: str | None) -> dict[str, Any] | None:
        if org_id is None:
            return None
        org = await self.get(org_id)
        return {"id": org_id, "name": org.name if org else "",
                "name_en": org.name_en if org else ""}


async def auction_summary(
    services: Services,
    principal: Principal,
    auction: AuctionRow,
    names: _OrgNames | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """The durable record of an auction (SQL), as this caller may see it; ``status`` as listed
    at ``now_ms`` (the server's clock when not given): ``open`` once the start has come."""
    names = names or _OrgNames(services)
    if now_ms is None:
        now_ms = await services.clock.now_ms()
    view: dict[str, Any] = {
        "id": auction.id,
        "title": auction.title,
        "title_en": auction.title_en,
        "purchaser": await names.ref(auction.purchaser_org_id),
        "agency": await names.ref(auction.agency_org_id),
        "created_by_user_id": auction.created_by_user_id,
        "created_at_ms": auction.created_at_ms,
        "status": auction.status_at(now_ms),
        "start_ms": auction.start_ms,
        "end_ms": auction.end_ms,
        "closed_at_ms": auction.closed_at_ms,
        "settings": auction.settings,
    }
    if _sees_invitations(principal, auction):
        # Suppliers never learn who else is invited (collusion risk, DOMAIN §4).
        view["invited_supplier_ids"] = await services.auctions.invited_suppliers(auction.id)
    return view


async def _unknown_suppliers(services: Services, supplier_ids: list[str]) -> None:
    unknown = []
    for supplier_id in supplier_ids:
        org = await services.registry.get_organisation(supplier_id)
        if org is None or org.kind != OrgKind.SUPPLIER.value:
            unknown.append(supplier_id)
    if unknown:
        raise ValidationError(
            f"not supplier organisations: {', '.join(unknown)}",
            code="unknown_supplier",
            supplier_ids=unknown,
        )


async def _audit(
    services: Services,
    principal: Principal,
    action: str,
    auction_id: str,
    details: dict[str, Any],
) -> None:
    await services.auctions.append_audit(
        at_ms=await services.clock.now_ms(),
        action=action,
        subject=auction_id,
        actor_user_id=principal.user_id,
        details={"org_id": principal.org_id, **details},
    )


def _problems(problems: list[Problem]) -> ValidationError:
    return ValidationError(
        "the auction settings are not valid: "
        + "; ".join(f"{p.field}: {p.message}" for p in problems),
        code="invalid_settings",
        problems=[{"code": p.code, "field": p.field, "message": p.message} for p in problems],
    )


# --------------------------------------------------------------------------- create and read


@ops.add(
    "POST",
    "/api/auctions",
    summary_zh="创建网上竞价",
    summary_en="Create a reverse auction",
    description=(
        "Creates the live room, stores the auction and schedules its close. An agency names "
        "the purchaser it acts for (`purchaser_org_id`); a purchaser creates its own. Every "
        "settings problem is reported at once in `details.problems`."
    ),
    who="purchaser or agency",
    body=ref("AuctionInput"),
    body_example=_AUCTION_EXAMPLE,
    responses={201: Reply("the auction with its live room", ref("AuctionDetail"))},
    errors={
        403: ("role_required", "not_your_organisation"),
        422: ("missing_field", "invalid_field", "invalid_title", "invalid_settings",
              "end_in_past", "unknown_supplier", "unknown_purchaser"),
    },
)
async def create_auction(request: Request) -> Response:
    principal = await require_principal(request)
    require_role(principal, Role.PURCHASER, Role.AGENCY)
    body = await read_json(request)
    reject_unknown(
        body, ("title", "title_en", "purchaser_org_id", "invited_supplier_ids", "settings")
    )
    services = services_of(request)

    title = text_field(body, "title", required=True, max_length=MAX_TITLE, code="invalid_title")
    title_en = text_field(body, "title_en", required=False, max_length=MAX_TITLE,
                          code="invalid_title") or ""
    assert title is not None
    named = text_field(body, "purchaser_org_id", required=False, max_length=64)
    agency_org_id: str | None = None
    if principal.has_role(Role.PURCHASER):
        if named is not None and named != principal.org_id:
            raise ForbiddenError("a purchaser creates auctions only for its own organisation",
                                 code="not_your_organisation")
        purchaser_org_id = principal.org_id
    else:
        if named is None:
            raise ValidationError("an agency must name the purchaser (purchaser_org_id)",
                                  code="missing_field", field="purchaser_org_id")
        purchaser = await services.registry.get_organisation(named)
        if purchaser is None or purchaser.kind != OrgKind.PURCHASER.value:
            raise ValidationError(f"{named} is not a purchaser organisation",
                                  code="unknown_purchaser", purchaser_org_id=named)
        purchaser_org_id, agency_org_id = named, principal.org_id
    invited = id_list(body, "invited_supplier_ids", required=False)

    raw_settings = body.get("settings")
    if not isinstance(raw_settings, dict):
        raise _problems([Problem("invalid_body", "settings", "settings must be an object")])
    auction_id = new_auction_id()
    problems: list[Problem] = []
    if "auction_id" in raw_settings:
        problems.append(Problem("read_only_field", "auction_id",
                                "the auction id is assigned by the server"))
    settings, found = settings_from_dict({**raw_settings, "auction_id": auction_id})
    problems.extend(found)
    if problems or settings is None:
        raise _problems(problems)
    now = await services.clock.now_ms()
    if settings.end_ms <= now:
        raise ValidationError("the auction would end in the past", code="end_in_past",
                              end_ms=settings.end_ms, server_time_ms=now)
    await _unknown_suppliers(services, invited)

    row = await open_auction(
        services.executor, services.auctions, services.closer, settings=settings,
        title=title, title_en=title_en, purchaser_org_id=purchaser_org_id,
        agency_org_id=agency_org_id, created_by_user_id=principal.user_id,
        actor_org_id=principal.org_id, invited=invited, now_ms=now,
    )
    room = await load_room(services, auction_id)
    view = await auction_summary(services, principal, row)
    return json_response({**view, **view_for(room, principal)}, 201)


@ops.add(
    "GET",
    "/api/auctions",
    summary_zh="竞价列表",
    summary_en="List auctions",
    description=(
        "The auctions the caller may see: a purchaser its own, an agency those it runs, a "
        "supplier those it is invited to, supervisors and admins all. Newest start first, "
        "each with its live phase. `status=open` lists the started auctions not yet closed."
    ),
    who="any authenticated user with a party role",
    query=(
        QueryParam("status", {"type": "string", "enum": list(AUCTION_STATUSES)},
                   "status filter / 状态: scheduled (before the start), open (started, not yet "
                   "closed), closed, failed"),
        LIMIT_PARAM,
        OFFSET_PARAM,
    ),
    responses={200: Reply("a page of auctions", ref("AuctionList"))},
    errors={403: ("role_required",), 422: ("invalid_query", "invalid_status")},
)
async def list_auctions(request: Request) -> Response:
    principal = await require_principal(request)
    require_role(principal, Role.PURCHASER, Role.AGENCY, Role.SUPPLIER, Role.SUPERVISOR,
                 Role.ADMIN)
    page = page_of(request)
    status = request.query_params.get("status") or None
    if status is not None and status not in AUCTION_STATUSES:
        raise ValidationError(f"unknown status {status!r}", code="invalid_status",
                              status=status)
    filters: dict[str, str] = {}
    if not principal.has_any_role(Role.SUPERVISOR, Role.ADMIN):
        if principal.has_role(Role.PURCHASER):
            filters["purchaser_org_id"] = principal.org_id
        if principal.has_role(Role.AGENCY):
            filters["agency_org_id"] = principal.org_id
        if principal.has_role(Role.SUPPLIER):
            filters["supplier_org_id"] = principal.org_id
    services = services_of(request)
    now = await services.clock.now_ms()
    rows = await services.auctions.list_auctions(
        **filters, statuses=None if status is None else [status], limit=page.end + 1,
        now_ms=now,
    )
    chosen, next_offset = paginate(rows, page)
    names = _OrgNames(services)
    items = []
    for row in chosen:
        item = await auction_summary(services, principal, row, names, now)
        item["phase"], item["current_end_ms"] = await _live_phase(services, row)
        items.append(item)
    return json_response({"items": items, "next_offset": next_offset})


async def _live_phase(services: Services, row: AuctionRow) -> tuple[str | None, int | None]:
    if row.status in ("closed", "failed"):
        return row.status, None
    try:
        snap = await services.executor.snapshot(row.id)
    except NotFoundError:
        return None, None  # no live room (lost Redis data): the durable status still shows
    phase = phase_at(snap.state, snap.now_ms)
    end = None if phase in (Phase.CLOSED, Phase.FAILED) else snap.state.end_ms
    return phase.value, end


@ops.add(
    "GET",
    "/api/auctions/{auction_id}",
    summary_zh="竞价详情与实时状态",
    summary_en="An auction and its live room",
    description=(
        "The stored auction plus `room`, the live snapshot for the caller's audience "
        "(anonymous until the close), and for a supplier `you`: its own rank, best price, "
        "next allowed price and bids."
    ),
    who=PARTY,
    responses={200: Reply("the auction", ref("AuctionDetail"))},
    errors={403: ("not_invited",), 404: ("auction_not_found",)},
)
async def get_auction(request: Request) -> Response:
    principal = await require_principal(request)
    services = services_of(request)
    auction = await _load_auction(services, request.path_params["auction_id"])
    room = await load_room(services, auction.id)
    require_view(principal, auction, room.is_invited(principal.org_id))
    view = await auction_summary(services, principal, auction)
    return json_response({**view, **view_for(room, principal)})


# --------------------------------------------------------------------------- control


@ops.add(
    "POST",
    "/api/auctions/{auction_id}/invitations",
    summary_zh="追加邀请供应商",
    summary_en="Invite more suppliers",
    description="Until the end; the invited list never shrinks.",
    who=MANAGER,
    body=ref("InviteInput"),
    body_example={"supplier_ids": ["org_5a1c"]},
    responses={200: Reply("the suppliers newly invited", ref("Invited"))},
    errors={
        403: ("not_your_auction",),
        404: ("auction_not_found",),
        409: ("already_invited", "auction_ended"),
        422: ("missing_field", "invalid_field", "unknown_supplier"),
    },
)
async def invite(request: Request) -> Response:
    services, principal, auction = await _manage(request)
    body = await read_json(request)
    reject_unknown(body, ("supplier_ids",))
    supplier_ids = id_list(body, "supplier_ids", required=True, allow_empty=False)
    await _unknown_suppliers(services, supplier_ids)
    outcome = await services.executor.invite(auction.id, supplier_ids)
    if isinstance(outcome, CommandRefused):
        raise refused(outcome)
    assert isinstance(outcome, SuppliersInvited)
    added = list(outcome.supplier_ids)
    await services.auctions.add_invitations(auction.id, added, outcome.at_ms)
    await _audit(services, principal, "invite", auction.id,
                 {"supplier_ids": added, "seq": outcome.seq})
    return json_response(
        {"auction_id": auction.id, "added": added, "seq": outcome.seq, "at_ms": outcome.at_ms}
    )


@ops.add(
    "POST",
    "/api/auctions/{auction_id}/pause",
    summary_zh="暂停竞价",
    summary_en="Pause the auction",
    description="Needs a recorded reason (暂停原因, 1..500 characters); it goes to the audit log.",
    who=MANAGER,
    body=ref("PauseInput"),
    body_example={"reason": "平台网络故障，暂停竞价"},
    responses={200: Reply("paused", ref("Paused"))},
    errors={
        403: ("not_your_auction",),
        404: ("auction_not_found",),
        409: ("already_paused", "auction_closed", "not_running"),
        422: ("reason_required",),
    },
)
async def pause(request: Request) -> Response:
    services, principal, auction = await _manage(request)
    body = await read_json(request)
    reject_unknown(body, ("reason",))
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise ValidationError("a pause needs a reason of 1..500 characters",
                              code="reason_required")
    outcome = await services.executor.pause(auction.id, reason)
    if isinstance(outcome, CommandRefused):
        raise refused(outcome)
    assert isinstance(outcome, AuctionPaused)
    await _audit(services, principal, "pause", auction.id,
                 {"reason": reason, "seq": outcome.seq, "at_ms": outcome.at_ms})
    return json_response({"auction_id": auction.id, "seq": outcome.seq,
                          "at_ms": outcome.at_ms, "reason": reason})


@ops.add(
    "POST",
    "/api/auctions/{auction_id}/resume",
    summary_zh="恢复竞价",
    summary_en="Resume the auction",
    description="Gives back the paused time: the end moves by the length of the pause.",
    who=MANAGER,
    body=ref("ResumeInput"),
    body_required=False,
    body_example={"reason": "故障已排除"},
    responses={200: Reply("resumed", ref("Resumed"))},
    errors={
        403: ("not_your_auction",),
        404: ("auction_not_found",),
        409: ("not_paused",),
        422: ("invalid_field",),
    },
)
async def resume(request: Request) -> Response:
    services, principal, auction = await _manage(request)
    body = await read_json(request, optional=True)
    reject_unknown(body, ("reason",))
    note = text_field(body, "reason", required=False, max_length=MAX_REASON_LENGTH) or ""
    outcome = await services.executor.resume(auction.id)
    if isinstance(outcome, CommandRefused):
        raise refused(outcome)
    assert isinstance(outcome, AuctionResumed)
    await services.closer.schedule(auction.id, outcome.end_ms)
    await _audit(services, principal, "resume", auction.id,
                 {"reason": note, "seq": outcome.seq, "at_ms": outcome.at_ms,
                  "end_ms": outcome.end_ms, "paused_ms": outcome.paused_ms})
    return json_response({"auction_id": auction.id, "seq": outcome.seq,
                          "at_ms": outcome.at_ms, "end_ms": outcome.end_ms,
                          "paused_ms": outcome.paused_ms})


@ops.add(
    "POST",
    "/api/auctions/{auction_id}/sign-in",
    summary_zh="供应商签到",
    summary_en="Sign in (supplier)",
    description="Needed before bidding when the auction has a sign-in period (签到).",
    who="an invited supplier",
    responses={200: Reply("signed in", ref("SignedIn"))},
    errors={
        403: ("suppliers_only",),
        404: ("auction_not_found",),
        409: ("not_invited", "sign_in_not_required", "sign_in_not_open", "auction_ended",
              "already_signed_in"),
    },
)
async def sign_in(request: Request) -> Response:
    principal = await require_principal(request)
    if not principal.has_role(Role.SUPPLIER):
        raise ForbiddenError("only suppliers sign in", code="suppliers_only")
    services = services_of(request)
    auction = await _load_auction(services, request.path_params["auction_id"])
    outcome = await services.executor.sign_in(auction.id, principal.org_id)
    if isinstance(outcome, CommandRefused):
        raise refused(outcome)
    assert isinstance(outcome, SignedIn)
    await _audit(services, principal, "sign_in", auction.id,
                 {"seq": outcome.seq, "at_ms": outcome.at_ms})
    return json_response({"auction_id": auction.id, "supplier_id": principal.org_id,
                          "seq": outcome.seq, "at_ms": outcome.at_ms})


@ops.add(
    "POST",
    "/api/auctions/{auction_id}/bids",
    summary_zh="报价",
    summary_en="Place a bid (supplier)",
    description=(
        "201 with a signed receipt when accepted; 200 with the original receipt when the same "
        "`bid_id` was accepted before; 409 with the rejection reason (and "
        "`details.max_allowed_fen`) otherwise. A supplier bids only as itself."
    ),
    who="an invited supplier",
    body=ref("BidInput"),
    body_example={"bid_id": "b-20260101-0001", "price_fen": 99_000_000},
    responses={
        201: Reply("accepted, with the signed receipt", ref("BidOutcome")),
        200: Reply("a repeat of an accepted bid id: the original stands", ref("BidOutcome")),
    },
    errors={
        403: ("suppliers_only", "impersonation"),
        404: ("auction_not_found",),
        409: ("not_invited", "auction_paused", "not_started", "auction_ended",
              "not_signed_in", "above_ceiling", "insufficient_decrement"),
        422: ("missing_field", "invalid_price", "invalid_bid_id"),
    },
    error_bodies={409: ErrorBody("BidRejected", {"max_allowed_fen": 999_000,
                                                 "bid_id": "b-0001", "price_fen": 1_000_000})},
)
async def bid(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("bid_id", "price_fen", "supplier_id"))
    auction_id = request.path_params["auction_id"]
    outcome = await place_bid(services_of(request), principal, auction_id, body)
    if outcome.status == "rejected":
        assert outcome.reason is not None
        return error_response(
            outcome.reason,
            outcome.message or outcome.reason,
            409,
            {"max_allowed_fen": outcome.max_allowed_fen, "bid_id": outcome.bid_id,
             "price_fen": outcome.price_fen},
        )
    return json_response(outcome.as_dict(), 201 if outcome.status == "accepted" else 200)


# --------------------------------------------------------------------------- records


def _result_core(row: AuctionResultRow) -> dict[str, Any]:
    """The fields of ``AuctionResult.to_dict()``: their canonical JSON hashes to ``sha256``."""
    return {
        "auction_id": row.auction_id,
        "failed": row.failed,
        "failure_reason": row.failure_reason,
        "valid_bidders": row.valid_bidders,
        "ceiling_fen": row.ceiling_fen,
        "winner_id": row.winner_org_id,
        "winning_fen": row.winning_fen,
        "savings_fen": row.savings_fen,
        "savings_bp": row.savings_bp,
        "ranking": row.ranking,
        "closed_at_ms": row.closed_at_ms,
        "final_end_ms": row.final_end_ms,
        "extensions": row.extensions,
    }


@ops.add(
    "GET",
    "/api/auctions/{auction_id}/result",
    summary_zh="竞价结果",
    summary_en="The result",
    description=(
        "After the close: the winner, the ranking and the full bid log, with every supplier's "
        "name (identities are revealed at the close). `sha256` is the SHA-256 of the canonical "
        "JSON of the result's core fields, as printed on the result."
    ),
    who=PARTY,
    responses={200: Reply("the stored result", ref("Result"))},
    errors={403: ("not_invited",), 404: ("auction_not_found", "not_closed")},
)
async def result(request: Request) -> Response:
    principal = await require_principal(request)
    services = services_of(request)
    auction = await _load_auction(services, request.path_params["auction_id"])
    invited = False
    if principal.has_role(Role.SUPPLIER):
        invited = principal.org_id in await services.auctions.invited_suppliers(auction.id)
    require_view(principal, auction, invited)
    stored = await services.auctions.get_result(auction.id)
    if stored is None:
        raise NotFoundError("the auction has no result yet", code="not_closed",
                            auction_id=auction.id)
    row, bids = stored
    named = await services.result_with_names(
        {**_result_core(row), "sha256": row.result_sha256}
    )
    names = {e["supplier_id"]: (e["supplier_name"], e["supplier_name_en"])
             for e in named["ranking"]}
    names_of = _OrgNames(services)
    log = []
    for b in bids:
        if b.supplier_org_id not in names:
            org = await names_of.get(b.supplier_org_id)
            names[b.supplier_org_id] = (org.name, org.name_en) if org else ("", "")
        zh, en = names[b.supplier_org_id]
        log.append({"seq": b.seq, "supplier_id": b.supplier_org_id, "supplier_name": zh,
                    "supplier_name_en": en, "alias": b.alias, "bid_id": b.bid_id,
                    "price_fen": b.price_fen, "at_ms": b.at_ms})
    return json_response({**named, "persisted_at_ms": row.persisted_at_ms, "bids": log})


@ops.add(
    "GET",
    "/api/auctions/{auction_id}/audit",
    summary_zh="审计日志",
    summary_en="Audit log",
    description="Every control action on the auction (create, invite, pause, resume, sign-in).",
    who="the auction's purchaser or agency, supervisors, admins",
    query=(LIMIT_PARAM, OFFSET_PARAM),
    responses={200: Reply("the audit records, oldest first", ref("AuditList"))},
    errors={403: ("not_your_auction",), 404: ("auction_not_found",), 422: ("invalid_query",)},
)
async def audit(request: Request) -> Response:
    principal = await require_principal(request)
    services = services_of(request)
    auction = await _load_auction(services, request.path_params["auction_id"])
    if not _sees_invitations(principal, auction):
        raise ForbiddenError("only the auction's managers, supervisors and admins read its "
                             "audit log", code="not_your_auction")
    page = page_of(request)
    records = await services.auctions.list_audit(auction.id, limit=page.end + 1)
    chosen, next_offset = paginate(records, page)
    items = [{"id": r.id, "at_ms": r.at_ms, "actor_user_id": r.actor_user_id,
              "action": r.action, "details": r.details} for r in chosen]
    return json_response({"items": items, "next_offset": next_offset})
