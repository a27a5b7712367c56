"""Pure rules of the registries (五库): identity codes, the region tree, who sees which region,
and the related-supplier test of Reg 18. No I/O, no clock: everything comes in as arguments.

- ``check_credit_code``: the 统一社会信用代码 of GB 32100-2015 — 18 characters from the
  alphabet ``0-9 A-H J-N P-R T U W-Y`` (no I, O, S, V, Z); characters 3–8 are the registering
  authority's 行政区划 code; the 18th is a check character, ISO 7064 MOD 31-3 over the first
  17 with weights 3^i mod 31 (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28).
- ``normalise_id_number`` / ``person_id_hash``: a resident ID number (居民身份证号码, GB 11643-1999,
  ISO 7064 MOD 11-2 check character) is checked, normalised and reduced to a SHA-256 hash; the
  platform stores the hash only, so later rules compare persons across suppliers (Reg 18,
  EXP 16) without keeping ID numbers in clear.
- The region tree (行政区划代码, GB/T 2260): six digits, province ``XX0000``, city ``XXXX00``,
  county ``XXXXXX``; the parent is derived from the code (``region_parent``).
- Scoping: a supervisor or administrator of a region sees that region and everything below it,
  nothing else (issue #11 item 1); ``region_contains`` and ``may_see`` are that rule.
- ``reg18_relation``: suppliers whose person in charge is the same person, or where one directly
  controls or manages the other, may not bid in the same lot (政府采购法实施条例 第十八条).

Must not import: web.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from market.codelist import ListProblem, parse_code_list

__all__ = [
    "CREDIT_ALPHABET",
    "CREDIT_WEIGHTS",
    "CreditCodeProblem",
    "IdNumberProblem",
    "PersonFact",
    "PersonRole",
    "Reg18Relation",
    "RegionEntry",
    "RegionLevel",
    "RegionScope",
    "RegionsProblem",
    "check_credit_code",
    "credit_check_character",
    "id_check_character",
    "may_see",
    "normalise_id_number",
    "parse_regions_csv",
    "person_id_hash",
    "reg18_relation",
    "region_ancestors",
    "region_bounds",
    "region_contains",
    "region_level",
    "region_parent",
    "viewer_scope",
]

# --------------------------------------------------------------------------- 统一社会信用代码

CREDIT_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters, GB 32100 table 2
CREDIT_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_SHAPE: Final = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")


def credit_check_character(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a credit code:
    ``C18 = 31 − (Σ Ci × Wi mod 31)``, with 31 written as ``0`` (ISO 7064 MOD 31-3)."""
    if len(first17) != 17:
        raise ValueError("a credit code's body is 17 characters")
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


@dataclass(frozen=True, slots=True)
class CreditCodeProblem:
    """Why a credit code is refused: ``shape`` (length, alphabet, region digits) or ``check``
    (the 18th character is not the check character; ``expected`` names the right one)."""

    reason: str
    expected: str | None = None


def check_credit_code(code: str) -> CreditCodeProblem | None:
    """None when ``code`` (already upper-cased and stripped) is a well-formed credit code."""
    if not _CREDIT_SHAPE.fullmatch(code):
        return CreditCodeProblem("shape")
    expected = credit_check_character(code[:17])
    if code[17] != expected:
        return CreditCodeProblem("check", expected)
    return None


# --------------------------------------------------------------------------- 身份证号码

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"  # indexed by Σ mod 11 (GB 11643)
_ID_SHAPE: Final = re.compile(r"[0-9]{17}[0-9X]")
_OTHER_ID: Final = re.compile(r"[0-9A-Z()\-]{5,32}")


