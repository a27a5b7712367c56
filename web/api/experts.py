"""Expert registry routes (评审专家库, issue #12 item 1): administrators register and manage
the experts of their region, supervisors read them, an expert (a user with role ``expert``
linked to the record) reads their own and declares their unavailable days.
``market.experts`` decides and scopes; this module maps HTTP to it.

No answer carries an ID number or its hash: a relative is shown by the relation only
(ID numbers have too little entropy for a hash to be published).
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from bidroom.errors import ForbiddenError, NotFoundError, ValidationError
from market.experts.rules import AffiliationKind, ExpertStatus, RelationKind
from market.experts.service import AffiliationInput, ExpertView, RelationInput
from market.registry import Role
from web.api.common import (
    LIMIT_PARAM,
    OFFSET_PARAM,
    OperationSet,
    QueryParam,
    Reply,
    json_response,
    page_of,
    read_json,
    reject_unknown,
    text_field,
)
from web.api.registry_schemas import REGION_CODE
from web.api.schemas import BOOL, COUNT, ID, MS, NAME, STRING, nullable, obj
from web.auth import require_principal, services_of

__all__ = ["ops"]

ops = OperationSet("experts")

_DAY: Final = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_CATEGORY: Final = {"type": "string", "pattern": "^[ABC]([0-9]{2}){0,6}$"}
_CREDIT: Final = {"type": "string", "minLength": 18, "maxLength": 18}
_STATUS: Final = {"type": "string", "enum": [s.value for s in ExpertStatus]}
_AFF_KIND: Final = {"type": "string", "enum": [k.value for k in AffiliationKind]}
_REL_KIND: Final = {"type": "string", "enum": [k.value for k in RelationKind]}
_MAX_ITEMS: Final = 50

_AFFILIATION_IN = obj({"kind": _AFF_KIND, "org_id": ID, "credit_code": _CREDIT,
                       "org_name": NAME, "from": _DAY, "until": nullable(_DAY)},
                      ["kind", "from"], closed=True)
_RELATION_IN = obj({"kind": _REL_KIND, "relation": {"type": "string", "minLength": 1,
                                                    "maxLength": 100},
                    "id_number": {"type": "string", "minLength": 5, "maxLength": 32},
                    "resident": BOOL, "org_id": ID, "credit_code": _CREDIT},
                   ["kind", "relation"], closed=True)
_AFFILIATION = obj({"kind": _AFF_KIND, "org_id": nullable(ID), "credit_code": nullable(STRING),
                    "org_name": nullable(STRING), "from": _DAY, "until": nullable(_DAY)})
_RELATION = obj({"kind": _REL_KIND, "relation": STRING, "org_id": nullable(ID),
                 "credit_code": nullable(STRING)})
_RANGE = obj({"from": _DAY, "until": _DAY}, closed=True)
_EXPERT = obj({
    "id": ID, "name": STRING, "region_code": STRING, "status": _STATUS,
    "status_reason": nullable(STRING), "user_id": nullable(ID),
    "specialties": {"type": "array", "items": STRING},
    "affiliations": {"type": "array", "items": _AFFILIATION},
    "relations": {"type": "array", "items": _RELATION},
    "unavailable": {"type": "array", "items": _RANGE},
    "created_at_ms": MS, "updated_at_ms": MS,
})


def _view(view: ExpertView) -> dict[str, Any]:
    row, facts = view.expert, view.facts
    return {
        "id": row.id, "name": row.name, "region_code": row.region_code, "status": row.status,
        "status_reason": row.status_reason, "user_id": row.user_id,
        "specialties": list(facts.specialties),
        "affiliations": [{"kind": a.kind.value, "org_id": a.org_id,
                          "credit_code": a.credit_code, "org_name": a.org_name,
                          "from": a.from_day.isoformat(),
                          "until": None if a.until_day is None else a.until_day.isoformat()}
                         for a in facts.affiliations],
        "relations": [{"kind": r.kind.value, "relation": r.relation, "org_id": r.org_id,
                       "credit_code": r.credit_code} for r in facts.relations],
        "unavailable": [{"from": u.start.isoformat(),
                         "until": (u.end or u.start).isoformat()} for u in facts.unavailable],
        "created_at_ms": row.created_at_ms, "updated_at_ms": row.updated_at_ms,
    }


def _objects(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = body.get(name, [])
    if not isinstance(value, list) or len(value) > _MAX_ITEMS or not all(
            isinstance(item, dict) for item in value):
        raise ValidationError(f"{name} must be a list of at most {_MAX_ITEMS} objects",
                              code="invalid_field", field=name)
    return value


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be true or false", code="invalid_field", field=name)
    return value


def _specialties(body: dict[str, Any]) -> list[str]:
    value = body.get("specialties")
    if value is None:
        raise ValidationError("specialties is required", code="missing_field",
                              field="specialties")
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 20
                                              for v in value):
        raise ValidationError("specialties must be a list of category codes",
                              code="invalid_field", field="specialties")
    return value


def _affiliations(body: dict[str, Any]) -> list[AffiliationInput]:
    out = []
    for item in _objects(body, "affiliations"):
        reject_unknown(item, ("kind", "org_id", "credit_code", "org_name", "from", "until"))
        out.append(AffiliationInput(
            kind=text_field(item, "kind", required=True, max_length=20) or "",
            from_day=text_field(item, "from", required=True, max_length=10) or "",
            until_day=text_field(item, "until", required=False, max_length=10),
            org_id=text_field(item, "org_id", required=False, max_length=64),
            credit_code=text_field(item, "credit_code", required=False, max_length=18),
            org_name=text_field(item, "org_name", required=False)))
    return out


def _relations(body: dict[str, Any]) -> list[RelationInput]:
    out = []
    for item in _objects(body, "relations"):
        reject_unknown(item, ("kind", "relation", "id_number", "resident", "org_id",
                              "credit_code"))
        out.append(RelationInput(
            kind=text_field(item, "kind", required=True, max_length=20) or "",
            relation=text_field(item, "relation", required=True, max_length=100) or "",
            id_number=text_field(item, "id_number", required=False, max_length=32),
            resident=_bool(item, "resident", True),
            org_id=text_field(item, "org_id", required=False, max_length=64),
            credit_code=text_field(item, "credit_code", required=False, max_length=18)))
    return out


_SCOPE = ("Administrators and supervisors of the expert's region (or above) and the expert "
          "themself; out of sight answers as a missing one (`expert_not_found`).")


@ops.add(
    "POST", "/api/experts",
    summary_zh="登记评审专家", summary_en="Register an expert",
    description="An expert of a region within the administrator's, active at once. The ID "
                "number (and a relative's) is hashed at once and never stored or shown. "
                "Affiliations (employment, directorship, control) and relations are the facts "
                "the conflict check (回避, EXP 16; Reg 9) reads, with their days.",
    who="an administrator (its region and below)",
    body=obj({"name": NAME, "id_number": {"type": "string", "minLength": 5, "maxLength": 32},
              "resident": BOOL, "region_code": REGION_CODE,
              "specialties": {"type": "array", "items": _CATEGORY, "minItems": 1,
                              "maxItems": 20},
              "affiliations": {"type": "array", "items": _AFFILIATION_IN, "maxItems": 50},
              "relations": {"type": "array", "items": _RELATION_IN, "maxItems": 50}},
             ["name", "id_number", "region_code", "specialties"], closed=True),
    body_example={"name": "张三", "id_number": "11010519491231002X", "region_code": "440100",
                  "specialties": ["A0201"],
                  "affiliations": [{"kind": "employment", "org_name": "某大学",
                                    "credit_code": "91350100M000100Y43",
                                    "from": "2015-09-01", "until": None}],
                  "relations": []},
    responses={201: Reply("the expert", _EXPERT)},
    errors={403: ("role_required", "region_out_of_scope"), 404: ("category_not_found",),
            409: ("expert_already_registered",),
            422: ("invalid_field", "missing_field", "invalid_region", "invalid_id_number",
                  "invalid_credit_code", "invalid_date_range", "unknown_field")},
)
async def register_expert(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("name", "id_number", "resident", "region_code", "specialties",
                          "affiliations", "relations"))
    view = await services_of(request).experts.register(
        principal, name=text_field(body, "name", required=True) or "",
        id_number=text_field(body, "id_number", required=True, max_length=32) or "",
        resident=_bool(body, "resident", True),
        region_code=text_field(body, "region_code", required=True, max_length=6) or "",
        specialties=_specialties(body), affiliations=_affiliations(body),
        relations=_relations(body))
    return json_response(_view(view), 201)


@ops.add(
    "GET", "/api/experts",
    summary_zh="评审专家列表", summary_en="List experts",
    description="The experts of the caller's region and below; anyone else gets an empty page.",
    who="admin, supervisor (their region)",
    query=(QueryParam("status", _STATUS, "only this status"), LIMIT_PARAM, OFFSET_PARAM),
    responses={200: Reply("a page of experts", obj({
        "items": {"type": "array", "items": _EXPERT}, "total": COUNT}))},
    errors={422: ("invalid_query",)},
)
async def list_experts(request: Request) -> Response:
    principal = await require_principal(request)
    status = request.query_params.get("status") or None
    if status is not None and status not in set(ExpertStatus):
        raise ValidationError("status: active, suspended or retired", code="invalid_query",
                              parameter="status")
    page = page_of(request)
    views, total = await services_of(request).experts.list_experts(
        principal, status=status, limit=page.limit, offset=page.offset)
    return json_response({"items": [_view(v) for v in views], "total": total})


@ops.add(
    "GET", "/api/experts/me",
    summary_zh="我的专家档案", summary_en="The caller's expert record",
    description="The expert the calling user (role `expert`) is linked to.",
    who="an expert",
    responses={200: Reply("the expert", _EXPERT)},
    errors={403: ("role_required",), 404: ("expert_not_found",)},
)
async def my_expert(request: Request) -> Response:
    principal = await require_principal(request)
    if Role.EXPERT not in principal.roles:
        raise ForbiddenError("only an expert has an expert record", code="role_required")
    view = await services_of(request).experts.expert_for_user(principal.user_id)
    if view is None:
        raise NotFoundError("没有关联的专家 / no expert is linked to this user",
                            code="expert_not_found")
    return json_response(_view(view))


@ops.add(
    "GET", "/api/experts/{expert_id}",
    summary_zh="评审专家详情", summary_en="An expert",
    description=_SCOPE,
    who="admin, supervisor (their region); the expert",
    responses={200: Reply("the expert", _EXPERT)},
    errors={404: ("expert_not_found",)},
)
async def get_expert(request: Request) -> Response:
    principal = await require_principal(request)
    view = await services_of(request).experts.get(principal, request.path_params["expert_id"])
    return json_response(_view(view))


@ops.add(
    "POST", "/api/experts/{expert_id}/status",
    summary_zh="变更专家状态", summary_en="Change an expert's status",
    description="active → suspended, suspended → active, active or suspended → retired "
                "(final: `expert_retired`); other moves are `invalid_status_change`. "
                "Suspending or retiring needs a `reason` (`status_reason_required`). Only "
                "`active` experts are drawn (Reg 39; EXP 14).",
    who="an administrator of the expert's region",
    body=obj({"status": _STATUS, "reason": {"type": "string", "minLength": 1,
                                            "maxLength": 500}}, ["status"], closed=True),
    body_example={"status": "suspended", "reason": "年度考核不合格"},
    responses={200: Reply("the expert", _EXPERT)},
    errors={403: ("role_required", "region_out_of_scope"), 404: ("expert_not_found",),
            409: ("expert_retired", "invalid_status_change", "concurrent_change"),
            422: ("invalid_field", "missing_field", "unknown_field", "status_reason_required")},
)
async def change_status(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("status", "reason"))
    view = await services_of(request).experts.update_status(
        principal, request.path_params["expert_id"],
        text_field(body, "status", required=True, max_length=20) or "",
        text_field(body, "reason", required=False, max_length=500))
    return json_response(_view(view))


@ops.add(
    "PUT", "/api/experts/{expert_id}/unavailability",
    summary_zh="申报不可参评日期", summary_en="Declare the expert's unavailable days",
    description="Replaces the ranges of days (both ends included) on which the expert is not "
                "drawn. " + _SCOPE,
    who="the expert; an administrator of the expert's region",
    body=obj({"ranges": {"type": "array", "items": _RANGE, "maxItems": 50}}, closed=True),
    body_example={"ranges": [{"from": "2026-12-20", "until": "2027-01-03"}]},
    responses={200: Reply("the expert", _EXPERT)},
    errors={403: ("role_required", "region_out_of_scope"), 404: ("expert_not_found",),
            409: ("concurrent_change",),
            422: ("invalid_field", "missing_field", "invalid_date_range", "unknown_field")},
)
async def set_unavailability(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("ranges",))
    if "ranges" not in body:
        raise ValidationError("ranges is required", code="missing_field", field="ranges")
    ranges = []
    for item in _objects(body, "ranges"):
        reject_unknown(item, ("from", "until"))
        ranges.append((text_field(item, "from", required=True, max_length=10) or "",
                       text_field(item, "until", required=True, max_length=10) or ""))
    view = await services_of(request).experts.set_unavailability(
        principal, request.path_params["expert_id"], ranges)
    return json_response(_view(view))


@ops.add(
    "PUT", "/api/experts/{expert_id}/user",
    summary_zh="关联专家用户", summary_en="Link the user who signs in as the expert",
    description="A registry user with role `expert` (`expert_role_required`), linked to one "
                "expert at most (`user_already_linked`); `null` unlinks. The user signs in "
                "with an API token like any other.",
    who="an administrator of the expert's region",
    body=obj({"user_id": nullable(ID)}, closed=True),
    body_example={"user_id": "usr_3f2a"},
    responses={200: Reply("the expert", _EXPERT)},
    errors={403: ("role_required", "region_out_of_scope"),
            404: ("expert_not_found", "user_not_found"),
            409: ("user_already_linked", "concurrent_change"),
            422: ("invalid_field", "missing_field", "expert_role_required", "unknown_field")},
)
async def link_user(request: Request) -> Response:
    principal = await require_principal(request)
    body = await read_json(request)
    reject_unknown(body, ("user_id",))
    if "user_id" not in body:
        raise ValidationError("user_id is required", code="missing_field", field="user_id")
    view = await services_of(request).experts.link_user(
        principal, request.path_params["expert_id"],
        text_field(body, "user_id", required=False, max_length=64) or None)
    return json_response(_view(view))
