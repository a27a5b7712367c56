"""The public portal's search, as pure rules: what a query may ask, how its keyword is cut into
search terms, which order the results come in and where a page ends.

A query (``parse_query``) filters announcements by

- ``region``: a six-digit 行政区划 code; a province shows its cities and counties, a city its
  counties (``market.registry.rules.region_bounds``: a range on the indexed column);
- ``method``: a procurement method (GPL 26);
- ``category``: a prefix of a 品目 code (``A`` goods, ``A02`` …, ``A02010104``);
- ``kind``: procurement, correction, failure or termination (the announcements the law requires);
- ``from`` / ``to``: Beijing days, both included;
- ``q``: a keyword in Chinese (or any language), up to ``MAX_TERMS`` terms separated by spaces,
  every term must appear in the title or the body. A term of 3 or more characters is looked up
  in the full-text index (SQLite FTS5 ``trigram``; PostgreSQL ``pg_trgm``); a term of 1 or 2
  characters cannot be cut into trigrams and is matched with ``LIKE`` (correct, but a scan of
  the rows the other filters leave: see docs/procurement.md "The portal"). A term that looks
  like an identifier (``is_identifier``: 6 to 50 ASCII letters and digits, at least one digit,
  such as the project number ``GD20260012345``) is first looked up, case-insensitively, in the
  announcements' indexed ``reference`` column (``reference_key``); when some announcement
  carries it, the term matches exactly those (a project number is looked up, not searched),
  otherwise it is searched in the text like any other term.

Which index leads (``Plan``, chosen by ``plan_search``): the newest-first order index, walked
until a page is full with every filter checked on the way, unless the rows that can match are
few — a known reference (``Plan.references``), a keyword whose index lookup finds at most
``FEW_MATCHES`` announcements (counted first, cheaply), or a county's region — then those
rows are fetched and sorted. Walking the order is what keeps a common keyword or a province
fast over a million announcements; fetching is what keeps a rare one from scanning them all.

Results come newest first: ``published_at_ms`` descending, then ``id`` descending, a total
order, so a page boundary (the ``cursor``: the last row's ``published_at_ms.id``) is stable
while new announcements arrive. The rules return a ``QueryProblem`` (a code, the field and a
bilingual message) instead of raising: refusals are values here.

Must not import: web.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from market.calendar.rules import BEIJING
from market.projects.rules import Method
from market.registry.rules import region_bounds, region_level

__all__ = [
    "DEFAULT_LIMIT",
    "FEW_MATCHES",
    "KINDS",
    "MAX_LIMIT",
    "MAX_TERMS",
    "MAX_TERM_CHARS",
    "MIN_IDENTIFIER",
    "TRIGRAM",
    "Cursor",
    "Plan",
    "PortalQuery",
    "QueryProblem",
    "Term",
    "day_bounds_ms",
    "encode_cursor",
    "excerpt",
    "fts5_phrase",
    "identifier_keys",
    "is_identifier",
    "like_pattern",
    "parse_query",
    "plan_search",
    "reference_key",
    "split_terms",
]

#: The announcements ``market.projects`` writes (GPL 11; O87 16, 27, 69).
KINDS: Final = ("procurement", "correction", "failure", "termination")
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 100
MAX_TERMS: Final = 5
MAX_TERM_CHARS: Final = 50
#: At most this many keyword matches: fetch them and sort, rather than walk the order index.
FEW_MATCHES: Final = 2_000
#: The shortest term the trigram indexes can look up.
TRIGRAM: Final = 3
PARAMETERS: Final = ("region", "method", "category", "kind", "from", "to", "q", "limit",
                     "cursor")

_CATEGORY: Final = re.compile(r"[ABC][0-9]{0,10}")
_CURSOR: Final = re.compile(r"([0-9]{1,15})\.([0-9]{1,18})")
_DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: The shortest identifier: shorter ASCII runs with a digit (``A02``, ``2026``) are words.
MIN_IDENTIFIER: Final = 6
_IDENTIFIER: Final = re.compile(rf"[A-Za-z0-9]{{{MIN_IDENTIFIER},{MAX_TERM_CHARS}}}")


def is_identifier(text: str) -> bool:
    """Whether a search term looks like an identifier (a project number ``GD20260012345``, a
    project id): ``MIN_IDENTIFIER`` to ``MAX_TERM_CHARS`` ASCII letters and digits, at least one
    of them a digit. ``计算机``, ``Lenovo``, ``A02`` and ``GD-2026-1`` are not."""
    return (_IDENTIFIER.fullmatch(text) is not None
            and any(c.isdigit() for c in text))


def reference_key(text: str) -> str:
    """How a reference is stored and compared (``announcements.reference``): upper case, so the
    lookup is case-insensitive and the column's index serves it on both databases."""
    return text.upper()