def id_check_character(first17: str) -> str:
    """The GB 11643 check character of a resident ID number's first 17 digits."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


@dataclass(frozen=True, slots=True)
class IdNumberProblem:
    reason: str  # "shape" or "check"
    expected: str | None = None


def normalise_id_number(raw: str, *, resident: bool = True) -> str | IdNumberProblem:
    """The normalised form of an identity document number (spaces removed, upper case), or the
    problem. A resident ID number (``resident``) must be 18 characters with its check
    character; other documents (passport, 港澳台 permits) are 5–32 of ``0-9 A-Z ( ) -``."""
    value = "".join(raw.split()).upper()
    if resident:
        if not _ID_SHAPE.fullmatch(value):
            return IdNumberProblem("shape")
        expected = id_check_character(value[:17])
        if value[17] != expected:
            return IdNumberProblem("check", expected)
        return value
    if not _OTHER_ID.fullmatch(value):
        return IdNumberProblem("shape")
    return value


def person_id_hash(normalised: str, *, resident: bool = True) -> str:
    """The stored form of a person's ID number: SHA-256 hex of ``bidroom/person/v1:`` + the
    document type + the normalised number. Equal persons give equal hashes across suppliers."""
    kind = "resident" if resident else "other"
    return hashlib.sha256(f"bidroom/person/v1:{kind}:{normalised}".encode()).hexdigest()


# --------------------------------------------------------------------------- the region tree


class RegionLevel(StrEnum):
    PROVINCE = "province"  # 省级: XX0000
    CITY = "city"  # 市级: XXXX00
    COUNTY = "county"  # 县级: XXXXXX


_REGION_SHAPE: Final = re.compile(r"[1-9][0-9]{5}")


def region_level(code: str) -> RegionLevel | None:
    """The level of a six-digit 行政区划 code, or None when the code is malformed (not six
    digits, a leading zero, or a county part under a ``00`` city part)."""
    if not isinstance(code, str) or not _REGION_SHAPE.fullmatch(code):
        return None
    if code[2:] == "0000":
        return RegionLevel.PROVINCE
    if code[4:] == "00":
        return RegionLevel.CITY
    if code[2:4] == "00":
        return None
    return RegionLevel.COUNTY


def region_parent(code: str) -> str | None:
    """The parent region derived from the code: county → ``XXXX00``, city → ``XX0000``,
    province → None (also None for a malformed code)."""
    level = region_level(code)
    if level is RegionLevel.COUNTY:
        return code[:4] + "00"
    if level is RegionLevel.CITY:
        return code[:2] + "0000"
    return None


def region_ancestors(code: str) -> tuple[str, ...]:
    """The region's ancestors, the province first (empty for a province or malformed code)."""
    chain: list[str] = []
    parent = region_parent(code)
    while parent is not None:
        chain.append(parent)
        parent = region_parent(parent)
    return tuple(reversed(chain))


def region_contains(scope: str, region: str) -> bool:
    """Whether ``region`` is ``scope`` or lies below it in the tree (a province holds its
    cities and counties, a city its counties, a county itself). Malformed codes: False."""
    level = region_level(scope)
    if level is None or region_level(region) is None:
        return False
    if level is RegionLevel.PROVINCE:
        return region[:2] == scope[:2]
    if level is RegionLevel.CITY:
        return region[:4] == scope[:4]
    return region == scope


def may_see(scope: str | None, region: str | None, *, platform_wide: bool) -> bool:
    """The scoping rule of issue #11: a supervisor or administrator whose organisation belongs
    to region ``scope`` sees the records of that region and everything below it, nothing else.
    ``platform_wide`` (the platform operator's administrator, whose organisation has no
    region) sees everything. A caller without a region, or a record without one, is out of
    every regional scope: denied unless ``platform_wide``."""
    if platform_wide:
        return True
    if scope is None or region is None:
        return False
    return region_contains(scope, region)


@dataclass(frozen=True, slots=True)
class RegionEntry:
    code: str
    name: str
    name_en: str | None = None  # None: no name_en column (keep what is stored)


@dataclass(frozen=True, slots=True)
class RegionsProblem:
    line: int
    reason: str


_MAX_REGION_NAME: Final = 100


def parse_regions_csv(text: str) -> list[RegionEntry] | RegionsProblem:
    """The regions of an import file, or its first problem. Same format as the catalogue's
    (docs/registry.md): UTF-8 CSV, ``#`` comment lines before the header, columns ``code``,
    ``name`` and optionally ``name_en`` (without it, known English names are kept); each code
    six digits and well formed."""
    rows = parse_code_list(text, valid=lambda code: region_level(code) is not None,
                           example="a six-digit 行政区划 code", max_name=_MAX_REGION_NAME,
                           entries="regions")
    if isinstance(rows, ListProblem):
        return RegionsProblem(rows.line, rows.reason)
    return [RegionEntry(r.code, r.name, r.name_en) for r in rows]


