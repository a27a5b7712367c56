"""The statutory calendar as pure rules: which days are working days, and every period the
procurement law counts, with the article each one comes from.

Days are Beijing calendar days (Asia/Shanghai, UTC+8 all year since 1991, so a fixed offset and
no time-zone database). The rules take everything they need as a ``CalendarData`` value — the
holiday package's days, the administrator's days and which years are known — and read no clock
and do no I/O; ``market.calendar.source`` builds the package's part, ``market.calendar.store``
the administrator's.

How a day is decided (first match wins):

1. an administrator's entry for that day (a local holiday, a local working day, or next year's
   State Council days entered before the package knows them);
2. the holiday package (``chinese-calendar``): public holidays and the make-up working days
   (调休) of every year it knows;
3. for a year the package does not know but an administrator declared complete: Monday to
   Friday work, the weekend does not (every exception of that year was entered);
4. otherwise the same weekday rule, but the day is **provisional**: nobody has said what the
   State Council decided for that year, so a date computed across it is shown with a warning and
   never silently as final.

Counting (DOMAIN.md "Time limits"; O87 85–86): the start day is not counted; "within N days" and
"not less than N days" include the last day; a period counted in calendar days whose last day is
not a working day ends on the next working day (O87 86: 期限的最后一日是国家法定节假日的，
以节假日后的第一日为期限的最后一日); a period counted in working days counts working days only.

Must not import: web; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Final

__all__ = [
    "BEIJING",
    "PERIODS",
    "CalendarData",
    "Count",
    "DayEntry",
    "DayFacts",
    "DayKind",
    "Direction",
    "Period",
    "StatutoryDate",
    "add_calendar_days",
    "add_working_days",
    "beijing_day",
    "compute",
    "day_facts",
    "day_start_ms",
    "earliest_deadline_after_correction",
    "next_working_day",
    "subtract_working_days",
    "working_days_between",
]

#: Beijing time. China has kept UTC+8 all year since 1991, so a fixed offset is exact.
BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

# How far a computation may walk before it stops: no statutory period is longer than a few
# months, and a calendar with no working day at all is a data error, not a long wait.
_MAX_WALK_DAYS: Final = 3660


class DayKind(StrEnum):
    WORKDAY = "workday"  # Monday to Friday, no holiday
    WEEKEND = "weekend"
    HOLIDAY = "holiday"  # a public holiday (法定节假日) or a local one entered by an administrator
    ADJUSTED_WORKDAY = "adjusted_workday"  # 调休: a weekend day worked in exchange for a holiday


@dataclass(frozen=True, slots=True)
class DayEntry:
    """One administrator's entry: the day is (or is not) a working day, and why."""

    working: bool
    name: str = ""


@dataclass(frozen=True, slots=True)
class CalendarData:
    """Everything the rules know about days.

    ``official_*`` come from the holiday package for the years in ``official_years``;
    ``entries`` are the administrator's days (they win over the package); ``complete_years``
    are years (beyond the package) that an administrator declared fully entered.
    """

    official_years: frozenset[int] = frozenset()
    official_holidays: Mapping[date, str] = field(default_factory=dict)
    official_workdays: Mapping[date, str] = field(default_factory=dict)
    entries: Mapping[date, DayEntry] = field(default_factory=dict)
    complete_years: frozenset[int] = frozenset()

    def known(self, year: int) -> bool:
        """Whether the year's days are known (by the package or an administrator)."""
        return year in self.official_years or year in self.complete_years


@dataclass(frozen=True, slots=True)
class DayFacts:
    day: date
    working: bool
    kind: DayKind
    name: str  # the holiday's name, or the administrator's note; "" for an ordinary day
    source: str  # "administrator", "chinese-calendar" or "weekday rule"
    provisional: bool  # the year is known to nobody: weekends-only guess


