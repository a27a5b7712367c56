"""Plan routes: a purchasing unit's budget projects (预算项目), the procurement plans against
them, procurement intentions (采购意向) and the splitting report (Reg 28) for supervisors.
``market.plans`` decides and scopes; this module maps HTTP to it. A rule's refusal answers 422
with the rule's code and ``details.article``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bidroom.errors import ValidationError
from market.plans.rules import SplittingFlag
from market.plans.service import BudgetProjectView, PlanView
from market.plans.store import BudgetProjectRow, IntentionRow, PlanPurchaseRow, PlanRow
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
from web.api.schemas import BOOL, COUNT, FEN, ID, MS, NAME, STRING, obj
from web.auth import require_principal, services_of

__all__ = ["ops"]

ops = OperationSet("plans")

_CATEGORY = {"type": "string", "pattern": "^[ABC]([0-9]{2}){0,6}$"}
_BUDGET = obj({
    "id": ID, "purchaser_org_id": ID, "region_code": STRING, "code": STRING, "name": STRING,
    "fiscal_year": COUNT, "amount_fen": FEN, "planned_fen": COUNT, "remaining_fen": COUNT,
    "created_at_ms": MS,
})
_PLAN = obj({
    "id": ID, "budget_project_id": ID, "name": STRING, "category_code": STRING,
    "amount_fen": FEN, "committed_fen": COUNT, "remaining_fen": COUNT, "created_at_ms": MS,
})
_INTENTION = obj({
    "id": ID, "plan_id": ID, "name": STRING, "requirement_summary": STRING, "budget_fen": FEN,
    "expected_month": STRING, "published_at_ms": MS,
})
_PURCHASE = obj({"lot_id": ID, "project_id": ID, "category_code": STRING, "method": STRING,
                 "amount_fen": FEN, "approved": BOOL, "terminated": BOOL})
_BUDGET_DETAIL = obj({**_BUDGET["properties"], "plans": {"type": "array", "items": _PLAN}})
_PLAN_DETAIL = obj({**_PLAN["properties"], "budget_project": _BUDGET,
                    "intentions": {"type": "array", "items": _INTENTION},
                    "purchases": {"type": "array", "items": _PURCHASE}})
_FLAG = obj({"category_code": STRING, "fiscal_year": COUNT, "total_fen": FEN,
             "threshold_fen": FEN, "purchase_ids": {"type": "array", "items": ID},
             "article": STRING})


def _budget_view(row: BudgetProjectRow) -> dict[str, Any]:
    return {"id": row.id, "purchaser_org_id": row.purchaser_org_id,
            "region_code": row.region_code, "code": row.code, "name": row.name,
            "fiscal_year": row.fiscal_year, "amount_fen": row.amount_fen,
            "planned_fen": row.planned_fen, "remaining_fen": row.amount_fen - row.planned_fen,
            "created_at_ms": row.created_at_ms}


def _plan_view(row: PlanRow) -> dict[str, Any]:
    return {"id": row.id, "budget_project_id": row.budget_project_id, "name": row.name,
            "category_code": row.category_code, "amount_fen": row.amount_fen,
            "committed_fen": row.committed_fen,
            "remaining_fen": row.amount_fen - row.committed_fen,
            "created_at_ms": row.created_at_ms}


def _intention_view(row: IntentionRow) -> dict[str, Any]:
    return {"id": row.id, "plan_id": row.plan_id, "name": row.name,
            "requirement_summary": row.requirement_summary, "budget_fen": row.budget_fen,
            "expected_month": row.expected_month, "published_at_ms": row.published_at_ms}


def _purchase_view(row: PlanPurchaseRow) -> dict[str, Any]:
    return {"lot_id": row.lot_id, "project_id": row.project_id,
            "category_code": row.category_code, "method": row.method,
            "amount_fen": row.amount_fen, "approved": row.approved,
            "terminated": row.terminated}


def _budget_detail(view: BudgetProjectView) -> dict[str, Any]:
    return {**_budget_view(view.budget), "plans": [_plan_view(p) for p in view.plans]}


def _plan_detail(view: PlanView) -> dict[str, Any]:
    return {**_plan_view(view.plan), "budget_project": _budget_view(view.budget),
            "intentions": [_intention_view(i) for i in view.intentions],
            "purchases": [_purchase_view(p) for p in view.purchases]}


def _flag_view(flag: SplittingFlag) -> dict[str, Any]:
    return {"category_code": flag.category_code, "fiscal_year": flag.fiscal_year,
            "total_fen": flag.total_fen, "threshold_fen": flag.threshold_fen,
            "purchase_ids": list(flag.purchase_ids), "article": flag.article}


def _required_int(body: dict[str, Any], name: str) -> int:
    value = optional_int(body, name)
    if value is None:
        raise ValidationError(f"{name} is required", code="missing_field", field=name)
    return value


_SCOPE = ("Region scoping: the purchasing unit's purchasers, and administrators and "
          "supervisors whose region holds it; out of sight answers as a missing one.")


@ops.add(
    "POST", "/api/budget-projects",
    summary_zh="登记预算项目", summary_en="Register a budget project",
    description="A budget line (预算项目) of the caller's purchasing unit for one fiscal year. "
                "Its region is the unit's; a unit registered without a region names it.",
    who="a purchaser",
    body=obj({"code": {"type": "string", "pattern": "^[0-9A-Za-z-]{1,40}$"}, "name": NAME,
              "fiscal_year": {"type": "integer", "minimum": 2000, "maximum": 2100},
              "amount_fen": FEN, "region_code": {"type": "string", "pattern": "^[1-8][0-9]{5}$"}},
             ["code", "name", "fiscal_year", "amount_fen"], closed=True),
    body_example={"code": "440106-2026-001", "name": "2026年教学设备购置", "fiscal_year": 2026,
                  "amount_fen": 300_000_000},
    responses={201: Reply("the budget project", _BUDGET)},
    errors={403: ("role_required", "region_out_of_scope"), 409: ("budget_project_code_taken",),
            422: ("invalid_field", "missing_field", "invalid_region")},
)
async def create_budget_project(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("code", "name", "fiscal_year", "amount_fen", "region_code"))
    row = await services_of(request).plans.create_budget_project(
        principal, code=text_field(body, "code", required=True, max_length=40) or "",
        name=text_field(body, "name", required=True) or "",
        fiscal_year=_required_int(body, "fiscal_year"),
        amount_fen=_required_int(body, "amount_fen"),
        region_code=text_field(body, "region_code", required=False, max_length=6))
    return json_response(_budget_view(row), 201)


@ops.add(
    "GET", "/api/budget-projects",
    summary_zh="预算项目列表", summary_en="List budget projects",
    description="The budget projects the caller sees: a purchaser its unit's, an administrator "
                "or supervisor its region's and below.",
    who="purchaser (its own); admin, supervisor (their region)",
    query=(QueryParam("fiscal_year", {"type": "integer", "minimum": 2000, "maximum": 2100},
                      "only this fiscal year"), LIMIT_PARAM, OFFSET_PARAM),
    responses={200: Reply("a page of budget projects", obj({
        "items": {"type": "array", "items": _BUDGET}, "total": COUNT}))},
    errors={422: ("invalid_query",)},
)
async def list_budget_projects(request: Request) -> Response:
    principal = await require_principal(request)
    raw = request.query_params.get("fiscal_year")
    year = None
    if raw:
        if not (raw.isascii() and raw.isdigit() and 2000 <= int(raw) <= 2100):
            raise ValidationError("fiscal_year: 2000–2100", code="invalid_query",
                                  parameter="fiscal_year")
        year = int(raw)
    page = page_of(request)
    rows, total = await services_of(request).plans.list_budget_projects(
        principal, fiscal_year=year, limit=page.limit, offset=page.offset)
    return json_response({"items": [_budget_view(r) for r in rows], "total": total})


@ops.add(
    "GET", "/api/budget-projects/{budget_project_id}",
    summary_zh="预算项目详情", summary_en="A budget project with its plans",
    description=_SCOPE,
    who="purchaser (its own); admin, supervisor (their region)",
    responses={200: Reply("the budget project", _BUDGET_DETAIL)},
    errors={404: ("budget_project_not_found",)},
)
async def get_budget_project(request: Request) -> Response:
    principal = await require_principal(request)
    view = await services_of(request).plans.budget_project(
        principal, request.path_params["budget_project_id"])
    return json_response(_budget_detail(view))


@ops.add(
    "POST", "/api/budget-projects/{budget_project_id}/plans",
    summary_zh="编制采购计划", summary_en="Add a procurement plan",
    description="A plan for one category of the catalogue. The budget project's plans together "
                "never exceed its amount (`plans_exceed_budget`, GPL 6, with `remaining_fen`).",
    who="the budget project's purchaser",
    body=obj({"name": NAME, "category_code": _CATEGORY, "amount_fen": FEN}, closed=True),
    body_example={"name": "计算机采购", "category_code": "A020101", "amount_fen": 200_000_000},
    responses={201: Reply("the plan", _PLAN)},
    errors={403: ("role_required",), 404: ("budget_project_not_found", "category_not_found"),
            409: ("concurrent_change",),
            422: ("invalid_field", "missing_field", "plans_exceed_budget")},
)
async def create_plan(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("name", "category_code", "amount_fen"))
    plan = await services_of(request).plans.create_plan(
        principal, request.path_params["budget_project_id"],
        name=text_field(body, "name", required=True) or "",
        category_code=text_field(body, "category_code", required=True, max_length=20) or "",
        amount_fen=_required_int(body, "amount_fen"))
    return json_response(_plan_view(plan), 201)


@ops.add(
    "GET", "/api/plans/{plan_id}",
    summary_zh="采购计划详情", summary_en="A plan with its intentions and purchases",
    description="What the plan has left, its procurement intentions and the lots drawn on it. "
                + _SCOPE,
    who="purchaser (its own); admin, supervisor (their region)",
    responses={200: Reply("the plan", _PLAN_DETAIL)},
    errors={404: ("plan_not_found",)},
)
async def get_plan(request: Request) -> Response:
    principal = await require_principal(request)
    view = await services_of(request).plans.plan(principal, request.path_params["plan_id"])
    return json_response(_plan_detail(view))


@ops.add(
    "POST", "/api/plans/{plan_id}/intentions",
    summary_zh="公开采购意向", summary_en="Publish a procurement intention",
    description="财库〔2020〕10号: the project's name, the requirement summary (采购需求概况), the "
                "budget and the expected month (预计采购时间), published now. The purchase may "
                "start 30 days after at the earliest: an expected month wholly before that is "
                "`intention_too_late` (with `earliest_day`); a budget above the plan's amount "
                "`plan_exceeded`.",
    who="the plan's purchaser",
    body=obj({"name": NAME, "requirement_summary": {"type": "string", "minLength": 1,
                                                    "maxLength": 4000},
              "budget_fen": FEN, "expected_month": {"type": "string",
                                                    "pattern": "^20[0-9]{2}-(0[1-9]|1[0-2])$"}},
             closed=True),
    body_example={"name": "某中学台式计算机采购",
                  "requirement_summary": "台式计算机120台，三年保修", "budget_fen": 100_000_000,
                  "expected_month": "2026-10"},
    responses={201: Reply("the intention", _INTENTION)},
    errors={403: ("role_required",), 404: ("plan_not_found",),
            422: ("invalid_field", "missing_field", "intention_too_late", "plan_exceeded")},
)
async def publish_intention(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("name", "requirement_summary", "budget_fen", "expected_month"))
    summary = body.get("requirement_summary")
    if summary is not None and not isinstance(summary, str):
        raise ValidationError("requirement_summary must be a string", code="invalid_field",
                              field="requirement_summary")
    if summary is None:
        raise ValidationError("requirement_summary is required", code="missing_field",
                              field="requirement_summary")
    row = await services_of(request).plans.publish_intention(
        principal, request.path_params["plan_id"],
        name=text_field(body, "name", required=True) or "", requirement_summary=summary,
        budget_fen=_required_int(body, "budget_fen"),
        expected_month=text_field(body, "expected_month", required=True, max_length=7) or "")
    return json_response(_intention_view(row), 201)


@ops.add(
    "GET", "/api/budget-projects/{budget_project_id}/splitting",
    summary_zh="化整为零预警", summary_en="Splitting red flags (Reg 28)",
    description="Within the budget project's fiscal year, the purchases (lots drawn on its "
                "plans) of one category (a category and those below it) by a method other "
                "than open tender and not approved for it, whose total is strictly greater "
                "than the open-tender threshold (政府采购法实施条例 第二十八条).",
    who="admin, supervisor (their region)",
    responses={200: Reply("the flags", obj({
        "budget_project_id": ID, "fiscal_year": COUNT, "threshold_fen": FEN,
        "flags": {"type": "array", "items": _FLAG}}))},
    errors={403: ("role_required",), 404: ("budget_project_not_found",)},
)
async def splitting(request: Request) -> Response:
    principal = await require_principal(request)
    plans = services_of(request).plans
    budget, flags = await plans.splitting(principal, request.path_params["budget_project_id"])
    return json_response({"budget_project_id": budget.id, "fiscal_year": budget.fiscal_year,
                          "threshold_fen": plans.threshold_fen,
                          "flags": [_flag_view(f) for f in flags]})