def region_bounds(scope: str) -> tuple[str, str]:
    """The lowest and highest codes inside ``scope`` (``440000``–``449999`` for a province,
    ``440100``–``440199`` for a city, the code itself for a county): for well-formed codes,
    ``region_contains(scope, r)`` holds exactly when ``low <= r <= high`` — the form a SQL
    filter uses, a range on the indexed column (codes are six digits, so string order is
    numeric order under any collation)."""
    level = region_level(scope)
    keep = 2 if level is RegionLevel.PROVINCE else 4 if level is RegionLevel.CITY else 6
    return scope[:keep] + "0" * (6 - keep), scope[:keep] + "9" * (6 - keep)


@dataclass(frozen=True, slots=True)
class RegionScope:
    """What a regional viewer sees: everything (``platform_wide``) or the subtree of
    ``region`` (None: nothing at all)."""

    platform_wide: bool
    region: str | None

    def sees(self, region: str | None) -> bool:
        return may_see(self.region, region, platform_wide=self.platform_wide)


def viewer_scope(
    *, admin: bool, supervisor: bool, platform_org: bool, org_region: str | None
) -> RegionScope | None:
    """The region scope of a caller over the registries, or None for a caller who is not a
    regional viewer (purchasers, agencies, suppliers: they see their own organisation, and
    purchasers and agencies the province-wide supplier summaries). An administrator of the
    platform operator without a region is platform-wide; any other administrator or a
    supervisor (监督部门) sees its organisation's region and below (none if it has no region)."""
    if admin and platform_org and org_region is None:
        return RegionScope(True, None)
    if admin or supervisor:
        return RegionScope(False, org_region)
    return None


# --------------------------------------------------------------------------- persons, Reg 18


class PersonRole(StrEnum):
    """The persons a supplier registers (the facts Reg 18 and EXP 16 read)."""

    LEGAL_REPRESENTATIVE = "legal_representative"  # 法定代表人
    PERSON_IN_CHARGE = "person_in_charge"  # 单位负责人 (if other than the legal representative)
    CONTROLLING_PERSON = "controlling_person"  # 控股股东 / 实际控制人 (a natural person)
    MANAGER = "manager"  # 董事、高级管理人员 (directorship or management, EXP 16)


_IN_CHARGE: Final = frozenset({PersonRole.LEGAL_REPRESENTATIVE, PersonRole.PERSON_IN_CHARGE})
_CONTROL: Final = frozenset({PersonRole.CONTROLLING_PERSON})


@dataclass(frozen=True, slots=True)
class PersonFact:
    role: PersonRole
    id_hash: str


@dataclass(frozen=True, slots=True)
class Reg18Relation:
    """Why two suppliers are related under Reg 18: ``same_person_in_charge`` or
    ``control_tie`` (one's person in charge controls the other, or both share a controller)."""

    reason: str
    id_hash: str


def reg18_relation(a: Iterable[PersonFact], b: Iterable[PersonFact]) -> Reg18Relation | None:
    """政府采购法实施条例 第十八条: suppliers whose 单位负责人 is the same person, or between whom
    there is a direct controlling or management relation, may not take part in the same lot.
    Compares the registered persons' ID hashes; None when no tie is found."""
    first, second = list(a), list(b)

    def hashes(facts: list[PersonFact], roles: frozenset[PersonRole]) -> set[str]:
        return {f.id_hash for f in facts if f.role in roles}

    same = hashes(first, _IN_CHARGE) & hashes(second, _IN_CHARGE)
    if same:
        return Reg18Relation("same_person_in_charge", min(same))
    ties = (
        (hashes(first, _IN_CHARGE | _CONTROL) & hashes(second, _CONTROL))
        | (hashes(first, _CONTROL) & hashes(second, _IN_CHARGE | _CONTROL))
    )
    if ties:
        return Reg18Relation("control_tie", min(ties))
    return None
