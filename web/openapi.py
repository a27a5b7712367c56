"""The OpenAPI 3.1 document, built from the one registry of HTTP operations (``web.api``),
and its own route, ``GET /openapi.json`` (``ops``, ``routes()``).

Each ``Operation`` carries its own hand-written spec (bilingual summary, request body schema,
responses, error codes, who may call it); this module only assembles them, adds the shared
schemas (``web.api.schemas``), the error responses and the bearer security scheme. A test
checks that every Starlette route appears here with the right methods and vice versa.

The WebSocket endpoint ``/ws`` is not an HTTP operation; the document's description points to
docs/protocol.md for it.

The route lives here, above ``web.api``, not in it: the document lists every operation, its
own included, so the module that serves it must import the registry, and the registry must
not import it back (no import cycle: docs/internals.md, "Layers and import contracts").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from web.api import operations as api_operations
from web.api.common import Operation, OperationSet, Reply, Schema, json_response, ref
from web.api.schemas import COMPONENTS

__all__ = ["OPENAPI_VERSION", "build_document", "openapi_document", "ops", "routes"]

OPENAPI_VERSION = "3.1.0"
_PATH_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")
_PATH_PARAM_DOCS = {
    "auction_id": "auction id (auc_…) / 竞价编号",
    "user_id": "user id (usr_…) / 用户编号",
    "token_id": "token id (tok_…) / 令牌编号",
}
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    401: "Unauthenticated: no, or an invalid, bearer token",
    403: "Forbidden: the caller's role, organisation or invitation does not allow it",
    404: "Not found",
    409: "Conflict: the auction's current state refuses it (code = the reason)",
    422: "Invalid input",
    503: "A store (Redis or SQL) is unavailable; retry",
}

DESCRIPTION = """\
Bidroom: the real-time engine of a government e-procurement platform — live reverse auctions
(反向竞价 / 网上竞价).

* Money is **integer fen** (分, 1 yuan = 100 fen); a float price is refused (`invalid_price`).
* Times are **integer milliseconds since the epoch, UTC**; the server's clock is authoritative
  (`GET /api/time`).
* Authenticate with `Authorization: Bearer brt_…` (tokens are issued by an administrator).
* Errors answer `{"error": {"code": …, "message": …, "details": {…}}}`; the codes are stable.
* Until the close every view is background-to-background (背靠背): suppliers are anonymous
  (供应商1, 2, …) to everyone; the result reveals them.
* Accepted bids carry a receipt signed with the platform's Ed25519 key
  (`GET /api/platform-key`); it verifies offline.

**Real time: the WebSocket `/ws`.** Live rooms (snapshots, bids, extensions, pauses, the close
and the result) are pushed over the WebSocket endpoint `/ws`, which also accepts bids. It is not
an HTTP operation, so it is not listed under paths: see
[docs/protocol.md](docs/protocol.md) for its messages, sub-protocols and close codes.
"""


def _version() -> str:
    try:
        return metadata.version("bidroom")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _error_response(op: Operation, status: int, codes: Sequence[str]) -> dict[str, Any]:
    listed = ", ".join(f"`{code}`" for code in codes)
    special = op.error_bodies.get(status)
    examples: dict[str, Any] = {}
    for code in codes:
        error: dict[str, Any] = {"code": code, "message": "…"}
        if special is not None:
            error["details"] = dict(special.details_example)
        examples[code] = {"value": {"error": error}}
    return {
        "description": f"{_STATUS_TEXT.get(status, 'Error')}. Codes: {listed}",
        "content": {
            "application/json": {
                "schema": ref(special.schema if special is not None else "Error"),
                "examples": examples,
            }
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    who = "public (no token)" if op.public else op.who
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "tags": [op.tag],
        "summary": f"{op.summary_zh} / {op.summary_en}",
        "description": (f"{op.description}\n\n" if op.description else "")
        + f"**Who / 调用者:** {who}",
        "security": [] if op.public else [{"bearerAuth": []}],
    }
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": _PATH_PARAM_DOCS.get(name, name),
        }
        for name in _PATH_PARAM.findall(op.path)
    ]
    parameters.extend(
        {
            "name": q.name,
            "in": "query",
            "required": q.required,
            "schema": q.schema,
            "description": q.description,
        }
        for q in op.query
    )
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        media: dict[str, Any] = {"schema": op.body}
        if op.body_example is not None:
            media["example"] = op.body_example
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": media},
        }
    responses: dict[str, Any] = {}
    for status, reply in sorted(op.responses.items()):
        entry: dict[str, Any] = {"description": reply.description}
        if reply.schema is not None:
            content: dict[str, Any] = {"schema": reply.schema}
            if reply.example is not None:
                content["example"] = reply.example
            entry["content"] = {"application/json": content}
        responses[str(status)] = entry
    for status, codes in op.all_errors().items():
        responses[str(status)] = _error_response(op, status, codes)
    doc["responses"] = responses
    return doc


def build_document(operations: Sequence[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these operations."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        methods = paths.setdefault(op.path, {})
        key = op.method.lower()
        if key in methods:
            raise ValueError(f"{op.method} {op.path} is declared twice")
        methods[key] = _operation(op)
    tags = list(dict.fromkeys(op.tag for op in operations))
    schemas: dict[str, Schema] = dict(COMPONENTS)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Bidroom API",
            "version": _version(),
            "description": DESCRIPTION,
        },
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token `brt_…` issued by an administrator",
                }
            },
        },
        "security": [{"bearerAuth": []}],
    }


ops = OperationSet("docs")


@ops.add(
    "GET",
    "/openapi.json",
    summary_zh="OpenAPI 接口文档",
    summary_en="The OpenAPI document",
    description="This document (OpenAPI 3.1). The WebSocket `/ws` is described in its info.",
    public=True,
    responses={200: Reply("the OpenAPI 3.1 document", {"type": "object"})},
)
async def openapi_json(request: Request) -> Response:
    return json_response(openapi_document())


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document of every route of ``web.api`` and of its own (built once per process)."""
    return build_document([*api_operations(), *ops.operations])


def routes() -> list[BaseRoute]:
    """The route of ``GET /openapi.json``."""
    return [op.route() for op in ops.operations]
