"""Calendar routes: what a day is, every statutory period and its date, and the administrator's
entries (local days; next year's State Council days before the holiday package knows them).
``market.calendar`` does the work; this module maps HTTP to it.
"""

from __future__ import annotations

from datetime import date

from starlette.requests import Request
from starlette.responses import Response

from bidroom.errors import ValidationError
from market.calendar import PERIODS
from market.calendar.views import date_view, day_view
from market.registry import Role
from web.api.common import (
    OperationSet,
    QueryParam,
    Reply,
    json_response,
    read_json,
    reject_unknown,
    text_field,
)
from web.api.schemas import BOOL, COUNT, STRING, enum_of, nullable, obj
from web.auth import require_principal, require_role, services_of

__all__ = ["DATE_VIEW", "ops"]

ops = OperationSet("calendar")

DAY = {"type": "string", "format": "date", "description": "a Beijing calendar day, YYYY-MM-DD"}
_DAY_VIEW = obj({
    "day": DAY, "working": BOOL,
    "kind": enum_of(["workday", "weekend", "holiday", "adjusted_workday"]),
    "name": STRING, "source": enum_of(["administrator", "chinese-calendar", "weekday rule"]),
    "provisional": BOOL,
})
DATE_VIEW = obj({
    "day": DAY, "period": nullable(STRING), "article": nullable(STRING),
    "rule_zh": nullable(STRING), "rule_en": nullable(STRING), "from": DAY,
    "provisional": BOOL, "warning": nullable(STRING),
    "skipped": {"type": "array", "items": _DAY_VIEW},
})
_DAY_ERRORS = {422: ("invalid_day", "day_out_of_range")}


def _day(raw: str | None, field: str) -> date:
    try:
        if raw is None or len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(f"{field}: 日期格式 YYYY-MM-DD / a day is YYYY-MM-DD",
                              code="invalid_day", field=field) from None


def _year(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) == 4):
        raise ValidationError("年份为4位数字 / a year is four digits", code="invalid_day",
                              field="year")
    return int(raw)


@ops.add(
    "GET", "/api/calendar/periods",
    summary_zh="法定期限一览", summary_en="Every statutory period",
    description="Each period the platform computes: its code, article, length and what it counts.",
    public=True,
    responses={200: Reply("the periods", obj({"periods": {"type": "array", "items": obj({
        "code": STRING, "article": STRING, "days": COUNT,
        "count": enum_of(["calendar_days", "working_days"]),
        "direction": enum_of(["after", "before"]), "zh": STRING, "en": STRING})}}))},
)
async def list_periods(request: Request) -> Response:
    return json_response({"periods": [
        {"code": p.code, "article": p.article, "days": p.days, "count": str(p.count),
         "direction": str(p.direction), "zh": p.zh, "en": p.en} for p in PERIODS.values()]})


@ops.add(
    "GET", "/api/calendar/dates",
    summary_zh="计算法定日期", summary_en="Compute a statutory date",
    description=(
        "The last day of period `period` counted from `from` (the start day is not counted; a "
        "calendar-day period ending on a non-working day rolls to the next working day, O87 "
        "85–86), or for a `before` period the earliest allowed day. `provisional` with a "
        "`warning` when it crosses a year nobody has entered."),
    public=True,
    query=(QueryParam("period", {"type": "string"}, "period code (GET /api/calendar/periods)",
                      required=True),
           QueryParam("from", DAY, "the start day", required=True)),
    responses={200: Reply("the date and its rule", DATE_VIEW, {
        "day": "2026-10-08", "period": "bid_deadline", "article": "GPL 35",
        "rule_zh": "自招标文件开始发出之日起至投标截止之日止，不得少于20日",
        "rule_en": "from the first issue of the tender documents to the bid deadline: at least "
                   "20 days", "from": "2026-09-11", "provisional": False, "warning": None,
        "skipped": []})},
    errors={422: ("invalid_day", "day_out_of_range", "unknown_period", "missing_field")},
)
async def compute_date(request: Request) -> Response:
    period = request.query_params.get("period")
    if not period:
        raise ValidationError("period is required", code="missing_field", field="period")
    start = _day(request.query_params.get("from"), "from")
    return json_response(date_view(await services_of(request).calendar.compute(period, start)))