def day_facts(data: CalendarData, day: date) -> DayFacts:
    """Whether ``day`` is a working day, and on whose word (see the module docstring)."""
    weekend = day.weekday() >= 5
    entry = data.entries.get(day)
    if entry is not None:
        kind = (DayKind.ADJUSTED_WORKDAY if weekend else DayKind.WORKDAY) if entry.working else (
            DayKind.WEEKEND if weekend and not entry.name else DayKind.HOLIDAY)
        return DayFacts(day, entry.working, kind, entry.name, "administrator", False)
    if day.year in data.official_years:
        if day in data.official_workdays:
            return DayFacts(day, True, DayKind.ADJUSTED_WORKDAY, data.official_workdays[day],
                            "chinese-calendar", False)
        if day in data.official_holidays:
            return DayFacts(day, False, DayKind.HOLIDAY, data.official_holidays[day],
                            "chinese-calendar", False)
        return DayFacts(day, not weekend, DayKind.WEEKEND if weekend else DayKind.WORKDAY, "",
                        "chinese-calendar", False)
    return DayFacts(day, not weekend, DayKind.WEEKEND if weekend else DayKind.WORKDAY, "",
                    "weekday rule", day.year not in data.complete_years)


class Count(StrEnum):
    CALENDAR_DAYS = "calendar_days"  # 日: every day counts; the last day rolls (O87 86)
    WORKING_DAYS = "working_days"  # 工作日


class Direction(StrEnum):
    AFTER = "after"  # the period ends N days after its start (a deadline, a minimum interval)
    BEFORE = "before"  # the period's end is N days before a later event (EXP 14's earliest day)


@dataclass(frozen=True, slots=True)
class Period:
    """One statutory period: what it counts, from what, and the article it comes from."""

    code: str
    article: str
    days: int
    count: Count
    direction: Direction
    zh: str
    en: str


def _period(code: str, article: str, days: int, count: Count, zh: str, en: str,
            direction: Direction = Direction.AFTER) -> Period:
    return Period(code, article, days, count, direction, zh, en)


_C, _W = Count.CALENDAR_DAYS, Count.WORKING_DAYS

