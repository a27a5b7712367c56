"""JSON Schemas of the registries' routes (issue #11 item 1): persons, regions, categories.

Merged into ``web.api.schemas.COMPONENTS``; kept apart so the registry's schemas change in one
place. Must not import ``web.api.schemas`` (which imports this module).
"""

from __future__ import annotations

from typing import Final

from market.catalog import CategoryKind
from market.registry.rules import PersonRole, RegionLevel
from web.api.common import Schema, ref

__all__ = ["REGION_CODE", "REGISTRY_COMPONENTS"]

_STRING: Final[Schema] = {"type": "string"}
_NAME: Final[Schema] = {"type": "string", "minLength": 1, "maxLength": 200}

REGION_CODE: Final[Schema] = {
    "type": "string", "pattern": "^[1-9][0-9]{5}$",
    "description": "行政区划代码: province XX0000, city XXXX00, county XXXXXX",
}
REGION_LEVEL: Final[Schema] = {"type": "string", "enum": [str(v) for v in RegionLevel]}
PERSON_ROLE: Final[Schema] = {"type": "string", "enum": [str(v) for v in PersonRole]}
CATEGORY_CODE: Final[Schema] = {
    "type": "string", "pattern": "^[ABC]([0-9]{2}){0,6}$",
    "description": "品目编码: A goods / B works / C services, then two digits per level",
}


def _obj(properties: dict[str, Schema], required: list[str] | None = None, *,
         closed: bool = False) -> Schema:
    schema: Schema = {"type": "object", "properties": properties,
                      "required": list(properties) if required is None else required}
    if closed:
        schema["additionalProperties"] = False
    return schema


PERSON_INPUT: Final[Schema] = _obj(
    {
        "role": PERSON_ROLE,
        "name": _NAME,
        "id_number": {**_STRING, "minLength": 5, "maxLength": 40,
                      "description": "ID number: hashed at once, never stored or returned"},
        "id_type": {"type": "string", "enum": ["resident", "other"], "default": "resident",
                    "description": "resident: 居民身份证 (check character verified); other: "
                                   "passport or 港澳台 permit"},
    },
    ["role", "name", "id_number"],
    closed=True,
)
PERSON: Final[Schema] = _obj({"role": PERSON_ROLE, "name": _STRING})
REGION: Final[Schema] = _obj(
    {
        "code": REGION_CODE,
        "name": _STRING,
        "name_en": _STRING,
        "level": REGION_LEVEL,
        "parent_code": {"type": ["string", "null"]},
    }
)
REGION_INPUT: Final[Schema] = _obj(
    {"code": REGION_CODE, "name": {**_STRING, "minLength": 1, "maxLength": 100},
     "name_en": {**_STRING, "maxLength": 100}},
    ["code", "name"],
    closed=True,
)
REGION_DETAIL: Final[Schema] = _obj(
    {
        **REGION["properties"],
        "ancestors": {"type": "array", "items": ref("Region")},
        "children": {"type": "array", "items": ref("Region")},
    }
)
CATEGORY: Final[Schema] = _obj(
    {
        "code": CATEGORY_CODE,
        "name": _STRING,
        "name_en": _STRING,
        "kind": {"type": "string", "enum": [str(v) for v in CategoryKind]},
        "parent_code": {"type": ["string", "null"]},
    }
)
CATEGORY_DETAIL: Final[Schema] = _obj(
    {
        **CATEGORY["properties"],
        "ancestors": {"type": "array", "items": ref("Category")},
        "children": {"type": "array", "items": ref("Category")},
    }
)

REGISTRY_COMPONENTS: Final[dict[str, Schema]] = {
    "PersonInput": PERSON_INPUT,
    "Person": PERSON,
    "Region": REGION,
    "RegionInput": REGION_INPUT,
    "RegionDetail": REGION_DETAIL,
    "Category": CATEGORY,
    "CategoryDetail": CATEGORY_DETAIL,
}
