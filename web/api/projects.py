"""Project routes: a purchaser's project with its lots, and each lot's steps (publish, correct,
review qualification, terminate, re-tender). ``market.projects`` decides; this module maps HTTP
to it. A refusal answers 422 (a rule of law: the code names it and ``details.article`` cites
it) or 409 (the lot's state), and writes nothing.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from bidroom.errors import ValidationError
from market.calendar.views import date_view
from market.projects.rules import (
    BidMode,
    Correct,
    EvaluationMethod,
    LotState,
    Method,
    Publish,
    Qualification,
    RecordQualification,
    Retender,
    Terminate,
    plan_publication,
)
from market.projects.service import LotDraft
from market.projects.store import AnnouncementRow, LotRow, ProjectRow
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
from web.api.schemas import BOOL, COUNT, FEN, ID, MS, NAME, STRING, enum_of, nullable, obj
from web.auth import require_principal, services_of

__all__ = ["ops"]

ops = OperationSet("projects")

METHOD = enum_of([m.value for m in Method], "采购方式 (GPL 26)")
LOT_STATUS = enum_of(["draft", "announced", "bidding", "opened", "qualified", "evaluating",
                      "awarded", "failed", "terminated"])
_LOT_INPUT = obj({
    "title": NAME, "category_code": {"type": "string", "pattern": "^[ABC][0-9]{0,10}$"},
    "budget_fen": FEN, "ceiling_fen": FEN, "bond_fen": {**FEN, "minimum": 0},
    "bid_mode": enum_of([m.value for m in BidMode]),
    "evaluation": enum_of([m.value for m in EvaluationMethod]),
}, ["title", "category_code", "budget_fen", "ceiling_fen"], closed=True)
_LOT = obj({
    "id": ID, "number": COUNT, "title": STRING, "category_code": STRING, "method": METHOD,
    "budget_fen": FEN, "ceiling_fen": FEN, "bond_fen": {"type": "integer"},
    "bid_mode": STRING, "evaluation": STRING, "status": LOT_STATUS,
    "documents_from_ms": nullable(MS), "documents_until_ms": nullable(MS),
    "deadline_ms": nullable(MS), "announced_at_ms": nullable(MS),
    "bidders": {"type": "array", "items": ID},
    "qualification": {"type": "array", "items": obj({"supplier_id": ID, "passed": BOOL,
                                                      "reason": STRING})},
    "rounds": COUNT, "ended_reason": STRING,
})
_ANNOUNCEMENT = obj({"id": COUNT, "lot_id": nullable(ID), "kind": STRING, "title": STRING,
                     "body": STRING, "published_at_ms": MS,
                     "dates": {"type": "array", "items": DATE_VIEW}})
_PROJECT = obj({
    "id": ID, "title": STRING, "title_en": STRING, "method": METHOD, "region_code": STRING,
    "purchaser_org_id": ID, "agency_org_id": nullable(ID), "plan_id": nullable(ID),
    "budget_fen": FEN, "created_at_ms": MS, "lots": {"type": "array", "items": _LOT},
    "announcements": {"type": "array", "items": _ANNOUNCEMENT},
})
_RULE_ERRORS: Final = ("deadline_too_early", "documents_period_too_short", "method_needs_approval",
                       "ceiling_above_budget", "bond_too_high", "invalid_dates", "invalid_field",
                       "missing_field", "reason_required", "qualification_incomplete",
                      "intention_not_published", "intention_too_late")
_LOT_ERRORS: Final = {403: ("not_your_project",), 404: ("lot_not_found",),
                      409: ("wrong_status", "concurrent_change"), 422: _RULE_ERRORS}


def _lot_view(row: LotRow, state: LotState | None = None) -> dict[str, Any]:
    view = {
        "id": row.id, "number": row.number, "title": row.title,
        "category_code": row.category_code, "method": row.method, "budget_fen": row.budget_fen,
        "ceiling_fen": row.ceiling_fen, "bond_fen": row.bond_fen, "bid_mode": row.bid_mode,
        "evaluation": row.evaluation, "status": row.status,
        "documents_from_ms": row.documents_from_ms,
        "documents_until_ms": row.documents_until_ms, "deadline_ms": row.deadline_ms,
        "announced_at_ms": row.announced_at_ms, "bidders": list(row.bidders),
        "qualification": list(row.qualified), "rounds": row.rounds,
        "ended_reason": row.ended_reason,
    }
    if state is not None:
        view.update(method=str(state.method), status=str(state.status),
                    documents_from_ms=state.documents_from_ms,
                    documents_until_ms=state.documents_until_ms,
                    deadline_ms=state.deadline_ms, announced_at_ms=state.announced_at_ms,
                    bidders=list(state.bidders), rounds=state.rounds,
                    ended_reason=state.ended_reason,
                    qualification=[{"supplier_id": q.supplier_id, "passed": q.passed,
                                    "reason": q.reason} for q in state.qualified])
    return view


def _announcement_view(row: AnnouncementRow) -> dict[str, Any]:
    return {"id": row.id, "lot_id": row.lot_id, "kind": row.kind, "title": row.title,
            "body": row.body, "published_at_ms": row.published_at_ms, "dates": list(row.dates)}


def _project_view(project: ProjectRow, lots: list[LotRow],
                  announcements: list[AnnouncementRow]) -> dict[str, Any]:
    return {"id": project.id, "title": project.title, "title_en": project.title_en,
            "method": project.method, "region_code": project.region_code,
            "purchaser_org_id": project.purchaser_org_id,
            "agency_org_id": project.agency_org_id, "plan_id": project.plan_id,
            "budget_fen": project.budget_fen,
            "created_at_ms": project.created_at_ms, "lots": [_lot_view(r) for r in lots],
            "announcements": [_announcement_view(a) for a in announcements]}


def _choice(body: dict[str, Any], name: str, kind: type[Any], default: Any = None) -> Any:
    value = body.get(name, default)
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(f"{name}: one of {', '.join(k.value for k in kind)}",
                              code="invalid_field", field=name) from None


def _required_int(body: dict[str, Any], name: str) -> int:
    value = optional_int(body, name)
    if value is None:
        raise ValidationError(f"{name} is required", code="missing_field", field=name)
    return value


def _lot_draft(raw: Any, index: int) -> LotDraft:
    if not isinstance(raw, dict):
        raise ValidationError(f"lots[{index}] must be an object", code="invalid_field",
                              field=f"lots[{index}]")
    reject_unknown(raw, ("title", "category_code", "budget_fen", "ceiling_fen", "bond_fen",
                         "bid_mode", "evaluation"))
    return LotDraft(
        title=text_field(raw, "title", required=True) or "",
        category_code=text_field(raw, "category_code", required=True, max_length=20) or "",
        budget_fen=_required_int(raw, "budget_fen"),
        ceiling_fen=_required_int(raw, "ceiling_fen"),
        bond_fen=optional_int(raw, "bond_fen") or 0,
        bid_mode=_choice(raw, "bid_mode", BidMode, "sealed"),
        evaluation=_choice(raw, "evaluation", EvaluationMethod, "comprehensive"),
    )


@ops.add(
    "POST", "/api/projects",
    summary_zh="新建采购项目", summary_en="Create a procurement project",
    description="A purchaser's project with one or more lots, in draft. Lot terms are checked "
                "at once: the ceiling within the budget (O87 12), the bond at most 2 % (Reg 33). "
                "With `plan_id` the project draws on that procurement plan of the purchaser's: "
                "its budget fits in what the plan has left (`plan_exceeded`) and every lot's "
                "category is the plan's or below it (`category_outside_plan`).",
    who="a purchaser",
    body=obj({"title": NAME, "title_en": STRING, "method": METHOD,
              "region_code": {"type": "string", "pattern": "^[1-8][0-9]{5}$"},
              "agency_org_id": nullable(ID), "plan_id": nullable(ID),
              "lots": {"type": "array", "minItems": 1, "maxItems": 50, "items": _LOT_INPUT}},
             ["title", "method", "region_code", "lots"], closed=True),
    body_example={"title": "某市教育局计算机采购", "method": "open_tender", "region_code": "440100",
                  "lots": [{"title": "台式计算机", "category_code": "A02010104",
                            "budget_fen": 100000000, "ceiling_fen": 95000000,
                            "bond_fen": 1000000}]},
    responses={201: Reply("the project", _PROJECT)},
    errors={403: ("role_required",), 404: ("plan_not_found",),
            409: ("concurrent_change",),
            422: ("invalid_region", "invalid_category", "invalid_field", "missing_field",
                  "ceiling_above_budget", "bond_too_high", "invalid_budget", "plan_exceeded",
                  "category_outside_plan")},
)
async def create_project(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("title", "title_en", "method", "region_code", "agency_org_id",
                          "plan_id", "lots"))
    lots = body.get("lots")
    if not isinstance(lots, list):
        raise ValidationError("lots: a list of lots", code="missing_field" if lots is None
                              else "invalid_field", field="lots")
    drafts = [_lot_draft(raw, i) for i, raw in enumerate(lots[:51])]
    agency = body.get("agency_org_id")
    if agency is not None and not (isinstance(agency, str) and 0 < len(agency) <= 64):
        raise ValidationError("agency_org_id: an organisation id", code="invalid_field",
                              field="agency_org_id")
    plan_id = body.get("plan_id")
    if plan_id is not None and not (isinstance(plan_id, str) and 0 < len(plan_id) <= 64):
        raise ValidationError("plan_id: a plan id", code="invalid_field", field="plan_id")
    project, rows = await services_of(request).projects.create_project(
        principal, title=text_field(body, "title", required=True) or "",
        title_en=text_field(body, "title_en", required=False) or "",
        method=_choice(body, "method", Method),
        region_code=text_field(body, "region_code", required=True, max_length=6) or "",
        lots=drafts, agency_org_id=agency, plan_id=plan_id)
    return json_response(_project_view(project, rows, []), 201)


@ops.add(
    "GET", "/api/projects",
    summary_zh="采购项目列表", summary_en="List projects",
    description="Region scoping: an administrator or supervisor lists the projects of its "
                "region and below only; anyone else its own organisation's projects and every "
                "published one.",
    who="any authenticated user (scoped)",
    query=(QueryParam("region", {"type": "string", "pattern": "^[0-9]{0,6}$"},
                      "region code prefix (44: Guangdong, 4401: Guangzhou)"),
           LIMIT_PARAM, OFFSET_PARAM),
    responses={200: Reply("a page of projects", obj({
        "items": {"type": "array", "items": obj({"id": ID, "title": STRING, "method": METHOD,
                                                 "region_code": STRING, "budget_fen": FEN,
                                                 "created_at_ms": MS})},
        "total": COUNT}))},
    errors={422: ("invalid_field", "invalid_query")},
)
async def list_projects(request: Request) -> Response:
    principal = await require_principal(request)
    region = request.query_params.get("region", "")
    if not ((region.isascii() and region.isdigit()) or region == "") or len(region) > 6:
        raise ValidationError("region: up to six digits", code="invalid_field", field="region")
    page = page_of(request)
    rows, total = await services_of(request).projects.list_projects(
        region_prefix=region, limit=page.limit, offset=page.offset, principal=principal)
    return json_response({"items": [
        {"id": r.id, "title": r.title, "method": r.method, "region_code": r.region_code,
         "budget_fen": r.budget_fen, "created_at_ms": r.created_at_ms} for r in rows],
        "total": total})


@ops.add(
    "GET", "/api/projects/{project_id}",
    summary_zh="采购项目详情", summary_en="A project with its lots and announcements",
    description="A project outside the caller's sight (see the list) is `project_not_found`, "
                "as a missing one.",
    who="any authenticated user (scoped)",
    responses={200: Reply("the project", _PROJECT)},
    errors={404: ("project_not_found",)},
)
async def get_project(request: Request) -> Response:
    principal = await require_principal(request)
    projects = services_of(request).projects
    project, lots = await projects.project(request.path_params["project_id"], principal)
    return json_response(_project_view(project, lots, await projects.announcements(project.id)))


@ops.add(
    "GET", "/api/lots/{lot_id}/plan",
    summary_zh="发布前的法定日期", summary_en="The statutory dates of a publication",
    description="What the law requires if the lot were published now with documents from "
                "`documents_from_ms`: the announcement period (O87 16), the documents' minimum "
                "period (O87 18) and the earliest deadline (GPL 35 / O74 29 / O74 45 / "
                "财库〔2014〕214号 10), each with its article. Scoped as the project is.",
    who="any authenticated user (scoped)",
    query=(QueryParam("documents_from_ms", MS, "when the documents are first issued",
                      required=True),),
    responses={200: Reply("the dates", obj({"dates": {"type": "array", "items": DATE_VIEW}}))},
    errors={404: ("project_not_found", "lot_not_found"), 422: ("invalid_field",
                                                                "missing_field")},
)
async def publication_plan(request: Request) -> Response:
    principal = await require_principal(request)
    raw = request.query_params.get("documents_from_ms")
    if raw is None:
        raise ValidationError("documents_from_ms is required", code="missing_field",
                              field="documents_from_ms")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 15):
        raise ValidationError("documents_from_ms: ms since the epoch", code="invalid_field",
                              field="documents_from_ms")
    services = services_of(request)
    lot = await services.projects.lot(request.path_params["lot_id"], principal)
    plan = plan_publication(await services.calendar.data(), Method(lot.method),
                            await services.clock.now_ms(), int(raw))
    return json_response({"dates": [date_view(d) for d in plan.dates]})


async def _run(request: Request, build: Any) -> Response:
    principal = await require_principal(request)
    services = services_of(request)
    lot_id = request.path_params["lot_id"]
    state, events = await services.projects.run(principal, lot_id, build)
    row = await services.projects.lot(lot_id)
    return json_response({"lot": _lot_view(row, state),
                          "events": [type(e).__name__ for e in events]})


_LOT_RESULT = obj({"lot": _LOT, "events": {"type": "array", "items": STRING}})


@ops.add(
    "POST", "/api/lots/{lot_id}/publish",
    summary_zh="发布采购公告", summary_en="Publish the lot's announcement",
    description="Refused, with the rule, when the method needs approval (GPL 27), the deadline "
                "is before the earliest legal day (`deadline_too_early` with `earliest_day`) or "
                "the documents' period is short (O87 18). A lot of a project that draws on a "
                "plan needs the plan's procurement intention published at least 30 days "
                "before (财库〔2020〕10号: `intention_not_published`, `intention_too_late` with "
                "`earliest_day`).",
    who="the project's purchaser or agency",
    body=obj({"documents_from_ms": MS, "documents_until_ms": MS, "deadline_ms": MS,
              "approval": STRING}, ["documents_from_ms", "documents_until_ms", "deadline_ms"],
             closed=True),
    responses={200: Reply("the lot, announced", _LOT_RESULT)},
    errors=_LOT_ERRORS,
)
async def publish_lot(request: Request) -> Response:
    body = await read_json(request)
    reject_unknown(body, ("documents_from_ms", "documents_until_ms", "deadline_ms", "approval"))
    docs_from = _required_int(body, "documents_from_ms")
    docs_until = _required_int(body, "documents_until_ms")
    deadline = _required_int(body, "deadline_ms")
    approval = text_field(body, "approval", required=False, max_length=200) or ""
    project_budget = await services_of(request).projects.project_budget(
        request.path_params["lot_id"])
    return await _run(request, lambda s, now: Publish(now, docs_from, docs_until, deadline,
                                                      project_budget, approval))


@ops.add(
    "POST", "/api/lots/{lot_id}/corrections",
    summary_zh="发布更正公告", summary_en="Publish a correction",
    description="A bid-affecting correction less than 15 days before the deadline moves the "
                "deadline (O87 27).",
    who="the project's purchaser or agency",
    body=obj({"affects_bids": BOOL, "deadline_ms": MS}, ["affects_bids"], closed=True),
    responses={200: Reply("the lot", _LOT_RESULT)},
    errors=_LOT_ERRORS,
)
async def correct_lot(request: Request) -> Response:
    body = await read_json(request)
    reject_unknown(body, ("affects_bids", "deadline_ms"))
    affects = body.get("affects_bids")
    if not isinstance(affects, bool):
        raise ValidationError("affects_bids: true or false", code="missing_field"
                              if affects is None else "invalid_field", field="affects_bids")
    deadline = optional_int(body, "deadline_ms")
    return await _run(request, lambda s, now: Correct(now, affects, deadline))


@ops.add(
    "POST", "/api/lots/{lot_id}/qualification",
    summary_zh="资格审查结论", summary_en="Record the qualification review",
    description="Pass or fail for every bidder, a fail with its reason; fewer than 3 qualified "
                "fails the lot (O87 44).",
    who="the project's purchaser or agency",
    body=obj({"results": {"type": "array", "maxItems": 1000, "items": obj(
        {"supplier_id": ID, "passed": BOOL, "reason": STRING}, ["supplier_id", "passed"],
        closed=True)}}, closed=True),
    responses={200: Reply("the lot", _LOT_RESULT)},
    errors=_LOT_ERRORS,
)
async def record_qualification(request: Request) -> Response:
    body = await read_json(request)
    reject_unknown(body, ("results",))
    raw = body.get("results")
    if not isinstance(raw, list) or len(raw) > 1000:
        raise ValidationError("results: a list", code="missing_field" if raw is None
                              else "invalid_field", field="results")
    results = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("passed"), bool):
            raise ValidationError(f"results[{i}]: supplier_id, passed, reason",
                                  code="invalid_field", field=f"results[{i}]")
        reject_unknown(item, ("supplier_id", "passed", "reason"))
        results.append(Qualification(text_field(item, "supplier_id", required=True,
                                                max_length=64) or "",
                                     item["passed"],
                                     text_field(item, "reason", required=False,
                                                max_length=2000) or ""))
    return await _run(request, lambda s, now: RecordQualification(now, tuple(results)))


@ops.add(
    "POST", "/api/lots/{lot_id}/terminate",
    summary_zh="终止", summary_en="Terminate the lot",
    who="the project's purchaser or agency",
    body=obj({"reason": STRING}, closed=True),
    responses={200: Reply("the lot", _LOT_RESULT)},
    errors=_LOT_ERRORS,
)
async def terminate_lot(request: Request) -> Response:
    body = await read_json(request)
    reject_unknown(body, ("reason",))
    reason = text_field(body, "reason", required=True, max_length=2000,
                        code="reason_required") or ""
    return await _run(request, lambda s, now: Terminate(now, reason))


@ops.add(
    "POST", "/api/lots/{lot_id}/retender",
    summary_zh="重新招标或变更采购方式", summary_en="Re-tender a failed lot",
    description="Back to draft, by the same method or another one (O87 43); another method at "
                "or above the threshold needs an approval when it is published (GPL 27).",
    who="the project's purchaser or agency",
    body=obj({"method": METHOD}, closed=True),
    responses={200: Reply("the lot", _LOT_RESULT)},
    errors=_LOT_ERRORS,
)
async def retender_lot(request: Request) -> Response:
    body = await read_json(request)
    reject_unknown(body, ("method",))
    method = _choice(body, "method", Method)
    return await _run(request, lambda s, now: Retender(now, method))