#: Every statutory period the platform computes (DOMAIN.md §3 and §5), by code.
PERIODS: Final[Mapping[str, Period]] = {p.code: p for p in (
    _period("bid_deadline", "GPL 35", 20, _C,
            "自招标文件开始发出之日起至投标截止之日止，不得少于20日",
            "from the first issue of the tender documents to the bid deadline: at least 20 days"),
    _period("negotiation_response", "O74 29", 3, _W,
            "从谈判文件发出之日起至首次响应文件截止之日止不得少于3个工作日",
            "from the negotiation documents' issue to the first responses: at least 3 working "
            "days"),
    _period("inquiry_response", "O74 45", 3, _W,
            "从询价通知书发出之日起至响应文件截止之日止不得少于3个工作日",
            "from the inquiry notice's issue to the responses: at least 3 working days"),
    _period("consultation_response", "财库〔2014〕214号 10", 10, _C,
            "从磋商文件发出之日起至首次响应文件截止之日止不得少于10日",
            "from the consultation documents' issue to the first responses: at least 10 days"),
    _period("announcement_period", "O87 16", 5, _W,
            "招标公告、资格预审公告的公告期限为5个工作日",
            "a procurement announcement stays published for 5 working days"),
    _period("documents_available", "O87 18", 5, _W,
            "招标文件提供期限自开始发出之日起不得少于5个工作日",
            "the tender documents are available for at least 5 working days"),
    _period("correction_notice", "O87 27", 15, _C,
            "可能影响投标文件编制的澄清或者修改，应当在投标截止时间至少15日前发出，不足15日的顺延截止时间",
            "a bid-affecting clarification comes at least 15 days before the deadline, "
            "else the deadline moves"),
    _period("expert_draw_earliest", "EXP 14", 2, _W,
            "评审专家的抽取时间原则上应当在评审活动开始前2个工作日内",
            "experts are drawn no earlier than 2 working days before the evaluation",
            Direction.BEFORE),
    _period("evaluation_report", "O87 68", 2, _W,
            "评标报告在评标结束后2个工作日内送交采购人",
            "the evaluation report reaches the purchaser within 2 working days"),
    _period("purchaser_confirmation", "O87 68", 5, _W,
            "采购人在收到评标报告后5个工作日内确定中标人",
            "the purchaser picks the winner within 5 working days of the report"),
    _period("award_announcement", "O87 69", 2, _W,
            "中标人确定之日起2个工作日内发出中标通知书并公告中标结果",
            "the award is notified and announced within 2 working days"),
    _period("award_announcement_period", "O87 69", 1, _W,
            "中标结果公告期限为1个工作日",
            "the award announcement stays published for 1 working day"),
    _period("challenge", "GPL 52", 7, _W,
            "供应商可以在知道或者应知其权益受到损害之日起7个工作日内提出质疑",
            "a supplier may challenge within 7 working days"),
    _period("challenge_reply", "GPL 53", 7, _W,
            "采购人应当在收到质疑后7个工作日内作出答复",
            "the purchaser replies to a challenge within 7 working days"),
    _period("complaint", "GPL 55", 15, _W,
            "质疑答复期满后15个工作日内可以投诉",
            "a complaint may be made within 15 working days after the reply deadline"),
    _period("complaint_decision", "GPL 56", 30, _W,
            "政府采购监督管理部门应当在收到投诉后30个工作日内作出处理决定",
            "the finance bureau decides a complaint within 30 working days"),
    _period("contract_signing", "GPL 46", 30, _C,
            "中标通知书发出之日起30日内签订政府采购合同",
            "the contract is signed within 30 days of the award notice"),
    _period("contract_publication", "Reg 50", 2, _W,
            "政府采购合同签订之日起2个工作日内公告",
            "the contract is published within 2 working days of signing"),
    _period("contract_filing", "GPL 47", 7, _W,
            "政府采购合同签订之日起7个工作日内备案",
            "the contract is filed within 7 working days of signing"),
    _period("bond_refund", "Reg 33", 5, _W,
            "投标保证金在中标通知书发出后（中标人：合同签订后）5个工作日内退还",
            "bid bonds are refunded within 5 working days (losers: of the notice; the winner: "
            "of signing)"),
    _period("intention_notice", "财库〔2020〕10号", 30, _C,
            "采购意向公开时间原则上不得晚于采购活动开始前30日",
            "a procurement intention is published at least 30 days before the purchase starts"),
    _period("framework_result", "O110 35", 2, _W,
            "二次竞价结果在2个工作日内公告",
            "a second-round bidding result is published within 2 working days"),
)}


@dataclass(frozen=True, slots=True)
class StatutoryDate:
    """A computed date with the rule it comes from and how sure it is."""

    day: date
    period: Period | None
    start: date
    provisional: bool
    #: Years whose days nobody has entered and that the computation walked across.
    unknown_years: tuple[int, ...] = ()
    #: The days passed over because they were not working days (holidays, weekends).
    skipped: tuple[DayFacts, ...] = ()

    @property
    def warning(self) -> str | None:
        if not self.unknown_years:
            return None
        years = "、".join(str(y) for y in self.unknown_years)
        years_en = ", ".join(str(y) for y in self.unknown_years)
        return (f"{years} 年节假日安排尚未录入，本日期按周末推算，仅供参考 / the {years_en} "
                "holidays are not entered yet: this date assumes weekends only and is "
                "provisional")


class _Walk:
    """Collects what a computation looked at: provisional years and skipped days."""

    def __init__(self, data: CalendarData) -> None:
        self.data = data
        self.unknown: set[int] = set()
        self.skipped: list[DayFacts] = []

    def facts(self, day: date) -> DayFacts:
        facts = day_facts(self.data, day)
        if facts.provisional:
            self.unknown.add(day.year)
        return facts

    def result(self, day: date, start: date, period: Period | None) -> StatutoryDate:
        return StatutoryDate(day, period, start, bool(self.unknown),
                             tuple(sorted(self.unknown)), tuple(self.skipped))


def _step(day: date, sign: int) -> date:
    return day + timedelta(days=sign)


