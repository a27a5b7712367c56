"""The portal's search in SQL, per dialect: the statement a ``PortalQuery`` becomes.

The full-text structures are created by migration 0010 (``web/migrations/versions``), the
identifier column's index by 0011:

- **Both**: an identifier term (``market.portal.rules.is_identifier``: ``GD20260012345``) is
  first looked up in ``announcements.reference`` (``references_statement``: an equality on
  ``ix_announcements_reference``, a few µs). The keys found become ``Plan.references``: those
  terms are then ``reference = :key`` and the index leads; a key no announcement carries
  leaves its term to the full text, as any other term. Without the lookup a project number
  read the posting lists of its 11 trigrams, each shared with all the other project numbers
  (docs/benchmarks.md B7).

- **SQLite** (the embedded default): ``announcements_fts``, an FTS5 table with the ``trigram``
  tokenizer over ``announcements.title`` and ``body`` (external content: it stores the index,
  not a second copy of the text), kept in sync by triggers on ``announcements`` (insert, update,
  delete), so a row and its index entry are written in the same transaction whoever writes it.
  A term of 3+ characters is the FTS5 phrase ``"term"`` (a substring match under ``trigram``);
  a shorter one is ``LIKE '%te%'`` on the columns.
- **PostgreSQL**: the ``pg_trgm`` extension and a GIN index ``ix_announcements_text_trgm`` on
  the expression ``lower(title || ' ' || body)``; a term of 3+ characters is
  ``LIKE '%term%'`` (lowercased) on that same expression, which the index serves. ``lower`` +
  ``LIKE`` rather than ``ILIKE``: PostgreSQL's ``ILIKE`` case-folds every row's text again,
  which for Chinese text costs several µs a row. Nothing to keep in sync: the index belongs to
  the table.

Both order by ``(published_at_ms, id)`` descending (index ``ix_announcements_order``). On
SQLite, which index leads is ``market.portal.rules.plan_search``'s choice, made on the count of
keyword matches (``count_statement``, capped: cheap), because SQLite's planner knows nothing of
how many rows a MATCH finds. PostgreSQL's planner has the trigram index's statistics and
chooses for itself (no count, no hints). A 1–2 character term is ``strpos(…) > 0`` there, not
``LIKE``: the index cannot serve it, and the planner's guess for ``LIKE`` on an unindexed
expression (a few rows) made it read and sort a whole city's rows (1 s) instead of walking
the order (2 ms).

Must not import: web.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Select, TextClause, or_, select, text, tuple_

from market.portal.rules import (
    FEW_MATCHES,
    Plan,
    PortalQuery,
    Term,
    fts5_phrase,
    identifier_keys,
    like_pattern,
    reference_key,
)
from market.projects.store import AnnouncementRow

__all__ = ["FTS_TABLE", "TEXT_EXPRESSION", "count_statement", "references_statement",
           "search_statement"]

FTS_TABLE: Final = "announcements_fts"
#: The indexed expression on PostgreSQL: a query must spell it the same way to use the index.
TEXT_EXPRESSION: Final = "lower(announcements.title || ' ' || announcements.body)"


def _fts_match(terms: list[Term]) -> str:
    return " AND ".join(fts5_phrase(t) for t in terms)


def references_statement(query: PortalQuery) -> Select[str] | None:
    """Which of the query's identifier keys some announcement carries (each at most once);
    None when the query has no identifier term. The same on both dialects."""
    keys = identifier_keys(query)
    if not keys:
        return None
    # equalities, not an expanding IN: the statement compiles to plain SQL (web/portal_sql.py)
    return (select(AnnouncementRow.reference)
            .where(or_(*(AnnouncementRow.reference == k for k in sorted(set(keys)))))
            .distinct())


def count_statement(query: PortalQuery, dialect: str) -> TextClause | None:
    """On SQLite, how many announcements the indexed terms match, up to ``FEW_MATCHES + 1``
    (what ``plan_search`` needs); None when the query has no indexed term, and on PostgreSQL."""
    indexed = [t for t in query.terms if t.indexed]
    if not indexed:
        return None
    if dialect != "sqlite":
        return None
    return text(f"SELECT count(*) FROM (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} "
                "MATCH :fts LIMIT :cap)").bindparams(fts=_fts_match(indexed),
                                                     cap=FEW_MATCHES + 1)


TEXT_FIRST: Final = Plan("text")


def search_statement(query: PortalQuery, dialect: str,
                     plan: Plan = TEXT_FIRST) -> Select[AnnouncementRow]:
    """The page's rows (one more than ``limit``, to tell whether a next page exists). An index
    the plan does not lead with is kept out of the way by an expression on its column
    (``region_code || ''``, ``id + 0``): the filter still holds, checked row by row."""
    a = AnnouncementRow
    stmt = select(a)
    if query.region_low is not None:
        region = (a.region_code if plan.lead == "region" or dialect != "sqlite"
                  else a.region_code.concat(""))
        # a county is one code: equality lets (region_code, published_at_ms) give the order
        stmt = stmt.where(region == query.region_low if query.county
                          else region.between(query.region_low, query.region_high))
    if query.method is not None:
        stmt = stmt.where(a.method == query.method)
    if query.category:
        stmt = stmt.where(a.category_code.like(query.category + "%"))
    if query.kind is not None:
        stmt = stmt.where(a.kind == query.kind)
    if query.since_ms is not None:
        stmt = stmt.where(a.published_at_ms >= query.since_ms)
    if query.until_ms is not None:
        stmt = stmt.where(a.published_at_ms < query.until_ms)
    if query.after is not None:
        stmt = stmt.where(tuple_(a.published_at_ms, a.id)
                          < tuple_(query.after.published_at_ms, query.after.id))
    looked_up = [t for t in query.terms
                 if t.identifier and reference_key(t.text) in plan.references]
    for term in looked_up:
        stmt = stmt.where(a.reference == reference_key(term.text))
    searched = [t for t in query.terms if t not in looked_up]
    few = plan.lead == "reference"  # a handful of rows: the other terms checked row by row
    indexed = [t for t in searched if t.indexed and not few]
    short = [t for t in searched if t not in indexed]
    if dialect == "sqlite":
        if indexed:
            row_id = "announcements.id" if plan.lead == "text" else "(announcements.id + 0)"
            stmt = stmt.where(text(
                f"{row_id} IN (SELECT rowid FROM {FTS_TABLE} "
                f"WHERE {FTS_TABLE} MATCH :fts)").bindparams(fts=_fts_match(indexed)))
        for term in short:
            pattern = like_pattern(term)
            stmt = stmt.where(or_(a.title.like(pattern, escape="\\"),
                                  a.body.like(pattern, escape="\\")))
    else:
        for i, term in enumerate(searched):
            if term.indexed:
                stmt = stmt.where(text(f"{TEXT_EXPRESSION} LIKE :term{i} ESCAPE '\\'")
                                  .bindparams(**{f"term{i}": like_pattern(term).lower()}))
            else:  # no trigram to look up: checked row by row (see the module's text)
                stmt = stmt.where(text(f"strpos({TEXT_EXPRESSION}, :term{i}) > 0")
                                  .bindparams(**{f"term{i}": term.text.lower()}))
    return stmt.order_by(a.published_at_ms.desc(), a.id.desc()).limit(query.limit + 1)
