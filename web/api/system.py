"""System routes: health, the server clock, the platform key, receipt checks and ``/api/me``.

Health, time and the platform key are public: a load balancer probes health, clients sync
their countdown to the server clock, and anyone may verify a receipt offline with the key.
"""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from bidroom.receipts import verify_document
from bidroom.stores.redis import store_errors
from bidroom.stores.sql import sql_errors
from web.api.common import OperationSet, Reply, json_response, read_json, ref
from web.auth import require_principal, services_of

__all__ = ["ops"]

ops = OperationSet("system")

_KEY_EXAMPLE = {
    "key_id": "3f9a0c1d2e4b5a6f",
    "algorithm": "Ed25519",
    "public_key_pem": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA…\n-----END PUBLIC KEY-----\n",
}


@ops.add(
    "GET",
    "/api/health",
    summary_zh="健康检查",
    summary_en="Health check",
    description="Pings Redis and the SQL database; 503 `store_unavailable` if either fails.",
    public=True,
    responses={200: Reply("both stores answer", {
        "type": "object", "properties": {"status": {"const": "ok"}}, "required": ["status"],
    }, {"status": "ok"})},
)
async def health(request: Request) -> Response:
    services = services_of(request)
    with store_errors("Redis"):
        await services.redis.ping()
    with sql_errors("health check"):
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    return json_response({"status": "ok"})


@ops.add(
    "GET",
    "/api/time",
    summary_zh="服务器时间",
    summary_en="Server time",
    description="The authoritative server clock, for syncing a client's countdown.",
    public=True,
    responses={200: Reply("the server clock", {
        "type": "object",
        "properties": {"server_time_ms": {"type": "integer"}},
        "required": ["server_time_ms"],
    }, {"server_time_ms": 1767225600123})},
)
async def server_time(request: Request) -> Response:
    return json_response({"server_time_ms": await services_of(request).clock.now_ms()})


@ops.add(
    "GET",
    "/api/platform-key",
    summary_zh="平台公钥",
    summary_en="Platform public key",
    description="The Ed25519 public key that signs bid receipts, to verify them offline.",
    public=True,
    responses={200: Reply("the platform's public key", {
        "type": "object",
        "properties": {
            "key_id": {"type": "string"},
            "algorithm": {"const": "Ed25519"},
            "public_key_pem": {"type": "string"},
        },
        "required": ["key_id", "algorithm", "public_key_pem"],
    }, _KEY_EXAMPLE)},
)
async def platform_key(request: Request) -> Response:
    key = services_of(request).platform_key
    return json_response(
        {"key_id": key.key_id, "algorithm": "Ed25519", "public_key_pem": key.public_key_pem()}
    )


@ops.add(
    "POST",
    "/api/receipts/verify",
    summary_zh="验证回执签名",
    summary_en="Verify a receipt",
    description="Checks a platform-signed document (a bid receipt) exactly as received.",
    who="any authenticated user",
    body=ref("SignedDocument"),
    responses={200: Reply("the signature holds", {
        "type": "object", "properties": {"valid": {"const": True}}, "required": ["valid"],
    }, {"valid": True})},
    errors={422: ("bad_signature",)},
)
async def verify_receipt(request: Request) -> Response:
    await require_principal(request)
    document = await read_json(request)
    verify_document(document, services_of(request).platform_key.public_key_pem())
    return json_response({"valid": True})


@ops.add(
    "GET",
    "/api/me",
    summary_zh="当前用户",
    summary_en="Who am I",
    description="The authenticated user, its organisation and roles.",
    who="any authenticated user",
    responses={200: Reply("the caller", ref("Principal"), {
        "user_id": "usr_0a1b", "user_name": "张三", "org_id": "org_9f8e",
        "org_name": "某市财政局", "org_kind": "purchaser", "roles": ["purchaser"],
    })},
)
async def me(request: Request) -> Response:
    principal = await require_principal(request)
    return json_response(
        {
            "user_id": principal.user_id,
            "user_name": principal.user_name,
            "org_id": principal.org_id,
            "org_name": principal.org_name,
            "org_kind": principal.org_kind.value,
            "roles": sorted(r.value for r in principal.roles),
        }
    )