def _walk_to_working(walk: _Walk, day: date, sign: int = 1) -> date:
    for _ in range(_MAX_WALK_DAYS):
        facts = walk.facts(day)
        if facts.working:
            return day
        walk.skipped.append(facts)
        day = _step(day, sign)
    raise ValueError(f"no working day within {_MAX_WALK_DAYS} days of {day}")


def next_working_day(data: CalendarData, day: date) -> StatutoryDate:
    """``day`` itself when it is a working day, else the first working day after it."""
    walk = _Walk(data)
    return walk.result(_walk_to_working(walk, day), day, None)


def add_calendar_days(data: CalendarData, start: date, days: int, *,
                      period: Period | None = None) -> StatutoryDate:
    """The last day of a period of ``days`` calendar days from ``start`` (not counted); a last
    day that is not a working day rolls to the next working day (O87 85–86)."""
    if days < 0:
        raise ValueError("a period is not negative")
    walk = _Walk(data)
    last = start + timedelta(days=days)
    for offset in range(1, days + 1):  # every day of the period is looked at: a provisional
        walk.facts(start + timedelta(days=offset))  # year inside it is worth a warning too
    return walk.result(_walk_to_working(walk, last), start, period)


def _count_working(data: CalendarData, start: date, days: int, sign: int,
                   period: Period | None) -> StatutoryDate:
    if days < 0:
        raise ValueError("a period is not negative")
    walk = _Walk(data)
    day, counted = start, 0
    for _ in range(_MAX_WALK_DAYS):
        if counted == days:
            return walk.result(day, start, period)
        day = _step(day, sign)
        facts = walk.facts(day)
        if facts.working:
            counted += 1
        else:
            walk.skipped.append(facts)
    raise ValueError(f"no {days} working days within {_MAX_WALK_DAYS} days of {start}")


def add_working_days(data: CalendarData, start: date, days: int, *,
                     period: Period | None = None) -> StatutoryDate:
    """The ``days``-th working day after ``start`` (the start day is not counted, O87 85)."""
    return _count_working(data, start, days, 1, period)


def subtract_working_days(data: CalendarData, end: date, days: int, *,
                          period: Period | None = None) -> StatutoryDate:
    """The ``days``-th working day before ``end`` (``end`` itself is not counted)."""
    return _count_working(data, end, days, -1, period)


def working_days_between(data: CalendarData, start: date, end: date) -> int:
    """How many working days lie after ``start`` up to and including ``end``."""
    if end < start:
        return -working_days_between(data, end, start)
    return sum(1 for offset in range(1, (end - start).days + 1)
               if day_facts(data, start + timedelta(days=offset)).working)


def compute(data: CalendarData, code: str, start: date) -> StatutoryDate:
    """The statutory date of period ``code`` counted from ``start``: its last day (AFTER), or
    the earliest allowed day before a later event (BEFORE). ``KeyError`` for an unknown code."""
    period = PERIODS[code]
    if period.direction is Direction.BEFORE:
        return subtract_working_days(data, start, period.days, period=period)
    if period.count is Count.WORKING_DAYS:
        return add_working_days(data, start, period.days, period=period)
    return add_calendar_days(data, start, period.days, period=period)


def earliest_deadline_after_correction(data: CalendarData, deadline: date,
                                       correction: date) -> StatutoryDate:
    """O87 27: a bid-affecting correction published on ``correction`` needs at least 15 days
    before the deadline; the deadline stays if it already allows that, else it moves to the
    end of the 15 days (rolled to a working day)."""
    moved = compute(data, "correction_notice", correction)
    if deadline >= moved.day:
        return StatutoryDate(deadline, PERIODS["correction_notice"], correction,
                             moved.provisional, moved.unknown_years, ())
    return moved


# ------------------------------------------------------------------------------ instants


def beijing_day(ms: int) -> date:
    """The Beijing calendar day of an instant (ms since the epoch, UTC)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(BEIJING).date()


def day_start_ms(day: date) -> int:
    """The instant Beijing's ``day`` begins (00:00 UTC+8), in ms since the epoch."""
    return int(datetime.combine(day, time(0), tzinfo=BEIJING).timestamp() * 1000)
