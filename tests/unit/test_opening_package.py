"""The bid package: the opening form (开标一览表) and documents in a checked ZIP."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bidroom.errors import ValidationError
from bidroom.opening.package import FORM_FILE, build_package, read_package, validate_form

FORM: dict[str, Any] = {
    "total_price_fen": 123_450_000,
    "delivery_days": 30,
    "warranty_months": 24,
    "items": [{"name": "品牌型号", "value": "X-200"}, {"name": "产地", "value": "中国"}],
    "remarks": "含税含运费",
}


class _NonSeekable(io.RawIOBase):
    """A write-only stream without seek/tell (a pipe, an HTTP body)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return len(b)


def _build(tmp_path: Path, form: dict[str, Any], documents: dict[str, bytes | Path]) -> Path:
    path = tmp_path / "package.zip"
    with path.open("wb") as out:
        build_package(form, documents, out)
    return path


def test_a_package_round_trips_the_form_and_lists_the_documents(tmp_path: Path) -> None:
    on_disk = tmp_path / "技术方案.pdf"
    on_disk.write_bytes(b"%PDF-1.7 " + bytes(range(256)) * 100)
    path = _build(tmp_path, FORM, {"技术方案.pdf": on_disk, "报价说明.txt": "说明".encode()})
    contents = read_package(path)
    assert contents.form == FORM
    assert contents.documents == ["技术方案.pdf", "报价说明.txt"]
    with zipfile.ZipFile(path) as archive:
        assert archive.read("documents/技术方案.pdf") == on_disk.read_bytes()
        kinds = {i.filename: i.compress_type for i in archive.infolist()}
    assert kinds["documents/技术方案.pdf"] == zipfile.ZIP_STORED  # already compressed
    assert kinds["documents/报价说明.txt"] == zipfile.ZIP_DEFLATED
    assert kinds[FORM_FILE] == zipfile.ZIP_DEFLATED


def test_a_package_can_be_written_to_a_stream_that_cannot_seek(tmp_path: Path) -> None:
    sink = _NonSeekable()
    doc = tmp_path / "a.bin"
    doc.write_bytes(b"x" * 100_000)
    build_package(FORM, {"a.bin": doc}, sink)  # type: ignore[arg-type]
    path = tmp_path / "streamed.zip"
    path.write_bytes(bytes(sink.data))
    assert read_package(path).documents == ["a.bin"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"total_price_fen": 1234.5}, "total_price_fen"),
        ({"total_price_fen": 1000.0}, "total_price_fen"),
        ({"total_price_fen": "1000"}, "total_price_fen"),
        ({"total_price_fen": True}, "total_price_fen"),
        ({"total_price_fen": 0}, "total_price_fen"),
        ({"total_price_fen": -5}, "total_price_fen"),
        ({"delivery_days": 0}, "delivery_days"),
        ({"delivery_days": 1.5}, "delivery_days"),
        ({"warranty_months": -1}, "warranty_months"),
        ({"items": "none"}, "items"),
        ({"items": [{"name": "", "value": "x"}]}, "items[0]"),
        ({"items": [{"name": "a", "value": 3}]}, "items[0]"),
        ({"discount": 0.1}, "discount"), ({"extra": {"rate": [1, 2.5]}}, "extra.rate[1]"),
    ],
)
def test_an_invalid_opening_form_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_form({**FORM, **change})
    assert info.value.code == "invalid_opening_form"
    assert info.value.details["field"] == field


@pytest.mark.parametrize("missing", ["total_price_fen", "delivery_days", "warranty_months",
                                     "items"])
def test_every_required_field_must_be_present(missing: str) -> None:
    form = {k: v for k, v in FORM.items() if k != missing}
    with pytest.raises(ValidationError) as info:
        validate_form(form)
    assert info.value.code == "invalid_opening_form"


@pytest.mark.parametrize("name", ["", "../x", "a/b", "a\\b", ".", "..", " lead", "nul\x00",
                                  "x" * 201])
def test_unsafe_document_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValidationError) as info:
        _build(tmp_path, FORM, {name: b"x"})
    assert info.value.code == "invalid_package"


def test_two_documents_with_the_same_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        _build(tmp_path, FORM, {"A.pdf": b"1", "a.PDF": b"2"})
    assert info.value.code == "invalid_package"


def _zip(tmp_path: Path, entries: dict[str, bytes]) -> Path:
    path = tmp_path / "crafted.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_read_package_refuses_what_is_not_a_package(tmp_path: Path) -> None:
    form_bytes = json.dumps(FORM).encode()
    cases = {
        "not a zip": None,
        "no form": {"documents/a.pdf": b"x"},
        "extra entry": {FORM_FILE: form_bytes, "evil.exe": b"MZ"},
        "nested path": {FORM_FILE: form_bytes, "documents/../../x": b"x"},
    }
    for label, entries in cases.items():
        if entries is None:
            path = tmp_path / "plain.pdf"
            path.write_bytes(b"%PDF-1.4 not a zip")
        else:
            path = _zip(tmp_path, entries)
        with pytest.raises(ValidationError) as info:
            read_package(path)
        assert info.value.code == "invalid_package", label


def test_read_package_refuses_a_bad_form_inside(tmp_path: Path) -> None:
    for data in (b"{not json", json.dumps({**FORM, "total_price_fen": 99.5}).encode(),
                 b'{"total_price_fen": NaN}', b"[]"):
        path = _zip(tmp_path, {FORM_FILE: data})
        with pytest.raises(ValidationError) as info:
            read_package(path)
        assert info.value.code == "invalid_opening_form"
