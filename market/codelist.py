"""Code lists imported from CSV (the category catalogue, the region tree): one reader for the
format both share. Pure: text in, rows or the first problem out.

Format: UTF-8 CSV (a byte-order mark is ignored); lines starting with ``#`` before the header are
comments; the header names the columns ``code`` and ``name`` and optionally ``name_en``, in any
order; one entry per row; blank rows are skipped; a code appears once.

Must not import: web.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CodeRow", "ListProblem", "parse_code_list"]


@dataclass(frozen=True, slots=True)
class CodeRow:
    line: int  # 1-based, counting comment lines
    code: str
    name: str
    name_en: str | None  # None: the file has no name_en column


@dataclass(frozen=True, slots=True)
class ListProblem:
    line: int
    reason: str


def parse_code_list(text: str, *, valid: Callable[[str], bool], example: str,
                    max_name: int, entries: str, upper: bool = False
                    ) -> list[CodeRow] | ListProblem:
    """The rows of a code list in file order, or its first problem (``example`` names a
    well-formed code in the message; ``entries`` what the file lists, for an empty file)."""
    lines = text.removeprefix("\ufeff").splitlines()
    skipped = 0
    while skipped < len(lines) and (lines[skipped].startswith("#") or not lines[skipped].strip()):
        skipped += 1
    reader = csv.DictReader(io.StringIO("\n".join(lines[skipped:])))
    fields = [f.strip() for f in (reader.fieldnames or [])]
    if "code" not in fields or "name" not in fields:
        return ListProblem(skipped + 1, "the header must name the columns code and name")
    reader.fieldnames = fields
    found: list[CodeRow] = []
    seen: set[str] = set()
    for number, row in enumerate(reader, start=skipped + 2):
        code = (row.get("code") or "").strip()
        code = code.upper() if upper else code
        name = (row.get("name") or "").strip()
        name_en = (row.get("name_en") or "").strip() if "name_en" in fields else None
        if not code and not name:
            continue
        if not valid(code):
            return ListProblem(number, f"{code!r} is not {example}")
        if not name or len(name) > max_name or len(name_en or "") > max_name:
            return ListProblem(number, f"the name must be 1 to {max_name} characters")
        if code in seen:
            return ListProblem(number, f"{code} appears twice")
        seen.add(code)
        found.append(CodeRow(number, code, name, name_en))
    if not found:
        return ListProblem(skipped + 1, f"the file lists no {entries}")
    return found
