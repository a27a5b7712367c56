"""Days and statutory dates as JSON-ready dicts: what the API returns, the pages show and an
announcement stores (the date with its rule and article).

Must not import: web.
"""

from __future__ import annotations

from typing import Any

from market.calendar.rules import DayFacts, StatutoryDate

__all__ = ["date_view", "day_view"]


def day_view(facts: DayFacts) -> dict[str, Any]:
    return {"day": facts.day.isoformat(), "working": facts.working, "kind": str(facts.kind),
            "name": facts.name, "source": facts.source, "provisional": facts.provisional}


def date_view(d: StatutoryDate) -> dict[str, Any]:
    """The day, the period and its article, what the rule says (zh, en), and how sure it is;
    ``skipped`` lists the non-working days the count passed over."""
    period = d.period
    return {"day": d.day.isoformat(), "period": period.code if period else None,
            "article": period.article if period else None,
            "rule_zh": period.zh if period else None, "rule_en": period.en if period else None,
            "from": d.start.isoformat(), "provisional": d.provisional, "warning": d.warning,
            "skipped": [day_view(f) for f in d.skipped]}
