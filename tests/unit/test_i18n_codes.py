"""Pages show words, not codes: every code the server can send — an auction's refusal reason,
an HTTP error code, a WebSocket error or close reason — has Chinese and English words in the
pages' tables (``web/static/i18n.js``, key ``err.<code>``), so a one-language page never shows
the server's bilingual message or a raw code, and switching the language rewords it.

The opening hall's codes (``/api/openings``, CA login, certificates) are worded by the hall's
own tables; ``OPENING_PATHS`` leaves them out of this walk."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from web.api import operations
from web.bidding import REASONS
from web.errors import WS_CLOSE

ROOT = Path(__file__).resolve().parents[2]
I18N = ROOT / "web" / "static" / "i18n.js"
OPENING_PATHS = ("/api/openings", "/api/auth/ca", "/api/certificates")
# Modules whose ``code="…"`` reaches a page over the WebSocket (or an HTTP error body).
WS_SOURCES = ("web/ws.py", "web/wsproto.py", "web/bidding.py", "web/auth.py", "web/errors.py",
              "bidroom/money.py")


@functools.cache
def dictionaries() -> dict[str, dict[str, str]]:
    """``{"zh": {key: text}, "en": {…}}`` as the browser sees them: by running the module
    with node when it is installed, else by reading the two object literals."""
    return node_tables() or parsed_tables()


def node_tables() -> dict[str, dict[str, str]] | None:
    node = shutil.which("node")
    if node is None:
        return None
    script = (f"import({json.dumps(I18N.as_uri())}).then((m) => "
              "process.stdout.write(JSON.stringify(m.DICTIONARIES)))")
    result = subprocess.run([node, "--input-type=module", "-e", script],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, dict[str, str]] = json.loads(result.stdout)
    return loaded


def parsed_tables() -> dict[str, dict[str, str]]:
    text = I18N.read_text(encoding="utf-8")
    tables: dict[str, dict[str, str]] = {}
    for lang in ("zh", "en"):
        body = re.search(rf"^const {lang} = \{{\n(.*?)^\}};", text, re.S | re.M)
        assert body is not None, f"no `const {lang} = {{…}};` in i18n.js"
        entries = re.findall(r"^\s+(?:'([^']+)'|(\w+)):\s*'((?:[^'\\]|\\.)*)',?$",
                             body.group(1), re.M)
        tables[lang] = {quoted or bare: value for quoted, bare, value in entries}
    return tables


def auction_reasons() -> set[str]:
    """Every refusal the auction's rules can give (bids, sign-in, pause, invite, close)."""
    source = (ROOT / "bidroom" / "auction" / "rules.py").read_text(encoding="utf-8")
    found = set(re.findall(r'(?:return|reason =) "([a-z_]+)"', source))
    found |= set(re.findall(r'CommandRefused\("[a-z_]+", "([a-z_]+)"\)', source))
    return found | set(REASONS)


def http_codes() -> set[str]:
    """Every error code an HTTP route declares (its own, and those every route may give)."""
    codes: set[str] = set()
    for op in operations():
        if op.path.startswith(OPENING_PATHS):
            continue
        for declared in op.all_errors().values():
            codes.update(declared)
    # Starlette's own answers (web.errors): an unknown path or method.
    return codes | {"not_found", "method_not_allowed", "http_error"}


def websocket_codes() -> set[str]:
    codes = set(WS_CLOSE)
    for name in WS_SOURCES:
        codes |= set(re.findall(r'code="([a-z_0-9]+)"', (ROOT / name).read_text("utf-8")))
    return codes


def every_code() -> set[str]:
    return auction_reasons() | http_codes() | websocket_codes()


def test_the_walk_finds_the_codes_it_should() -> None:
    """The collection itself works: known codes of each source are in it."""
    assert {"not_started", "insufficient_decrement", "already_paused", "not_due"} <= \
        auction_reasons()
    assert {"invalid_token", "auction_not_found", "credit_code_taken", "store_unavailable"} <= \
        http_codes()
    assert {"unknown_type", "already_authenticated", "slow_consumer"} <= websocket_codes()
    tables = dictionaries()
    assert len(tables["zh"]) > 400 and set(tables["zh"]) == set(tables["en"])


@pytest.mark.parametrize("code", sorted(every_code()))
def test_every_code_the_server_can_send_has_words_in_both_languages(code: str) -> None:
    tables = dictionaries()
    zh, en = tables["zh"].get(f"err.{code}"), tables["en"].get(f"err.{code}")
    assert zh and en, f"web/static/i18n.js has no err.{code} in " + \
        " and ".join(lang for lang, text in (("zh", zh), ("en", en)) if not text)
    assert re.search(r"[\u4e00-\u9fff]", zh), f"err.{code} (zh) is not Chinese: {zh!r}"
    assert " / " not in zh and code not in zh and code not in en
    assert not re.search(r"[\u4e00-\u9fff]", en.replace("签到", "")), \
        f"err.{code} (en) has Chinese: {en!r}"


def test_both_languages_have_the_same_keys() -> None:
    tables = dictionaries()
    assert sorted(set(tables["zh"]) ^ set(tables["en"])) == []


def test_reading_the_tables_without_node_gives_what_node_gives() -> None:
    from_node = node_tables()
    if from_node is None:
        if os.environ.get("BIDROOM_REQUIRE_BROWSER") == "1":  # CI installs nodejs: no skip there
            pytest.fail("node is not installed (apt-get install nodejs)")
        pytest.skip("node is not installed: the tables were read from the source")
    assert {lang: set(table) for lang, table in parsed_tables().items()} == \
        {lang: set(table) for lang, table in from_node.items()}