@ops.add(
    "GET", "/api/calendar/days/{day}",
    summary_zh="某日是否工作日", summary_en="Whether a day is a working day",
    public=True,
    responses={200: Reply("the day", _DAY_VIEW)},
    errors=_DAY_ERRORS,
)
async def get_day(request: Request) -> Response:
    day = _day(request.path_params["day"], "day")
    return json_response(day_view(await services_of(request).calendar.day(day)))


@ops.add(
    "GET", "/api/calendar/years/{year}",
    summary_zh="某年节假日与调休", summary_en="A year's holidays and make-up working days",
    description="Every day of the year that is not an ordinary weekday or weekend, and whether "
                "the year is known (by the holiday package, or declared complete by an "
                "administrator).",
    public=True,
    responses={200: Reply("the year", obj({
        "year": COUNT, "known": BOOL, "by_package": BOOL, "declared_complete": BOOL,
        "days": {"type": "array", "items": _DAY_VIEW}}))},
    errors=_DAY_ERRORS,
)
async def get_year(request: Request) -> Response:
    year = _year(request.path_params["year"])
    calendar = services_of(request).calendar
    days = await calendar.year(year)
    data = await calendar.data()
    return json_response({"year": year, "known": data.known(year),
                          "by_package": year in data.official_years,
                          "declared_complete": year in data.complete_years,
                          "days": [day_view(d) for d in days]})


@ops.add(
    "PUT", "/api/calendar/days/{day}",
    summary_zh="录入日历日（本地节假日/调休）",
    summary_en="Enter a day (local holiday or working day)",
    description="An administrator's day wins over the holiday package: a local holiday, a local "
                "working day, or next year's State Council days.",
    who="admin",
    body=obj({"working": BOOL, "name": STRING}, ["working"], closed=True),
    body_example={"working": False, "name": "元旦 / New Year's Day"},
    responses={200: Reply("the day as it now is", _DAY_VIEW)},
    errors={403: ("role_required",), 422: ("invalid_day", "day_out_of_range", "invalid_field",
                                           "missing_field")},
)
async def put_day(request: Request) -> Response:
    principal = await require_principal(request)
    require_role(principal, Role.ADMIN)
    day = _day(request.path_params["day"], "day")
    body = await read_json(request)
    reject_unknown(body, ("working", "name"))
    working = body.get("working")
    if not isinstance(working, bool):
        raise ValidationError("working: true 或 false / working is true or false",
                              code="missing_field" if working is None else "invalid_field",
                              field="working")
    name = text_field(body, "name", required=False) or ""
    services = services_of(request)
    facts = await services.calendar.enter_day(day, working=working, name=name,
                                              actor=principal.user_id,
                                              at_ms=await services.clock.now_ms())
    return json_response(day_view(facts))


@ops.add(
    "DELETE", "/api/calendar/days/{day}",
    summary_zh="删除录入的日历日", summary_en="Remove an entered day",
    who="admin",
    responses={200: Reply("the day as it now is", _DAY_VIEW)},
    errors={403: ("role_required",), **_DAY_ERRORS},
)
async def delete_day(request: Request) -> Response:
    principal = await require_principal(request)
    require_role(principal, Role.ADMIN)
    day = _day(request.path_params["day"], "day")
    return json_response(day_view(await services_of(request).calendar.remove_day(day)))


@ops.add(
    "PUT", "/api/calendar/years/{year}",
    summary_zh="声明某年已录入完整", summary_en="Declare a year fully entered",
    description="After entering every holiday and 调休 day of a year the package does not know, "
                "an administrator declares it complete: dates across it stop being provisional.",
    who="admin",
    body=obj({"complete": BOOL}, closed=True),
    body_example={"complete": True},
    responses={200: Reply("the year's standing", obj({"year": COUNT, "declared_complete": BOOL}))},
    errors={403: ("role_required",), 422: ("invalid_day", "day_out_of_range", "invalid_field",
                                           "missing_field")},
)
async def put_year(request: Request) -> Response:
    principal = await require_principal(request)
    require_role(principal, Role.ADMIN)
    year = _year(request.path_params["year"])
    body = await read_json(request)
    reject_unknown(body, ("complete",))
    complete = body.get("complete")
    if not isinstance(complete, bool):
        raise ValidationError("complete: true 或 false / complete is true or false",
                              code="missing_field" if complete is None else "invalid_field",
                              field="complete")
    services = services_of(request)
    await services.calendar.declare_year(year, complete=complete, actor=principal.user_id,
                                         at_ms=await services.clock.now_ms())
    return json_response({"year": year, "declared_complete": complete})
