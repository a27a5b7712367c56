"""The browser tests fail, not pass, on a machine where Chinese would render as boxes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import cjk_font_missing


def test_a_machine_without_a_cjk_font_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fontconfig with one empty font directory: what a bare headless Linux box has.
    (tmp_path / "fonts").mkdir()
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>{tmp_path / 'fonts'}</dir><cachedir>{tmp_path / 'cache'}</cachedir>"
        "</fontconfig>", encoding="utf-8")
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    why = cjk_font_missing()
    assert why is not None and "fonts-noto-cjk" in why


def test_this_machine_has_a_cjk_font_for_the_pages() -> None:
    assert cjk_font_missing() is None
