"""Shared pieces of the HTTP API: the operation registry, JSON bodies, fields, pages and ids.

Every route is declared once, with its OpenAPI spec, through an ``OperationSet``::

    ops = OperationSet("system")

    @ops.add("GET", "/api/time", summary_zh="服务器时间", summary_en="Server time",
             public=True, responses={200: Reply("the server's clock", ref("ServerTime"))})
    async def server_time(request: Request) -> Response: ...

The Starlette routes (``web.api.routes()``) and the OpenAPI document (``web.openapi``) are both
generated from these ``Operation`` records, so the two cannot drift apart.

Conventions: JSON in and out; money is integer fen; times are integer milliseconds since the
epoch (UTC). Errors are raised as ``bidroom.errors`` types and rendered by ``web.errors`` as
``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bidroom.auction.rules import CommandRefused
from bidroom.errors import BidroomError, ConflictError, NotFoundError, ValidationError
from web.auth import require_principal
from web.bidding import reason_message

__all__ = [
    "AUTH_ERRORS",
    "BODY_ERRORS",
    "LIMIT_PARAM",
    "MAX_BODY_BYTES",
    "OFFSET_PARAM",
    "Endpoint",
    "ErrorBody",
    "Operation",
    "OperationSet",
    "Page",
    "QueryParam",
    "Reply",
    "Schema",
    "id_list",
    "json_response",
    "new_auction_id",
    "optional_int",
    "page_of",
    "paginate",
    "read_json",
    "ref",
    "refused",
    "reject_unknown",
    "text_field",
    "text_problem",
]

Schema = dict[str, Any]
Endpoint = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")

MAX_BODY_BYTES: Final = 256 * 1024
MAX_LIST_ITEMS: Final = 1000
DEFAULT_PAGE: Final = 100
MAX_PAGE: Final = 500

# Errors every authenticated route may answer, and every route that reads a JSON body.
AUTH_ERRORS: Final[dict[int, tuple[str, ...]]] = {
    401: ("missing_token", "invalid_token"),
}
BODY_ERRORS: Final[dict[int, tuple[str, ...]]] = {
    422: ("malformed_json", "invalid_body", "body_too_large", "invalid_text", "invalid_number",
          "unknown_field"),
}
# A route with path parameters: a value no id can have (a control character, over 64
# characters) names nothing; a route with a query string: a value with a control character.
PATH_ERRORS: Final[dict[int, tuple[str, ...]]] = {404: ("not_found",)}
QUERY_ERRORS: Final[dict[int, tuple[str, ...]]] = {422: ("invalid_query",)}
STORE_ERRORS: Final[dict[int, tuple[str, ...]]] = {503: ("store_unavailable",)}
MAX_PATH_PARAM: Final = 64
MAX_QUERY_OFFSET: Final = 1_000_000_000
# The integers every JSON implementation carries exactly (I-JSON, RFC 7493): 2^53 - 1. Larger
# ones are refused at the edge (they overflowed SQLite's 64-bit INTEGER as a 500).
MAX_JSON_INT: Final = 2**53 - 1
MAX_QUERY_VALUE: Final = 200


def ref(name: str) -> Schema:
    """A reference to a schema of the document's ``components.schemas``."""
    return {"$ref": f"#/components/schemas/{name}"}


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True, slots=True)
class Reply:
    """One documented success response."""

    description: str
    schema: Schema | None = None
    example: Any = None


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """An error status whose body is more specific than ``Error`` (a component name)."""

    schema: str
    details_example: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    schema: Schema
    description: str
    required: bool = False


