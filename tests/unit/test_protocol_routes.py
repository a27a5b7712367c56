"""docs/protocol.md names exactly the HTTP operations the server has (issue #10 §6).

The routes are read from the document — the ``#### `METHOD /path``` headings of §2 and the
route table of §5.1 — and compared with the server's own table (``web.api.operations()``
and ``web.openapi.ops``, from
which the OpenAPI document and the Starlette routes are built). The counts the document shows
in its ``GET /openapi.json`` example are checked against the same table, so a route added,
removed or renamed without updating the document fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from web import openapi
from web.api import operations as api_operations
from web.api.common import Operation

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
_METHOD = r"(GET|POST|PUT|DELETE|PATCH)"
_HEADING = re.compile(rf"^#### `{_METHOD} (/[^`\s]*)`", re.M)
_TABLE_ROW = re.compile(rf"^\| `{_METHOD} (/[^`\s]*)` \|", re.M)
_COUNTS = re.compile(r'"paths":(\d+),"operations":(\d+)')


def operations() -> list[Operation]:
    """Every operation the server serves: the API's and ``GET /openapi.json`` (its own)."""
    return [*api_operations(), *openapi.ops.operations]


def _documented() -> set[tuple[str, str]]:
    text = PROTOCOL.read_text(encoding="utf-8")
    return set(_HEADING.findall(text)) | set(_TABLE_ROW.findall(text))


def _served() -> set[tuple[str, str]]:
    return {(op.method, op.path) for op in operations()}


def test_the_protocol_document_names_every_operation_the_server_has_and_no_other() -> None:
    documented, served = _documented(), _served()
    assert sorted(served - documented) == [], "served but not documented in docs/protocol.md"
    assert sorted(documented - served) == [], "documented in docs/protocol.md but not served"


def test_the_counts_in_the_openapi_example_are_the_servers() -> None:
    ops = operations()
    shown = _COUNTS.findall(PROTOCOL.read_text(encoding="utf-8"))
    assert shown, "the GET /openapi.json example with its counts is missing"
    for paths, count in shown:
        assert (int(paths), int(count)) == (len({op.path for op in ops}), len(ops))


def test_no_other_operation_count_is_written_in_the_document() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    assert not re.search(r"\b\d+ (more )?operations\b", text), (
        "write no count of operations in prose: it goes stale (the example's counts are checked)"
    )
