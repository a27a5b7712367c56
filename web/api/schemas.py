"""JSON Schemas (OpenAPI 3.1 = JSON Schema 2020-12) of the HTTP API's bodies.

``COMPONENTS`` becomes the document's ``components.schemas``; operations refer to them with
``common.ref(name)``. Money is integer fen (``Fen``), times integer ms since the epoch, UTC
(``Ms``). Views owned by the core (``RoomView``, ``PersonalView``) list what a client may rely
on and allow more fields; request bodies refuse unknown fields as the server does.
"""

from __future__ import annotations

from typing import Final

from bidroom.auction.rules import ExtensionTrigger, Improvement, Phase, StepKind
from bidroom.money import MAX_FEN
from bidroom.stores.sql import AUCTION_STATUSES
from market.registry import OrgKind, Role, SizeClass
from web.api.common import Schema, ref
from web.api.registry_schemas import REGION_CODE, REGISTRY_COMPONENTS

__all__ = ["COMPONENTS", "nullable"]

STRING: Final[Schema] = {"type": "string"}
BOOL: Final[Schema] = {"type": "boolean"}
INT: Final[Schema] = {"type": "integer"}
OBJECT: Final[Schema] = {"type": "object"}
ID: Final[Schema] = {"type": "string", "minLength": 1, "maxLength": 64}
NAME: Final[Schema] = {"type": "string", "minLength": 1, "maxLength": 200}


