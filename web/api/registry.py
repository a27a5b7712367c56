"""Registry routes: organisations, users and API tokens (administrators), and the region tree.

Region scoping (issue #11; the rule is ``market.registry.rules.viewer_scope`` / ``may_see``):
an administrator or supervisor of a region sees the organisations of that region and below,
and an administrator acts (users, tokens, new organisations) only there; the platform
operator's administrator without a region sees everything. A record outside the caller's
scope answers as if it did not exist (404). Purchasers and agencies may list and read
*supplier* organisations province-wide (suppliers register once and bid anywhere), seeing only
their public names and size class; every member reads its own organisation in full.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bidroom.errors import ForbiddenError, NotFoundError, ValidationError
from market.registry import (
    ApiTokenRow,
    OrganisationDetail,
    OrganisationRow,
    OrgKind,
    PersonInput,
    Principal,
    RegionDetail,
    RegionRow,
    Role,
    UserRow,
)
from market.registry.rules import RegionEntry, RegionScope, region_level, region_parent
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
    ref,
    reject_unknown,
    text_field,
)
from web.api.registry_schemas import REGION_CODE
from web.api.schemas import ORG_KIND, nullable
from web.auth import require_principal, require_role, services_of

__all__ = ["ops", "org_summary"]

ops = OperationSet("registry")

ADMIN = "admin"


def org_summary(org: OrganisationRow) -> dict[str, Any]:
    """What any party may see of an organisation."""
    return {
        "id": org.id,
        "name": org.name,
        "name_en": org.name_en,
        "kind": org.kind,
        "size_class": org.size_class,
    }


def org_full(org: OrganisationRow) -> dict[str, Any]:
    return {**org_summary(org), "credit_code": org.credit_code,
            "created_at_ms": org.created_at_ms, "region_code": org.region_code,
            "level": org.level, "budget_unit_code": org.budget_unit_code}


def org_detail(detail: OrganisationDetail) -> dict[str, Any]:
    """The full record with its persons: role and name only, never an ID number or its hash."""
    return {**org_full(detail.organisation),
            "persons": [{"role": p.role, "name": p.name} for p in detail.persons]}


def region_view(region: RegionRow) -> dict[str, Any]:
    return {"code": region.code, "name": region.name, "name_en": region.name_en,
            "level": region.level, "parent_code": region_parent(region.code)}


def region_detail(detail: RegionDetail) -> dict[str, Any]:
    return {**region_view(detail.region),
            "ancestors": [region_view(r) for r in detail.ancestors],
            "children": [region_view(r) for r in detail.children]}


def _org_not_found(org_id: str) -> NotFoundError:
    return NotFoundError(f"organisation {org_id} not found", code="organisation_not_found",
                         org_id=org_id)


def _scope(principal: Principal) -> RegionScope:
    scope = principal.scope
    assert scope is not None, "only called for admins and supervisors"
    return scope


async def _org_in_scope(request: Request, principal: Principal, org_id: str) -> OrganisationRow:
    """The organisation, for an administrator whose scope holds it; else 404 (an
    organisation outside the scope is indistinguishable from a missing one)."""
    org = await services_of(request).registry.get_organisation(org_id)
    if org is None or not _scope(principal).sees(org.region_code):
        raise _org_not_found(org_id)
    return org


def _persons(body: dict[str, Any]) -> list[PersonInput]:
    raw = body.get("persons")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValidationError("persons must be a list", code="invalid_person", field="persons")
    persons = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValidationError(f"persons[{index}] must be an object", code="invalid_person",
                                  field=f"persons[{index}]")
        reject_unknown(item, ("role", "name", "id_number", "id_type"))
        id_type = item.get("id_type", "resident")
        if id_type not in ("resident", "other"):
            raise ValidationError(f"persons[{index}].id_type is resident or other",
                                  code="invalid_person", field=f"persons[{index}].id_type")
        for name in ("role", "name", "id_number"):
            if not isinstance(item.get(name), str):
                raise ValidationError(f"persons[{index}].{name} is required",
                                      code="invalid_person", field=f"persons[{index}].{name}")
        persons.append(PersonInput(item["role"], item["name"], item["id_number"],
                                   resident=id_type == "resident"))
    return persons


def user_view(user: UserRow) -> dict[str, Any]:
    return {
        "id": user.id,
        "org_id": user.org_id,
        "name": user.name,
        "roles": sorted(r.value for r in user.roles),
        "created_at_ms": user.created_at_ms,
        "disabled": user.disabled,
    }


async def _admin(request: Request) -> Principal:
    principal = await require_principal(request)
    require_role(principal, Role.ADMIN)
    return principal


_ORG_EXAMPLE = {
    "kind": "supplier",
    "name": "北京某某科技有限公司",
    "name_en": "Beijing Something Technology Co., Ltd.",
    "size_class": "small",
    "credit_code": "91110108MA01ABCD2H",
    "region_code": "110108",
    "persons": [{"role": "legal_representative", "name": "张三",
                 "id_number": "11010519491231002X"}],
}


@ops.add(
    "POST",
    "/api/organisations",
    summary_zh="登记机构",
    summary_en="Register an organisation",
    description=(
        "A supplier needs a size class (企业划型); other kinds have none. A credit code is "
        "checked with its GB 32100 check character (`invalid_credit_code` names the one "
        "expected). `region_code` must be in the region tree; an administrator of a region "
        "registers only inside it (`region_out_of_scope`). Purchasing units may carry a "
        "`budget_unit_code` (预算单位编码) and `level`. Persons (legal representative, person "
        "in charge, controlling persons, managers) are stored as name + ID-number hash; the "
        "ID number is never stored or returned."
    ),
    who="admin (of the region, or platform-wide)",
    body=ref("OrganisationInput"),
    body_example=_ORG_EXAMPLE,
    responses={201: Reply("the organisation", ref("Organisation"))},
    errors={
        403: ("role_required", "region_out_of_scope"),
        404: ("region_not_found",),
        409: ("credit_code_taken", "budget_unit_code_taken"),
        422: ("missing_field", "invalid_name", "invalid_org_kind", "invalid_size_class",
              "invalid_credit_code", "invalid_region", "invalid_level",
              "invalid_budget_unit_code", "invalid_person", "invalid_id_number"),
    },
)
async def create_organisation(request: Request) -> Response:
    principal = await _admin(request)
    body = await read_json(request)
    reject_unknown(body, ("kind", "name", "name_en", "size_class", "credit_code",
                          "region_code", "level", "budget_unit_code", "persons"))
    if "kind" not in body:
        raise ValidationError("kind is required", code="missing_field", field="kind")
    if "name" not in body:
        raise ValidationError("name is required", code="missing_field", field="name")
    name = text_field(body, "name", required=True, code="invalid_name")
    name_en = text_field(body, "name_en", required=False, code="invalid_name") or ""
    assert name is not None
    region_code = body.get("region_code")
    if region_code is not None and (not isinstance(region_code, str)
                                    or region_level(region_code) is None):
        raise ValidationError("region_code is a six-digit 行政区划 code", code="invalid_region",
                              field="region_code")
    if not _scope(principal).sees(region_code):
        raise ForbiddenError(
            "只能在本辖区登记 / an administrator of a region registers organisations in that "
            "region only", code="region_out_of_scope", region_code=region_code)
    services = services_of(request)
    org = await services.registry.create_organisation(
        name,
        body["kind"],
        name_en=name_en,
        size_class=body.get("size_class"),
        credit_code=body.get("credit_code"),
        region_code=region_code,
        level=body.get("level"),
        budget_unit_code=body.get("budget_unit_code"),
        persons=_persons(body),
        now_ms=await services.clock.now_ms(),
    )
    return json_response(org_full(org), 201)


@ops.add(
    "GET",
    "/api/organisations",
    summary_zh="机构列表",
    summary_en="List organisations",
    description=(
        "Admins and supervisors list the organisations of their region and below (optionally "
        "of one kind; the platform-wide admin: all), with every field. Purchasers and agencies "
        "list suppliers only (kind defaults to supplier), province-wide, and see their id, "
        "names, kind and size class. `region` narrows the list to a region's subtree."
    ),
    who="admin or supervisor (their region); purchaser or agency for kind=supplier",
    query=(
        QueryParam("kind", ORG_KIND, "organisation kind / 机构类型"),
        QueryParam("region", REGION_CODE, "only this region and below / 仅此区划及下级"),
        LIMIT_PARAM,
        OFFSET_PARAM,
    ),
    responses={200: Reply("a page of organisations", {
        "type": "object",
        "properties": {
            "items": {"type": "array",
                      "items": {"anyOf": [ref("Organisation"), ref("OrganisationSummary")]}},
            "next_offset": nullable({"type": "integer"}),
        },
        "required": ["items", "next_offset"],
    })},
    errors={403: ("role_required",), 422: ("invalid_org_kind", "invalid_query")},
)
async def list_organisations(request: Request) -> Response:
    principal = await require_principal(request)
    page = page_of(request)
    raw_kind = request.query_params.get("kind") or None
    kind: OrgKind | None = None
    if raw_kind is not None:
        try:
            kind = OrgKind(raw_kind)
        except ValueError:
            raise ValidationError(f"unknown organisation kind {raw_kind!r}",
                                  code="invalid_org_kind", kind=raw_kind) from None
    within = request.query_params.get("region") or None
    if within is not None and region_level(within) is None:
        raise ValidationError("region must be a six-digit 行政区划 code", code="invalid_query",
                              parameter="region")
    scope = principal.scope
    if scope is None:
        require_role(principal, Role.ADMIN, Role.PURCHASER, Role.AGENCY, Role.SUPERVISOR)
        if kind not in (None, OrgKind.SUPPLIER):
            raise ForbiddenError(
                "only an admin or supervisor may list organisations other than suppliers",
                code="role_required")
        kind = OrgKind.SUPPLIER
    orgs = await services_of(request).registry.list_organisations(
        kind, scope=scope, within=within, limit=page.limit + 1, offset=page.offset)
    chosen, next_offset = orgs[: page.limit], page.end if len(orgs) > page.limit else None
    view = org_full if scope is not None else org_summary
    return json_response({"items": [view(o) for o in chosen], "next_offset": next_offset})


@ops.add(
    "GET",
    "/api/organisations/{org_id}",
    summary_zh="机构详情",
    summary_en="Read an organisation",
    description=(
        "The full record with its persons (role and name; ID numbers are never returned) for "
        "an admin or supervisor whose region holds it, and for the organisation's own users. "
        "Purchasers and agencies read a supplier's public summary. Anything else, and any "
        "organisation outside the caller's region, is `organisation_not_found`."
    ),
    who="admin or supervisor (their region); its own users; purchaser or agency (suppliers)",
    responses={200: Reply("the organisation: in full with `persons`, or its public summary",
                          {"anyOf": [ref("OrganisationDetail"), ref("OrganisationSummary")]})},
    errors={404: ("organisation_not_found",)},
)
async def get_organisation(request: Request) -> Response:
    principal = await require_principal(request)
    org_id = request.path_params["org_id"]
    detail = await services_of(request).registry.get_organisation_detail(org_id)
    if detail is None:
        raise _org_not_found(org_id)
    org = detail.organisation
    scope = principal.scope
    if principal.org_id == org.id or (scope is not None and scope.sees(org.region_code)):
        return json_response(org_detail(detail))
    if org.kind == OrgKind.SUPPLIER and principal.has_any_role(Role.PURCHASER, Role.AGENCY):
        return json_response(org_summary(org))
    raise _org_not_found(org_id)


@ops.add(
    "POST",
    "/api/users",
    summary_zh="创建用户",
    summary_en="Create a user",
    description=(
        "Each role must fit the organisation's kind (a supplier user in a supplier…). An "
        "administrator of a region creates users only for organisations of its region."
    ),
    who="admin (of the organisation's region, or platform-wide)",
    body=ref("UserInput"),
    body_example={"org_id": "org_9f8e", "name": "张三", "roles": ["purchaser"]},
    responses={201: Reply("the user", ref("User"))},
    errors={
        403: ("role_required",),
        404: ("organisation_not_found",),
        422: ("missing_field", "invalid_field", "invalid_name", "invalid_role",
              "role_not_allowed"),
    },
)
async def create_user(request: Request) -> Response:
    principal = await _admin(request)
    body = await read_json(request)
    reject_unknown(body, ("org_id", "name", "roles"))
    org_id = text_field(body, "org_id", required=True, max_length=64)
    assert org_id is not None
    await _org_in_scope(request, principal, org_id)
    if "name" not in body:
        raise ValidationError("name is required", code="missing_field", field="name")
    name = text_field(body, "name", required=True, code="invalid_name")
    assert name is not None
    roles = body.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise ValidationError("roles must be a list of role names", code="invalid_role",
                              field="roles")
    services = services_of(request)
    user = await services.registry.create_user(
        org_id, name, roles, await services.clock.now_ms()
    )
    return json_response(user_view(user), 201)


async def _user_in_scope(request: Request, principal: Principal, user_id: str) -> UserRow:
    user = await services_of(request).registry.get_user(user_id)
    if user is not None:
        org = await services_of(request).registry.get_organisation(user.org_id)
        if org is not None and _scope(principal).sees(org.region_code):
            return user
    raise NotFoundError(f"user {user_id} not found", code="user_not_found", user_id=user_id)


def token_view(token: str, row: ApiTokenRow) -> dict[str, Any]:
    return {
        "token": token,
        "token_id": row.id,
        "user_id": row.user_id,
        "label": row.label,
        "created_at_ms": row.created_at_ms,
        "expires_at_ms": row.expires_at_ms,
    }


@ops.add(
    "POST",
    "/api/users/{user_id}/tokens",
    summary_zh="签发 API 令牌",
    summary_en="Issue an API token",
    description=(
        "Returns the plaintext token once; only its SHA-256 is stored. An administrator of a "
        "region issues tokens only to users of its region's organisations."
    ),
    who="admin (of the user's region, or platform-wide)",
    body=ref("TokenInput"),
    body_required=False,
    body_example={"label": "bidding client", "expires_at_ms": 1798761600000},
    responses={201: Reply("the new token (plaintext shown once)", ref("IssuedToken"))},
    errors={
        403: ("role_required",),
        404: ("user_not_found",),
        409: ("user_disabled",),
        422: ("invalid_field", "invalid_label", "invalid_expiry"),
    },
)
async def issue_token(request: Request) -> Response:
    principal = await _admin(request)
    user_id = request.path_params["user_id"]
    await _user_in_scope(request, principal, user_id)
    body = await read_json(request, optional=True)
    reject_unknown(body, ("label", "expires_at_ms"))
    label = text_field(body, "label", required=False, code="invalid_label") or ""
    expires = optional_int(body, "expires_at_ms")
    services = services_of(request)
    token, row = await services.registry.issue_token(
        user_id,
        label=label,
        now_ms=await services.clock.now_ms(),
        expires_at_ms=expires,
    )
    return json_response(token_view(token, row), 201)


@ops.add(
    "DELETE",
    "/api/tokens/{token_id}",
    summary_zh="吊销 API 令牌",
    summary_en="Revoke an API token",
    description=(
        "Idempotent: revoking twice keeps the first revocation time. An administrator of a "
        "region revokes only its region's tokens."
    ),
    who="admin (of the token's region, or platform-wide)",
    responses={200: Reply("revoked", {
        "type": "object",
        "properties": {"token_id": {"type": "string"}, "revoked": {"const": True}},
        "required": ["token_id", "revoked"],
    })},
    errors={403: ("role_required",), 404: ("token_not_found",)},
)
async def revoke_token(request: Request) -> Response:
    principal = await _admin(request)
    token_id = request.path_params["token_id"]
    services = services_of(request)
    row = await services.registry.get_token(token_id)
    if row is not None:
        try:
            await _user_in_scope(request, principal, row.user_id)
        except NotFoundError:
            raise NotFoundError(f"token {token_id} not found", code="token_not_found",
                                token_id=token_id) from None
    await services.registry.revoke_token(token_id, await services.clock.now_ms())
    return json_response({"token_id": token_id, "revoked": True})


# --------------------------------------------------------------------------- the region tree


@ops.add(
    "GET",
    "/api/regions",
    summary_zh="行政区划列表",
    summary_en="List regions",
    description=(
        "The region tree (行政区划): the provinces, the children of `parent`, or with `q` every "
        "region whose name or code contains it (under `parent` if given). Reference data: any "
        "signed-in user."
    ),
    who="any signed-in user",
    query=(
        QueryParam("parent", REGION_CODE, "上级区划 / parent region"),
        QueryParam("q", {"type": "string", "minLength": 1, "maxLength": 50},
                   "名称或代码包含 / name or code contains"),
    ),
    responses={200: Reply("the regions, by code", {
        "type": "object",
        "properties": {"items": {"type": "array", "items": ref("Region")}},
        "required": ["items"],
    })},
    errors={422: ("invalid_query",)},
)
async def list_regions(request: Request) -> Response:
    await require_principal(request)
    parent = request.query_params.get("parent") or None
    if parent is not None and region_level(parent) is None:
        raise ValidationError("parent must be a six-digit 行政区划 code", code="invalid_query",
                              parameter="parent")
    query = request.query_params.get("q")
    if query is not None and not 0 < len(query.strip()) <= 50:
        raise ValidationError("q must be 1 to 50 characters", code="invalid_query",
                              parameter="q")
    rows = await services_of(request).registry.list_regions(
        parent, None if query is None else query.strip())
    return json_response({"items": [region_view(r) for r in rows]})


@ops.add(
    "GET",
    "/api/regions/{code}",
    summary_zh="行政区划详情",
    summary_en="Read a region",
    description="A region with its ancestors (province first) and its children.",
    who="any signed-in user",
    responses={200: Reply("the region", ref("RegionDetail"))},
    errors={404: ("region_not_found",)},
)
async def get_region(request: Request) -> Response:
    await require_principal(request)
    code = request.path_params["code"]
    detail = await services_of(request).registry.get_region(code)
    if detail is None:
        raise NotFoundError(f"region {code} not found", code="region_not_found",
                            region_code=code)
    return json_response(region_detail(detail))


@ops.add(
    "POST",
    "/api/regions",
    summary_zh="新增行政区划",
    summary_en="Add or rename a region",
    description=(
        "Adds a region (its parent, derived from the code, must exist) or renames one. An "
        "administrator of a region adds regions inside it only (`region_out_of_scope`). The "
        "full list is imported with `bidroom regions import FILE.csv`."
    ),
    who="admin (of the region, or platform-wide)",
    body=ref("RegionInput"),
    body_example={"code": "440106", "name": "天河区", "name_en": "Tianhe District"},
    responses={201: Reply("the region", ref("Region"))},
    errors={
        403: ("role_required", "region_out_of_scope"),
        422: ("missing_field", "invalid_field", "invalid_region", "invalid_name",
              "region_parent_missing"),
    },
)
async def create_region(request: Request) -> Response:
    principal = await _admin(request)
    body = await read_json(request)
    reject_unknown(body, ("code", "name", "name_en"))
    code = text_field(body, "code", required=True, max_length=6)
    name = text_field(body, "name", required=True, max_length=100)
    name_en = text_field(body, "name_en", required=False, max_length=100)  # None: keep it
    assert code is not None and name is not None
    if region_level(code) is None:
        raise ValidationError("code is a six-digit 行政区划 code", code="invalid_region",
                              field="code")
    if not _scope(principal).sees(code):
        raise ForbiddenError("只能在本辖区内新增 / only inside your own region",
                             code="region_out_of_scope", region_code=code)
    registry = services_of(request).registry
    await registry.import_regions([RegionEntry(code, name, name_en)])
    detail = await registry.get_region(code)
    assert detail is not None
    return json_response(region_view(detail.region), 201)