LIMIT_PARAM: Final = QueryParam(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
    "page size / 每页条数",
)
OFFSET_PARAM: Final = QueryParam(
    "offset", {"type": "integer", "minimum": 0, "maximum": MAX_QUERY_OFFSET, "default": 0},
    "items to skip / 跳过条数",
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One HTTP route and its OpenAPI spec: the single source of both."""

    method: str
    path: str
    endpoint: Endpoint
    tag: str
    summary_zh: str
    summary_en: str
    description: str = ""
    public: bool = False  # no bearer token needed
    who: str = "anyone"  # who may call it (documentation)
    body: Schema | None = None
    body_required: bool = True
    body_example: Any = None
    query: tuple[QueryParam, ...] = ()
    responses: Mapping[int, Reply] = field(default_factory=dict)
    errors: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    error_bodies: Mapping[int, ErrorBody] = field(default_factory=dict)

    @property
    def operation_id(self) -> str:
        return self.endpoint.__name__

    def all_errors(self) -> dict[int, tuple[str, ...]]:
        """The route's own error codes merged with the ones every such route may answer."""
        merged: dict[int, list[str]] = {}
        sources: list[Mapping[int, tuple[str, ...]]] = [self.errors, STORE_ERRORS]
        if not self.public:
            sources.append(AUTH_ERRORS)
        if self.body is not None:
            sources.append(BODY_ERRORS)
        if "{" in self.path:
            sources.append(PATH_ERRORS)
        if self.query:
            sources.append(QUERY_ERRORS)
        for source in sources:
            for status, codes in source.items():
                bucket = merged.setdefault(status, [])
                bucket.extend(code for code in codes if code not in bucket)
        return {status: tuple(merged[status]) for status in sorted(merged)}

    def route(self) -> Route:
        return Route(self.path, _checked(self.endpoint, authenticated=not self.public),
                     methods=[self.method], name=self.operation_id)


def _url_problem(request: Request) -> BidroomError | None:
    """A path parameter with a control character or longer than ``MAX_PATH_PARAM`` names
    nothing (404 ``not_found``); a query value with a control character, or longer than
    ``MAX_QUERY_VALUE``, is ``invalid_query``. (A URL cannot carry a lone surrogate: the
    server decodes bytes that are not UTF-8 to U+FFFD.)"""
    for name, value in request.path_params.items():
        if isinstance(value, str) and (len(value) > MAX_PATH_PARAM or _BAD_LINE.search(value)):
            return NotFoundError(f"no such {name}", code="not_found", parameter=name)
    for name, value in request.query_params.multi_items():
        if len(value) > MAX_QUERY_VALUE or _BAD_LINE.search(value) or _BAD_LINE.search(name):
            return ValidationError(
                f"query parameter {name!r} has a control character or is longer than "
                f"{MAX_QUERY_VALUE} characters", code="invalid_query",
                parameter="?" if _BAD_LINE.search(name) else name)
    return None


def _checked(endpoint: Endpoint, *, authenticated: bool) -> Endpoint:
    """The endpoint behind the edge's checks of the URL (``_url_problem``); on a route that
    needs a token, the token is still checked first."""

    @functools.wraps(endpoint)
    async def checked(request: Request) -> Response:
        problem = _url_problem(request)
        if problem is not None:
            if authenticated:
                await require_principal(request)
            raise problem
        return await endpoint(request)

    return checked


class OperationSet:
    """The operations of one module, declared with ``@ops.add(...)`` next to their handlers."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.operations: list[Operation] = []

    def add(
        self,
        method: str,
        path: str,
        *,
        summary_zh: str,
        summary_en: str,
        description: str = "",
        public: bool = False,
        who: str = "anyone",
        body: Schema | None = None,
        body_required: bool = True,
        body_example: Any = None,
        query: Sequence[QueryParam] = (),
        responses: Mapping[int, Reply],
        errors: Mapping[int, Sequence[str]] | None = None,
        error_bodies: Mapping[int, ErrorBody] | None = None,
    ) -> Callable[[Endpoint], Endpoint]:
        def register(endpoint: Endpoint) -> Endpoint:
            self.operations.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    endpoint=endpoint,
                    tag=self.tag,
                    summary_zh=summary_zh,
                    summary_en=summary_en,
                    description=description,
                    public=public,
                    who=who,
                    body=body,
                    body_required=body_required,
                    body_example=body_example,
                    query=tuple(query),
                    responses=dict(responses),
                    errors={k: tuple(v) for k, v in (errors or {}).items()},
                    error_bodies=dict(error_bodies or {}),
                )
            )
            return endpoint

        return register


# --------------------------------------------------------------------------- JSON in and out


def json_response(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _too_large() -> ValidationError:
    return ValidationError(
        f"the request body is larger than {MAX_BODY_BYTES} bytes",
        code="body_too_large",
        max_bytes=MAX_BODY_BYTES,
    )


# Text the server accepts anywhere in a body: valid Unicode (no lone surrogate U+D800-U+DFFF:
# JSON's "\ud800" escape decodes to one, and no store can encode it) and no control character
# (C0, DEL, C1) but TAB, LF and CR. One-line fields (names, titles, labels, ids: text_field)
# refuse TAB, LF and CR too.
_BAD_TEXT: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_BAD_LINE: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(value: str, *, one_line: bool = False) -> str | None:
    """What is wrong with this text (``"lone_surrogate"``, ``"control_character"``), or None."""
    found = (_BAD_LINE if one_line else _BAD_TEXT).search(value)
    if found is None:
        return None
    return "lone_surrogate" if "\ud800" <= found.group() <= "\udfff" else "control_character"


def _invalid_text(where: str, problem: str) -> ValidationError:
    what = ("a lone surrogate (not valid Unicode)" if problem == "lone_surrogate"
            else "a control character")
    return ValidationError(f"文本含有无效字符 / {where} contains {what}",
                           code="invalid_text", field=where, problem=problem)


def _check_text(data: Any) -> None:
    """Every string of a parsed body, keys included, is acceptable text (``_BAD_TEXT``) and
    every integer within ``MAX_JSON_INT`` (``invalid_number``); the walk is iterative, so any
    depth the JSON parser took is fine."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                raise _invalid_text(where, problem)
        elif isinstance(value, int) and not -MAX_JSON_INT <= value <= MAX_JSON_INT:
            raise ValidationError(
                f"数值超出范围 / {where} is outside ±(2^53 - 1), the integers JSON carries "
                "exactly", code="invalid_number", field=where, max=MAX_JSON_INT)
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key, one_line=True)
                if problem is not None:
                    raise _invalid_text(f"{where}.?" if where else "?", problem)
                stack.append((item, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))


