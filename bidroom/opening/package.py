"""The bid package: what a supplier signs and seals (投标文件 + 开标一览表).

A package is a ZIP archive (entries stored or deflated, ZIP64 when large) holding exactly:

``opening-form.json``
    The 开标一览表 (opening form), read out to everyone at the opening (唱标, O87 41)::

        {"total_price_fen": 123450000, "delivery_days": 30, "warranty_months": 24,
         "items": [{"name": "品牌型号", "value": "X-200"}], ...}

    ``total_price_fen`` is a positive whole number of fen (never a float, see money.py);
    ``delivery_days`` a positive integer; ``warranty_months`` a non-negative integer;
    ``items`` a list of ``{"name": non-empty str, "value": str}``. Other keys are kept as
    given, but no number in the form may be a float. UTF-8 JSON, at most 1 MiB.
``documents/<name>``
    The bid documents (商务/技术文件), any number, flat names (no ``/``, ``\\``, ``..``,
    control characters), e.g. ``documents/技术方案.pdf``.

``build_package`` streams documents from disk (a 200 MiB bid never sits in memory); entries
whose type is already compressed (PDF, images, Office files, archives) are stored, others
deflated. ``read_package`` checks the layout and the form without extracting documents.
Errors: ``ValidationError`` with code ``invalid_opening_form`` or ``invalid_package``.

Rules: 电子招标投标办法 (bids are submitted as electronic files, 26–31); 政府采购法实施条例 /
O87 41 (the opening form is read out).

Must not import: market, web.
"""

from __future__ import annotations

import json
import shutil
import unicodedata
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from bidroom.errors import ValidationError
from bidroom.money import parse_fen

__all__ = [
    "DOCUMENTS_DIR",
    "FORM_FILE",
    "MAX_FORM_BYTES",
    "PackageContents",
    "build_package",
    "read_package",
    "validate_form",
]

FORM_FILE = "opening-form.json"
DOCUMENTS_DIR = "documents/"
MAX_FORM_BYTES = 1 << 20
MAX_ITEMS = 500
_COPY_CHUNK = 1 << 20
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # reproducible archives: no clock in the package
# Already compressed: deflating them again costs time and saves nothing.
_STORED_SUFFIXES = frozenset(
    ".pdf .ofd .zip .rar .7z .gz .bz2 .xz .zst .jpg .jpeg .png .gif .webp .heic .tif .tiff "
    ".mp4 .mov .mp3 .docx .xlsx .pptx .odt .ods .wps .et .dps".split()
)


@dataclass(frozen=True, slots=True)
class PackageContents:
    """A checked package: its opening form and the names of its documents (without the
    ``documents/`` prefix), in archive order."""

    form: dict[str, Any]
    documents: list[str]


def _invalid_form(message: str, **details: Any) -> ValidationError:
    return ValidationError(
        f"the opening form (开标一览表) is invalid: {message}",
        code="invalid_opening_form",
        **details,
    )


def _invalid_package(message: str) -> ValidationError:
    return ValidationError(f"not a valid bid package: {message}", code="invalid_package")