@dataclass(frozen=True, slots=True)
class QueryProblem:
    """Why a query is refused (HTTP 422): ``code`` is stable, ``field`` names the parameter."""

    code: str
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Term:
    """One search term; ``indexed`` when it is long enough for the trigram index."""

    text: str

    @property
    def indexed(self) -> bool:
        return len(self.text) >= TRIGRAM

    @property
    def identifier(self) -> bool:
        """Looked up in ``announcements.reference`` first (``is_identifier``)."""
        return is_identifier(self.text)


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """Where a page ended: the last result's publication time and id (results are ordered by
    ``(published_at_ms, id)`` descending, so the next page holds what sorts below it)."""

    published_at_ms: int
    id: int


@dataclass(frozen=True, slots=True)
class PortalQuery:
    region_low: str | None = None  # region_bounds of the region asked for
    region_high: str | None = None
    county: bool = False  # the region is a county (a narrow range)
    method: str | None = None
    category: str = ""
    kind: str | None = None
    since_ms: int | None = None  # included
    until_ms: int | None = None  # excluded
    terms: tuple[Term, ...] = ()
    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None


def day_bounds_ms(day: date) -> tuple[int, int]:
    """The first ms of a Beijing day and the first ms of the next one (UTC ms)."""
    start = datetime.combine(day, time(0, 0), tzinfo=BEIJING)
    return int(start.timestamp() * 1000), int((start + timedelta(days=1)).timestamp() * 1000)


def encode_cursor(c: Cursor) -> str:
    return f"{c.published_at_ms}.{c.id}"


def split_terms(raw: str) -> tuple[Term, ...]:
    """The keyword's terms: NFKC-normalised (full-width letters and digits become ASCII, the
    ideographic space a space), split on white space, duplicates dropped, order kept."""
    seen: list[str] = []
    for word in unicodedata.normalize("NFKC", raw).split():
        if word not in seen:
            seen.append(word)
    return tuple(Term(w) for w in seen)


def fts5_phrase(term: Term) -> str:
    """A term as an FTS5 phrase string (double quotes doubled): matched as a substring by the
    trigram tokenizer, whatever characters it holds."""
    return '"' + term.text.replace('"', '""') + '"'


def like_pattern(term: Term) -> str:
    """``%term%`` with ``\\``, ``%`` and ``_`` escaped (``ESCAPE '\\'``)."""
    escaped = term.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _day(raw: str, field: str) -> date | QueryProblem:
    try:
        if not _DAY.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        return QueryProblem("invalid_day", field, f"{field}: 日期格式 YYYY-MM-DD / a day is "
                                                  "YYYY-MM-DD")