async def read_json(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, every string in it acceptable text.

    ``malformed_json`` when it does not parse (NaN and Infinity included), ``invalid_body``
    when it is not an object (or is missing and not ``optional``: then ``{}``),
    ``body_too_large`` above ``MAX_BODY_BYTES``, ``invalid_text`` when a string (or a key)
    anywhere in it has a lone surrogate or a control character other than TAB, LF, CR
    (``details.field`` names where, ``details.problem`` what).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise _too_large()
    if not raw.strip():
        if optional:
            return {}
        raise ValidationError("send a JSON object as the request body", code="invalid_body")
    try:
        data = json.loads(bytes(raw), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValidationError(
            f"the request body is not valid JSON: {exc}", code="malformed_json"
        ) from None
    if not isinstance(data, dict):
        raise ValidationError("the request body must be a JSON object", code="invalid_body")
    _check_text(data)
    return data


def reject_unknown(body: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Refuse fields this route does not know (a typo must not be silently ignored)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValidationError(
            f"unknown field(s): {', '.join(unknown)}", code="unknown_field", fields=unknown
        )


def text_field(
    body: Mapping[str, Any],
    name: str,
    *,
    required: bool,
    max_length: int = 200,
    code: str = "invalid_field",
) -> str | None:
    """A one-line string field, stripped; required ones must not be blank. A control
    character (TAB, LF and CR included) or a lone surrogate is ``invalid_text``."""
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationError(f"{name} is required", code="missing_field", field=name)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string", code=code, field=name)
    problem = text_problem(value, one_line=True)
    if problem is not None:
        raise _invalid_text(name, problem)
    value = value.strip()
    if (required and not value) or len(value) > max_length:
        raise ValidationError(
            f"{name} must be 1 to {max_length} characters" if required
            else f"{name} must be at most {max_length} characters",
            code=code,
            field=name,
        )
    return value


def id_list(
    body: Mapping[str, Any], name: str, *, required: bool, allow_empty: bool = True
) -> list[str]:
    """A list of id strings, duplicates removed (first occurrence kept)."""
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationError(f"{name} is required", code="missing_field", field=name)
        return []
    if (
        not isinstance(value, list)
        or not all(isinstance(item, str) and 0 < len(item) <= 64 for item in value)
        or len(value) > MAX_LIST_ITEMS
    ):
        raise ValidationError(
            f"{name} must be a list of at most {MAX_LIST_ITEMS} ids", code="invalid_field",
            field=name,
        )
    if not value and not allow_empty:
        raise ValidationError(f"{name} must not be empty", code="invalid_field", field=name)
    return list(dict.fromkeys(value))


def optional_int(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be a whole number", code="invalid_field", field=name)
    return value


def refused(refusal: CommandRefused) -> ConflictError:
    """A control command the room refused: 409 with the refusal's reason as the code."""
    return ConflictError(
        reason_message(refusal.reason), code=refusal.reason, command=refusal.command
    )


# --------------------------------------------------------------------------- pages and ids


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int

    @property
    def end(self) -> int:
        return self.offset + self.limit


def _query_int(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        limits = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValidationError(
            f"query parameter {name} must be an integer {limits}", code="invalid_query",
            parameter=name,
        )
    return value


def page_of(request: Request) -> Page:
    """``limit`` (1..500, default 100) and ``offset`` (0..10^9) from the query string."""
    return Page(
        limit=_query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
        offset=_query_int(request, "offset", 0, 0, MAX_QUERY_OFFSET),
    )


def paginate(items: Sequence[T], page: Page) -> tuple[list[T], int | None]:
    """The page's items and the offset of the next page (None on the last page)."""
    chosen = list(items[page.offset : page.end])
    return chosen, (page.end if len(items) > page.end else None)


def new_auction_id() -> str:
    """A fresh auction id: ``auc_`` and 32 hex digits (a random UUID)."""
    return f"auc_{uuid.uuid4().hex}"