def nullable(schema: Schema) -> Schema:
    """The same schema, also allowing null (3.1 style: a type list, or anyOf for a $ref)."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema["type"]
    kinds = [*kind] if isinstance(kind, list) else [kind]
    out = {**schema, "type": [*kinds, "null"]}
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


def obj(
    properties: dict[str, Schema],
    required: list[str] | None = None,
    *,
    closed: bool = False,
    description: str | None = None,
) -> Schema:
    """An object schema; ``closed`` forbids other properties; required defaults to all."""
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def enum_of(values: list[str], description: str | None = None) -> Schema:
    schema: Schema = {"type": "string", "enum": values}
    if description:
        schema["description"] = description
    return schema


FEN: Final[Schema] = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_FEN,
    "description": "money in integer fen (分); never a float",
}
MS: Final[Schema] = {"type": "integer", "description": "milliseconds since the epoch, UTC"}
COUNT: Final[Schema] = {"type": "integer", "minimum": 0}
ROLE: Final[Schema] = enum_of([r.value for r in Role])
ORG_KIND: Final[Schema] = enum_of([k.value for k in OrgKind])
SIZE_CLASS: Final[Schema] = enum_of([s.value for s in SizeClass], "企业划型 (suppliers only)")
PHASE: Final[Schema] = enum_of([p.value for p in Phase])
BID_ID: Final[Schema] = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
    "description": "the client's idempotency key of the bid",
}

# ---------------------------------------------------------------------- settings

_SETTINGS_PROPS: Final[dict[str, Schema]] = {
    "ceiling_fen": {**FEN, "description": "最高限价 ceiling price, fen (<= budget, O87 12)"},
    "start_ms": {**MS, "minimum": 0},
    "end_ms": {**MS, "description": "the original end (anti-sniping may extend it)"},
    "step_kind": enum_of([s.value for s in StepKind], "降价幅度: amount (fen) or percent (bp)"),
    "step_value": {**INT, "description": "fen, or basis points when step_kind is percent"},
    "improvement": enum_of([i.value for i in Improvement]),
    "budget_fen": nullable(FEN),
    "sniping_window_ms": {**COUNT, "description": "延时 trigger window; 0 disables"},
    "sniping_trigger": enum_of([t.value for t in ExtensionTrigger]),
    "extension_ms": COUNT,
    "max_extensions": nullable(COUNT),
    "max_total_extension_ms": nullable(COUNT),
    "min_valid_bidders": {**INT, "minimum": 1, "maximum": 1000,
                          "description": "fewer valid bidders at close -> failed (流标)"},
    "show_lowest_to_suppliers": BOOL,
    "sign_in_ms": {**COUNT, "description": "> 0: sign-in (签到) opens this long before start"},
}

SETTINGS_INPUT: Final[Schema] = obj(
    _SETTINGS_PROPS,
    ["ceiling_fen", "start_ms", "end_ms"],
    closed=True,
    description="the auction's rules; the server assigns auction_id",
)
SETTINGS: Final[Schema] = obj({"auction_id": ID, **_SETTINGS_PROPS})

PROBLEM: Final[Schema] = obj({"code": STRING, "field": STRING, "message": STRING})

ERROR: Final[Schema] = obj(
    {
        "error": obj(
            {
                "code": {**STRING, "description": "stable machine-readable code"},
                "message": {**STRING, "description": "for people (中文 / English)"},
                "details": OBJECT,
            },
            ["code", "message"],
        )
    },
    description="every 4xx/5xx answer",
)

# ---------------------------------------------------------------------- system

RECEIPT: Final[Schema] = obj(
    {
        "v": {"const": 1},
        "kind": {"const": "bid_receipt"},
        "auction_id": ID,
        "supplier_id": ID,
        "bid_id": BID_ID,
        "price_fen": FEN,
        "seq": COUNT,
        "server_time_ms": MS,
        "key_id": STRING,
        "signature": {**STRING, "description": "Ed25519, base64url without padding"},
    },
    closed=True,
    description="a bid receipt signed with the platform key (see bidroom/receipts.py)",
)

SIGNED_DOCUMENT: Final[Schema] = obj(
    {"key_id": STRING, "signature": STRING},
    description="a platform-signed document (a bid receipt), exactly as received",
)

# ---------------------------------------------------------------------- registry

ORG_INPUT: Final[Schema] = obj(
    {
        "kind": ORG_KIND,
        "name": NAME,
        "name_en": {**STRING, "maxLength": 200},
        "size_class": nullable(SIZE_CLASS),
        "credit_code": nullable({**STRING, "description": "统一社会信用代码, 18 characters "
                                 "with its GB 32100 check character"}),
        "region_code": nullable(REGION_CODE),
        "level": nullable({"type": "string", "enum": ["province", "city", "county"],
                           "description": "purchasing units only; defaults to the region's"}),
        "budget_unit_code": nullable({**STRING, "description": "预算单位编码 (purchasers)"}),
        "persons": {"type": "array", "items": ref("PersonInput"), "maxItems": 50},
    },
    ["kind", "name"],
    closed=True,
)
ORG_SUMMARY: Final[Schema] = obj(
    {
        "id": ID,
        "name": STRING,
        "name_en": STRING,
        "kind": ORG_KIND,
        "size_class": nullable(SIZE_CLASS),
    }
)
ORG: Final[Schema] = obj(
    {
        **ORG_SUMMARY["properties"],
        "credit_code": nullable(STRING),
        "created_at_ms": MS,
        "region_code": nullable(STRING),
        "level": nullable(STRING),
        "budget_unit_code": nullable(STRING),
    }
)
ORG_DETAIL: Final[Schema] = obj(
    {**ORG["properties"], "persons": {"type": "array", "items": ref("Person")}}
)
USER_INPUT: Final[Schema] = obj(
    {
        "org_id": ID,
        "name": NAME,
        "roles": {"type": "array", "items": ROLE, "minItems": 1},
    },
    closed=True,
)
USER: Final[Schema] = obj(
    {
        "id": ID,
        "org_id": ID,
        "name": STRING,
        "roles": {"type": "array", "items": ROLE},
        "created_at_ms": MS,
        "disabled": BOOL,
    }
)
TOKEN_INPUT: Final[Schema] = obj(
    {"label": {**STRING, "maxLength": 200}, "expires_at_ms": nullable(MS)}, [], closed=True
)
ISSUED_TOKEN: Final[Schema] = obj(
    {
        "token": {**STRING, "description": "the plaintext brt_… token, shown only this once"},
        "token_id": ID,
        "user_id": ID,
        "label": STRING,
        "created_at_ms": MS,
        "expires_at_ms": nullable(MS),
    }
)
PRINCIPAL: Final[Schema] = obj(
    {
        "user_id": ID,
        "user_name": STRING,
        "org_id": ID,
        "org_name": STRING,
        "org_kind": ORG_KIND,
        "roles": {"type": "array", "items": ROLE},
    }
)

# ---------------------------------------------------------------------- auctions

ORG_REF: Final[Schema] = obj({"id": ID, "name": STRING, "name_en": STRING})

AUCTION_INPUT: Final[Schema] = obj(
    {
        "title": NAME,
        "title_en": {**STRING, "maxLength": 200},
        "purchaser_org_id": {**ID, "description": "required when an agency creates it"},
        "invited_supplier_ids": {"type": "array", "items": ID, "maxItems": 1000},
        "settings": ref("AuctionSettingsInput"),
    },
    ["title", "settings"],
    closed=True,
)

_AUCTION_PROPS: Final[dict[str, Schema]] = {
    "id": ID,
    "title": STRING,
    "title_en": STRING,
    "purchaser": ORG_REF,
    "agency": nullable(ORG_REF),
    "created_by_user_id": ID,
    "created_at_ms": MS,
    "status": enum_of(list(AUCTION_STATUSES),
                      "scheduled before the start, open from the start until the close is "
                      "recorded, then closed or failed (the room's phase says more)"),
    "start_ms": MS,
    "end_ms": {**MS, "description": "the original end"},
    "closed_at_ms": nullable(MS),
    "settings": ref("AuctionSettings"),
    "invited_supplier_ids": {
        "type": "array",
        "items": ID,
        "description": "to the purchaser, agency, supervisors and admins only",
    },
}
_AUCTION_REQUIRED: Final = [k for k in _AUCTION_PROPS if k != "invited_supplier_ids"]

AUCTION_SUMMARY: Final[Schema] = obj(
    {
        **_AUCTION_PROPS,
        "phase": nullable(PHASE),
        "current_end_ms": nullable({**MS, "description": "the end after extensions/pauses"}),
    },
    [*_AUCTION_REQUIRED, "phase", "current_end_ms"],
)

ROOM_VIEW: Final[Schema] = obj(
    {
        "auction_id": ID,
        "seq": COUNT,
        "phase": PHASE,
        "server_time_ms": MS,
        "start_ms": MS,
        "end_ms": MS,
        "original_end_ms": MS,
        "extensions": COUNT,
        "extended_ms": COUNT,
        "paused": nullable(obj({"at_ms": MS, "reason": STRING})),
        "closed_at_ms": nullable(MS),
        "rules": OBJECT,
        "lowest_fen": nullable(FEN),
        "bidders": COUNT,
        "invited": COUNT,
        "signed_in": COUNT,
        "result": nullable(OBJECT),
        "ladder": {
            "type": "array",
            "items": obj({"rank": INT, "alias": INT, "price_fen": FEN, "seq": INT,
                          "bids": INT}),
            "description": "watchers only: anonymous (供应商N) ladder",
        },
        "bids": {
            "type": "array",
            "items": obj({"seq": INT, "alias": INT, "price_fen": FEN, "at_ms": MS}),
            "description": "watchers only: every accepted bid, anonymous",
        },
    },
    [
        "auction_id", "seq", "phase", "server_time_ms", "start_ms", "end_ms",
        "original_end_ms", "extensions", "extended_ms", "paused", "closed_at_ms", "rules",
        "lowest_fen", "bidders", "invited", "signed_in", "result",
    ],
    description="the live room as the caller's audience sees it (背靠背: no identities)",
)

PERSONAL_VIEW: Final[Schema] = obj(
    {
        "auction_id": ID,
        "seq": COUNT,
        "invited": BOOL,
        "signed_in": BOOL,
        "alias": nullable(INT),
        "rank": nullable(INT),
        "best_fen": nullable(FEN),
        "bids": COUNT,
        "max_allowed_fen": {**INT, "description": "the highest price allowed now (< 1: none)"},
        "own_bids": {
            "type": "array",
            "items": obj({"seq": INT, "bid_id": BID_ID, "price_fen": FEN, "at_ms": MS}),
        },
    },
    description="a supplier's own position",
)

AUCTION_DETAIL: Final[Schema] = obj(
    {**_AUCTION_PROPS, "room": ref("RoomView"), "you": ref("PersonalView")},
    [*_AUCTION_REQUIRED, "room"],
    description="the auction with its live room ('you' for suppliers only)",
)

AUCTION_LIST: Final[Schema] = obj(
    {"items": {"type": "array", "items": ref("AuctionSummary")}, "next_offset": nullable(INT)}
)

INVITE_INPUT: Final[Schema] = obj(
    {"supplier_ids": {"type": "array", "items": ID, "minItems": 1, "maxItems": 1000}},
    closed=True,
)
INVITED: Final[Schema] = obj(
    {"auction_id": ID, "added": {"type": "array", "items": ID}, "seq": COUNT, "at_ms": MS}
)
PAUSE_INPUT: Final[Schema] = obj(
    {"reason": {**STRING, "minLength": 1, "maxLength": 500, "description": "暂停原因"}},
    closed=True,
)
RESUME_INPUT: Final[Schema] = obj(
    {"reason": {**STRING, "maxLength": 500, "description": "a note for the audit log"}},
    [],
    closed=True,
)
PAUSED: Final[Schema] = obj({"auction_id": ID, "seq": COUNT, "at_ms": MS, "reason": STRING})
RESUMED: Final[Schema] = obj(
    {"auction_id": ID, "seq": COUNT, "at_ms": MS, "end_ms": MS, "paused_ms": COUNT}
)
SIGNED_IN: Final[Schema] = obj({"auction_id": ID, "supplier_id": ID, "seq": COUNT, "at_ms": MS})

BID_INPUT: Final[Schema] = obj(
    {
        "bid_id": BID_ID,
        "price_fen": FEN,
        "supplier_id": {**ID, "description": "optional; must be the caller's organisation"},
    },
    ["bid_id", "price_fen"],
    closed=True,
)
BID_OUTCOME: Final[Schema] = obj(
    {
        "status": enum_of(["accepted", "duplicate"]),
        "auction_id": ID,
        "bid_id": BID_ID,
        "price_fen": FEN,
        "receipt": ref("Receipt"),
        "extended": obj({"end_ms": MS, "extensions": COUNT},
                        description="present when this bid extended the auction (延时)"),
    },
    ["status", "auction_id", "bid_id", "price_fen", "receipt"],
)
BID_REJECTED: Final[Schema] = obj(
    {
        "error": obj(
            {
                "code": {**STRING, "description": "the rejection reason"},
                "message": STRING,
                "details": obj(
                    {
                        "max_allowed_fen": nullable(INT),
                        "bid_id": STRING,
                        "price_fen": INT,
                    },
                    ["max_allowed_fen"],
                ),
            }
        )
    }
)

_RANKED: Final[Schema] = obj(
    {
        "rank": INT,
        "supplier_id": ID,
        "supplier_name": STRING,
        "supplier_name_en": STRING,
        "alias": INT,
        "price_fen": FEN,
        "seq": INT,
        "bids": INT,
    }
)
RESULT: Final[Schema] = obj(
    {
        "auction_id": ID,
        "failed": BOOL,
        "failure_reason": nullable(STRING),
        "valid_bidders": COUNT,
        "ceiling_fen": FEN,
        "winner_id": nullable(ID),
        "winner_name": STRING,
        "winner_name_en": STRING,
        "winning_fen": nullable(FEN),
        "savings_fen": nullable(INT),
        "savings_bp": nullable(INT),
        "ranking": {"type": "array", "items": _RANKED},
        "closed_at_ms": MS,
        "final_end_ms": MS,
        "extensions": COUNT,
        "sha256": {**STRING, "description": "SHA-256 of the canonical JSON of the result"},
        "persisted_at_ms": MS,
        "bids": {
            "type": "array",
            "items": obj(
                {
                    "seq": INT,
                    "supplier_id": ID,
                    "supplier_name": STRING,
                    "supplier_name_en": STRING,
                    "alias": INT,
                    "bid_id": BID_ID,
                    "price_fen": FEN,
                    "at_ms": MS,
                }
            ),
            "description": "the full bid log, identities revealed",
        },
    },
    [
        "auction_id", "failed", "failure_reason", "valid_bidders", "ceiling_fen", "winner_id",
        "winning_fen", "savings_fen", "savings_bp", "ranking", "closed_at_ms", "final_end_ms",
        "extensions", "sha256", "persisted_at_ms", "bids",
    ],
)

AUDIT_LIST: Final[Schema] = obj(
    {
        "items": {
            "type": "array",
            "items": obj(
                {
                    "id": INT,
                    "at_ms": MS,
                    "actor_user_id": nullable(ID),
                    "action": STRING,
                    "details": OBJECT,
                }
            ),
        },
        "next_offset": nullable(INT),
    }
)

COMPONENTS: Final[dict[str, Schema]] = {
    "Error": ERROR,
    "Problem": PROBLEM,
    "Receipt": RECEIPT,
    "SignedDocument": SIGNED_DOCUMENT,
    "Principal": PRINCIPAL,
    "OrganisationInput": ORG_INPUT,
    "Organisation": ORG,
    "OrganisationSummary": ORG_SUMMARY,
    "OrganisationDetail": ORG_DETAIL,
    "UserInput": USER_INPUT,
    "User": USER,
    "TokenInput": TOKEN_INPUT,
    "IssuedToken": ISSUED_TOKEN,
    "AuctionSettingsInput": SETTINGS_INPUT,
    "AuctionSettings": SETTINGS,
    "AuctionInput": AUCTION_INPUT,
    "AuctionSummary": AUCTION_SUMMARY,
    "AuctionDetail": AUCTION_DETAIL,
    "AuctionList": AUCTION_LIST,
    "RoomView": ROOM_VIEW,
    "PersonalView": PERSONAL_VIEW,
    "InviteInput": INVITE_INPUT,
    "Invited": INVITED,
    "PauseInput": PAUSE_INPUT,
    "ResumeInput": RESUME_INPUT,
    "Paused": PAUSED,
    "Resumed": RESUMED,
    "SignedIn": SIGNED_IN,
    "BidInput": BID_INPUT,
    "BidOutcome": BID_OUTCOME,
    "BidRejected": BID_REJECTED,
    "Result": RESULT,
    "AuditList": AUDIT_LIST,
    **REGISTRY_COMPONENTS,
}
