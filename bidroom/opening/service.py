"""Putting an opening on the books, without HTTP: the one use case ``POST /api/openings`` and
the market's feed (``market.feed``: a published sealed lot) share.

The caller has checked who may do it and that the invited suppliers exist; this checks the
settings, that the deadline is in the future, and writes the opening row, its invitations, its
first log entry and (with a backup key) the sealed shares in one transaction
(``OpeningRunner.create``), then schedules its deadline.

Must not import: market, web.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bidroom.errors import ValidationError
from bidroom.opening.runner import OpeningRunner
from bidroom.opening.session import OpeningSettings, OpeningState, settings_from_dict
from bidroom.opening.store import OpeningRow, OpeningShareRow

__all__ = ["NewOpening", "create_opening", "opening_settings"]


@dataclass(frozen=True, slots=True)
class NewOpening:
    opening_id: str
    title: str
    purchaser_org_id: str
    created_by_user_id: str
    invited: Sequence[str]
    title_en: str = ""
    agency_org_id: str | None = None


def opening_settings(opening_id: str, raw: Mapping[str, Any]) -> OpeningSettings:
    """Valid settings from a dict (``invalid_settings`` naming every problem at once)."""
    settings, problems = settings_from_dict({**raw, "opening_id": opening_id})
    if settings is None:
        raise ValidationError(
            "the opening settings are not valid: "
            + "; ".join(f"{p.field}: {p.message}" for p in problems),
            code="invalid_settings",
            problems=[{"code": p.code, "field": p.field, "message": p.message}
                      for p in problems],
        )
    return settings


async def create_opening(runner: OpeningRunner, new: NewOpening, settings: OpeningSettings, *,
                         now_ms: int, backup_certificate_pem: str | None = None,
                         shares: Sequence[OpeningShareRow] = ()) -> OpeningState:
    """Create the opening (``deadline_in_past``; ``opening_exists`` when the id is taken)."""
    if settings.opening_id != new.opening_id:
        raise ValidationError("the settings name another opening", code="invalid_settings")
    if settings.deadline_ms <= now_ms:
        raise ValidationError("the deadline is in the past", code="deadline_in_past",
                              deadline_ms=settings.deadline_ms, server_time_ms=now_ms)
    row = OpeningRow(
        id=new.opening_id, title=new.title, title_en=new.title_en,
        purchaser_org_id=new.purchaser_org_id, agency_org_id=new.agency_org_id,
        created_by_user_id=new.created_by_user_id, settings=settings.to_dict(),
        deadline_ms=settings.deadline_ms, created_at_ms=now_ms, concluded_at_ms=None,
        backup_certificate_pem=backup_certificate_pem,
    )
    return await runner.create(row, settings, new.invited, actor=new.created_by_user_id,
                               now_ms=now_ms, shares=shares)