def parse_query(params: Mapping[str, str]) -> PortalQuery | QueryProblem:
    """A portal query from its URL parameters (empty values count as absent), or the first
    problem found."""
    def get(name: str) -> str:
        return params.get(name, "").strip()

    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        return QueryProblem("unknown_parameter", unknown[0],
                            f"未知参数 {unknown[0]} / unknown parameter {unknown[0]}")
    low = high = None
    county = False
    if region := get("region"):
        level = region_level(region)
        if level is None:
            return QueryProblem("invalid_region", "region",
                                "行政区划代码为6位数字 / a region code is six digits (440000)")
        low, high = region_bounds(region)
        county = low == high
    method = get("method") or None
    if method is not None and method not in {m.value for m in Method}:
        return QueryProblem("invalid_method", "method",
                            "采购方式无效 / unknown procurement method")
    category = get("category").upper()
    if category and not _CATEGORY.fullmatch(category):
        return QueryProblem("invalid_category", "category",
                            "品目代码为 A/B/C 加数字 / a category code is A, B or C and digits")
    kind = get("kind") or None
    if kind is not None and kind not in KINDS:
        return QueryProblem("invalid_kind", "kind", "公告类型无效 / unknown announcement kind")
    since = until = None
    if raw := get("from"):
        first = _day(raw, "from")
        if isinstance(first, QueryProblem):
            return first
        since = day_bounds_ms(first)[0]
    if raw := get("to"):
        last = _day(raw, "to")
        if isinstance(last, QueryProblem):
            return last
        until = day_bounds_ms(last)[1]
    if since is not None and until is not None and since >= until:
        return QueryProblem("invalid_range", "to", "结束日期早于开始日期 / to is before from")
    terms = split_terms(params.get("q", ""))
    if len(terms) > MAX_TERMS:
        return QueryProblem("too_many_terms", "q",
                            f"关键词最多{MAX_TERMS}个 / at most {MAX_TERMS} search terms")
    if any(len(t.text) > MAX_TERM_CHARS for t in terms):
        return QueryProblem("term_too_long", "q", f"每个关键词最多{MAX_TERM_CHARS}个字 / a "
                                                  f"search term has at most {MAX_TERM_CHARS} "
                                                  "characters")
    limit = DEFAULT_LIMIT
    if raw := get("limit"):
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT):
            return QueryProblem("invalid_query", "limit",
                                f"limit 为 1..{MAX_LIMIT} / limit is 1..{MAX_LIMIT}")
        limit = int(raw)
    after = None
    if raw := get("cursor"):
        match = _CURSOR.fullmatch(raw)
        if match is None:
            return QueryProblem("invalid_cursor", "cursor",
                                "翻页游标无效 / cursor: use next_cursor of the previous page")
        after = Cursor(int(match[1]), int(match[2]))
    return PortalQuery(low, high, county, method, category, kind, since, until, terms, limit,
                       after)


@dataclass(frozen=True, slots=True)
class Plan:
    """Which index leads: ``reference`` (the announcements carrying an identifier term),
    ``text`` (the keyword's few matches), ``region`` (a county's rows) or ``order`` (newest
    first, filters checked on the way). ``references``: the identifier terms' keys that some
    announcement carries (``reference_key``); those terms match the column, not the text."""

    lead: str
    references: frozenset[str] = frozenset()


def identifier_keys(query: PortalQuery) -> tuple[str, ...]:
    """The keys to look up in ``announcements.reference``: one per identifier term."""
    return tuple(reference_key(t.text) for t in query.terms if t.identifier)


def plan_search(query: PortalQuery, text_matches: int | None,
                references: frozenset[str] = frozenset()) -> Plan:
    """The plan for a query, given which of its identifier keys some announcement carries
    (``references``: those few rows lead, and ``text_matches`` is not needed) and otherwise
    how many announcements its indexed terms match (counted up to ``FEW_MATCHES + 1``; None
    when it has no indexed term)."""
    if references:
        return Plan("reference", frozenset(references))
    if text_matches is not None and text_matches <= FEW_MATCHES:
        return Plan("text")
    if query.county and text_matches is None:
        return Plan("region")
    return Plan("order")


def excerpt(text: str, terms: tuple[Term, ...], width: int = 60) -> str:
    """Up to ``width`` characters of ``text`` around the first term found (or its start), with
    ``…`` where it was cut: what a result line shows under its title."""
    lowered = text.casefold()
    hits = [i for t in terms if (i := lowered.find(t.text.casefold())) >= 0]
    if len(text) <= width:
        return text
    start = max(0, min(hits) - width // 4) if hits else 0
    start = min(start, len(text) - width)
    piece = text[start:start + width]
    return ("…" if start > 0 else "") + piece + ("…" if start + width < len(text) else "")
