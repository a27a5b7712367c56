"""Experts as pure rules: the status machine, dates and date ranges, specialties against a
wanted category, and availability on a day.

- **Status** (``ExpertStatus``): ``active`` (may be drawn, Reg 39; O87 48), ``suspended``
  (暂停: not drawn until reinstated) and ``retired`` (解聘/退出: final). Allowed moves
  (``check_transition``): active → suspended, suspended → active, active or suspended →
  retired. A suspension or a retirement needs a reason (the record a supervisor reads). The
  drawing reads only ``active`` experts: an expert under suspension is never drawn (EXP 14's
  draw is of the library's usable experts). DOMAIN.md names no EXP article for the moves
  themselves: they are a platform rule [P].
- **Dates** are ``YYYY-MM-DD`` days (Beijing days, as the calendar's); a range ``from``–``until``
  holds both ends, ``until`` None is open (a current employer).
- **Conflict facts** (EXP 16; Reg 9: employment, directorship or control of a bidder within 3
  years, kinship with its legal representative) are kept as declared with their dates; this
  module only says what ranges cover which day. The conflict rules themselves are elsewhere.
- **Specialties** are catalogue codes (政府采购品目分类目录); an expert in a category covers it
  and everything below it (``covers``).

Must not import: web; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

__all__ = [
    "TRANSITIONS",
    "AffiliationKind",
    "DayRange",
    "ExpertStatus",
    "RelationKind",
    "StatusRefusal",
    "available_on",
    "check_transition",
    "covers",
    "parse_day",
    "parse_range",
]


class ExpertStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETIRED = "retired"


class AffiliationKind(StrEnum):
    """What ties an expert to an organisation (EXP 16; Reg 9)."""

    EMPLOYMENT = "employment"  # 任职/劳动关系
    DIRECTORSHIP = "directorship"  # 董事、监事
    CONTROL = "control"  # 控股或实际控制


class RelationKind(StrEnum):
    """A declared relation to a supplier (EXP 16; Reg 9)."""

    RELATIVE = "relative"  # kin of a person (a legal representative): that person's ID hash
    ORGANISATION = "organisation"  # another named relation to an organisation


#: status → the statuses it may move to (platform rule [P]; the draw reads ``active`` only,
#: Reg 39, EXP 14).
TRANSITIONS: Final[dict[ExpertStatus, frozenset[ExpertStatus]]] = {
    ExpertStatus.ACTIVE: frozenset({ExpertStatus.SUSPENDED, ExpertStatus.RETIRED}),
    ExpertStatus.SUSPENDED: frozenset({ExpertStatus.ACTIVE, ExpertStatus.RETIRED}),
    ExpertStatus.RETIRED: frozenset(),
}
_NEEDS_REASON: Final = frozenset({ExpertStatus.SUSPENDED, ExpertStatus.RETIRED})


@dataclass(frozen=True, slots=True)
class StatusRefusal:
    reason: str  # a stable error code
    message: str


def check_transition(current: ExpertStatus, target: ExpertStatus,
                     reason: str | None) -> StatusRefusal | None:
    """Whether an expert may move from ``current`` to ``target`` (``TRANSITIONS``): retired is
    final (``expert_retired``), other moves not listed are ``invalid_status_change`` (the same
    status included); suspending or retiring needs a reason (``status_reason_required``)."""
    if current is ExpertStatus.RETIRED:
        return StatusRefusal("expert_retired", "专家已解聘 / the expert is retired")
    if target not in TRANSITIONS[current]:
        return StatusRefusal("invalid_status_change",
                             f"不能从 {current} 变为 {target} / {current} cannot become {target}")
    if target in _NEEDS_REASON and not (reason and reason.strip()):
        return StatusRefusal("status_reason_required", "暂停或解聘须说明理由 / a suspension or "
                                                "retirement needs a reason")
    return None


def parse_day(text: object) -> date | None:
    """A ``YYYY-MM-DD`` day, or None when it is not one."""
    if not isinstance(text, str) or len(text) != 10 or not text.isascii():
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DayRange:
    """Days ``start`` to ``end`` inclusive; ``end`` None: open-ended."""

    start: date
    end: date | None

    def holds(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


def parse_range(start: object, end: object) -> DayRange | None:
    """A range from two ``YYYY-MM-DD`` texts (``end`` may be None), or None when a day is
    malformed or ``end`` is before ``start``."""
    first = parse_day(start)
    last = None if end is None else parse_day(end)
    if first is None or (end is not None and last is None):
        return None
    if last is not None and last < first:
        return None
    return DayRange(first, last)


def available_on(unavailable: Iterable[DayRange], day: date) -> bool:
    """Whether no declared unavailable range holds ``day``."""
    return not any(r.holds(day) for r in unavailable)


def covers(specialty: str, wanted: str) -> bool:
    """Whether an expert in catalogue category ``specialty`` may review ``wanted``: the same
    category or one below it (codes extend their parent's: A02 → A0201 → A020101)."""
    return wanted.startswith(specialty)