def _whole(value: Any, field: str, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_form(
            f"{field} must be a whole number, not {type(value).__name__}", field=field
        )
    if not minimum <= value <= maximum:
        raise _invalid_form(f"{field} must be between {minimum} and {maximum}", field=field)
    return value


def _no_floats(value: Any, where: str) -> None:
    if isinstance(value, float):
        raise _invalid_form(f"{where} is a float: numbers in the form are whole", field=where)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _invalid_form(f"{where}: keys must be strings", field=where)
            _no_floats(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _no_floats(item, f"{where}[{index}]")
    elif not (value is None or isinstance(value, str | int | bool)):
        raise _invalid_form(f"{where} is not JSON ({type(value).__name__})", field=where)


def validate_form(form: Any) -> dict[str, Any]:
    """Check an opening form (see the module doc); return it as a new dict."""
    if not isinstance(form, Mapping):
        raise _invalid_form("it must be a JSON object")
    checked: dict[str, Any] = dict(form)
    for required in ("total_price_fen", "delivery_days", "warranty_months", "items"):
        if required not in checked:
            raise _invalid_form(f"{required} is missing", field=required)
    try:
        parse_fen(
            checked["total_price_fen"], field="total_price_fen", code="invalid_opening_form"
        )
    except ValidationError as exc:
        raise _invalid_form(exc.message, field="total_price_fen") from None
    _whole(checked["delivery_days"], "delivery_days", minimum=1, maximum=36_500)
    _whole(checked["warranty_months"], "warranty_months", minimum=0, maximum=1_200)
    items = checked["items"]
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        raise _invalid_form(f"items must be a list of at most {MAX_ITEMS}", field="items")
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise _invalid_form(f"{where} must be an object", field=where)
        name, value = item.get("name"), item.get("value")
        if not isinstance(name, str) or not name.strip():
            raise _invalid_form(f"{where}.name must be a non-empty string", field=where)
        if not isinstance(value, str):
            raise _invalid_form(f"{where}.value must be a string", field=where)
    for key, value in checked.items():
        if not isinstance(key, str):
            raise _invalid_form("keys must be strings")
        _no_floats(value, key)
    return checked


def _form_bytes(form: dict[str, Any]) -> bytes:
    data = json.dumps(form, ensure_ascii=False, indent=2, allow_nan=False).encode("utf-8")
    if len(data) > MAX_FORM_BYTES:
        raise _invalid_form(f"it is larger than {MAX_FORM_BYTES} bytes")
    return data + b"\n"


def check_document_name(raw_name: Any) -> str:
    """A document's file name: flat, printable, at most 200 characters; returned in NFC."""
    if not isinstance(raw_name, str):
        raise _invalid_package("a document name must be a string")
    name = unicodedata.normalize("NFC", raw_name)
    if (
        not name
        or len(name) > 200
        or name in (".", "..")
        or name != name.strip()
        or any(ch in name for ch in "/\\")
        or any(unicodedata.category(ch)[0] == "C" for ch in name)
    ):
        raise _invalid_package(f"bad document name {name!r}")
    return name


def _zip_info(arcname: str, size: int, *, compress: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=_FIXED_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.file_size = size  # lets zipfile choose ZIP64 up front for large files
    info.external_attr = 0o644 << 16
    return info


def build_package(
    form: Mapping[str, Any], documents: Mapping[str, bytes | Path], out: BinaryIO
) -> None:
    """Write a bid package to ``out`` (a binary file; need not be seekable).

    ``documents`` maps a file name (becomes ``documents/<name>``) to its bytes or to a
    path on disk, which is streamed in 1 MiB chunks.
    """
    checked = validate_form(form)
    names: dict[str, bytes | Path] = {}
    for raw_name, source in documents.items():
        name = check_document_name(raw_name)
        if name.casefold() in {n.casefold() for n in names}:
            raise _invalid_package(f"two documents are named {name!r}")
        if not isinstance(source, bytes | bytearray | Path):
            raise _invalid_package(f"document {name!r}: give bytes or a Path")
        if isinstance(source, Path) and not source.is_file():
            raise _invalid_package(f"document {name!r}: {source} is not a readable file")
        names[name] = source
    with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
        form_data = _form_bytes(checked)
        archive.writestr(_zip_info(FORM_FILE, len(form_data), compress=True), form_data)
        for name, source in names.items():
            compress = PurePosixPath(name).suffix.lower() not in _STORED_SUFFIXES
            if isinstance(source, Path):
                size = source.stat().st_size
                info = _zip_info(DOCUMENTS_DIR + name, size, compress=compress)
                with source.open("rb") as src, archive.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, _COPY_CHUNK)
            else:
                info = _zip_info(DOCUMENTS_DIR + name, len(source), compress=compress)
                archive.writestr(info, bytes(source))


def read_package(path: Path) -> PackageContents:
    """Open and check a package: the layout, the form; documents are listed, not read."""
    try:
        archive = zipfile.ZipFile(Path(path))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _invalid_package(f"{Path(path).name} is not a ZIP archive ({exc})") from exc
    with archive:
        form_info: zipfile.ZipInfo | None = None
        documents: list[str] = []
        seen: set[str] = set()
        for info in archive.infolist():
            if info.filename in seen:
                raise _invalid_package(f"{info.filename!r} appears twice")
            seen.add(info.filename)
            if info.flag_bits & 0x1:
                raise _invalid_package(f"{info.filename!r} is encrypted inside the ZIP")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _invalid_package(f"{info.filename!r} uses an unsupported compression")
            if info.filename == FORM_FILE:
                form_info = info
            elif info.filename == DOCUMENTS_DIR and info.is_dir():
                continue
            elif info.filename.startswith(DOCUMENTS_DIR):
                name = info.filename[len(DOCUMENTS_DIR) :]
                if check_document_name(name) != name:
                    raise _invalid_package(f"document name {name!r} is not in NFC form")
                documents.append(name)
            else:
                raise _invalid_package(
                    f"unexpected entry {info.filename!r} (only {FORM_FILE} and "
                    f"{DOCUMENTS_DIR}<name>)"
                )
        if form_info is None:
            raise _invalid_package(f"{FORM_FILE} (开标一览表) is missing")
        if form_info.file_size > MAX_FORM_BYTES:
            raise _invalid_form(f"it is larger than {MAX_FORM_BYTES} bytes")
        try:
            with archive.open(form_info) as entry:
                data = entry.read(MAX_FORM_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise _invalid_package(f"{FORM_FILE} cannot be read ({exc})") from exc
    if len(data) > MAX_FORM_BYTES:
        raise _invalid_form(f"it is larger than {MAX_FORM_BYTES} bytes")
    try:
        form = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, a 5000-digit int
        raise _invalid_form(f"not UTF-8 JSON ({exc})") from exc
    return PackageContents(form=validate_form(form), documents=documents)
