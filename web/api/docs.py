"""The ``GET /openapi.json`` route: the OpenAPI 3.1 document of every HTTP route."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from web.api.common import OperationSet, Reply, json_response

__all__ = ["ops"]

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
    from web.openapi import openapi_document  # late: web.openapi reads web.api's registry

    return json_response(openapi_document())
