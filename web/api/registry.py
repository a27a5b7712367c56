"""Registry routes: organisations, users and API tokens (platform administrators).

Purchasers, agencies and supervisors may also list *supplier* organisations (a purchaser must
pick the suppliers it invites), seeing only their public names and size class.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bidroom.errors import ForbiddenError, ValidationError
from market.registry import ApiTokenRow, OrganisationRow, OrgKind, Principal, Role, UserRow
from web.api.common import (
    LIMIT_PARAM,
    OFFSET_PARAM,
    OperationSet,
    QueryParam,
    Reply,
    json_response,
    optional_int,
    page_of,
    paginate,
    read_json,
    ref,
    reject_unknown,
    text_field,
)
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
            "created_at_ms": org.created_at_ms}


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
    "credit_code": "91110108MA01ABCD2X",
}


@ops.add(
    "POST",
    "/api/organisations",
    summary_zh="登记机构",
    summary_en="Register an organisation",
    description="A supplier needs a size class (企业划型); other kinds have none.",
    who=ADMIN,
    body=ref("OrganisationInput"),
    body_example=_ORG_EXAMPLE,
    responses={201: Reply("the organisation", ref("Organisation"))},
    errors={
        403: ("role_required",),
        409: ("credit_code_taken",),
        422: ("missing_field", "invalid_name", "invalid_org_kind", "invalid_size_class",
              "invalid_credit_code"),
    },
)
async def create_organisation(request: Request) -> Response:
    await _admin(request)
    body = await read_json(request)
    reject_unknown(body, ("kind", "name", "name_en", "size_class", "credit_code"))
    if "kind" not in body:
        raise ValidationError("kind is required", code="missing_field", field="kind")
    if "name" not in body:
        raise ValidationError("name is required", code="missing_field", field="name")
    name = text_field(body, "name", required=True, code="invalid_name")
    name_en = text_field(body, "name_en", required=False, code="invalid_name") or ""
    assert name is not None
    services = services_of(request)
    org = await services.registry.create_organisation(
        name,
        body["kind"],
        name_en=name_en,
        size_class=body.get("size_class"),
        credit_code=body.get("credit_code"),
        now_ms=await services.clock.now_ms(),
    )
    return json_response(org_full(org), 201)


@ops.add(
    "GET",
    "/api/organisations",
    summary_zh="机构列表",
    summary_en="List organisations",
    description=(
        "Admins list every organisation (optionally of one kind). Purchasers, agencies and "
        "supervisors may list suppliers only (kind defaults to supplier) and see their "
        "id, names, kind and size class."
    ),
    who="admin; purchaser, agency or supervisor for kind=supplier",
    query=(
        QueryParam("kind", ORG_KIND, "organisation kind / 机构类型"),
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
    admin = principal.has_role(Role.ADMIN)
    if not admin:
        require_role(principal, Role.ADMIN, Role.PURCHASER, Role.AGENCY, Role.SUPERVISOR)
        if kind not in (None, OrgKind.SUPPLIER):
            raise ForbiddenError("only an admin may list organisations other than suppliers",
                                 code="role_required")
        kind = OrgKind.SUPPLIER
    orgs = await services_of(request).registry.list_organisations(kind)
    chosen, next_offset = paginate(orgs, page)
    view = org_full if admin else org_summary
    return json_response({"items": [view(o) for o in chosen], "next_offset": next_offset})


@ops.add(
    "POST",
    "/api/users",
    summary_zh="创建用户",
    summary_en="Create a user",
    description="Each role must fit the organisation's kind (a supplier user in a supplier…).",
    who=ADMIN,
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
    await _admin(request)
    body = await read_json(request)
    reject_unknown(body, ("org_id", "name", "roles"))
    org_id = text_field(body, "org_id", required=True, max_length=64)
    assert org_id is not None
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
    description="Returns the plaintext token once; only its SHA-256 is stored.",
    who=ADMIN,
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
    await _admin(request)
    body = await read_json(request, optional=True)
    reject_unknown(body, ("label", "expires_at_ms"))
    label = text_field(body, "label", required=False, code="invalid_label") or ""
    expires = optional_int(body, "expires_at_ms")
    services = services_of(request)
    token, row = await services.registry.issue_token(
        request.path_params["user_id"],
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
    description="Idempotent: revoking twice keeps the first revocation time.",
    who=ADMIN,
    responses={200: Reply("revoked", {
        "type": "object",
        "properties": {"token_id": {"type": "string"}, "revoked": {"const": True}},
        "required": ["token_id", "revoked"],
    })},
    errors={403: ("role_required",), 404: ("token_not_found",)},
)
async def revoke_token(request: Request) -> Response:
    await _admin(request)
    token_id = request.path_params["token_id"]
    services = services_of(request)
    await services.registry.revoke_token(token_id, await services.clock.now_ms())
    return json_response({"token_id": token_id, "revoked": True})
