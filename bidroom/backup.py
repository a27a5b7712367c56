"""``bidroom backup`` / ``bidroom restore``: everything a server keeps, in one archive.

What a Bidroom server keeps, and where (``bidroom/config.py``, ``bidroom/stores/embedded.py``,
``bidroom/opening/store.py``):

==============================  ==========================================================
SQL                             registry, auctions, results, bid logs, openings and their
                                hash-chained log, sealed backup-key shares, audit trail
                                (``DATA_DIR/bidroom.db`` or ``BIDROOM_DATABASE_URL``)
Redis                           live auction rooms (the only copy of their bids until the
                                close), close and opening schedules (the embedded one's
                                AOF in ``DATA_DIR/redis``, or ``BIDROOM_REDIS_URL``)
``DATA_DIR/platform-key.pem``   the Ed25519 key that signs receipts and records
``DATA_DIR/ca/``                the platform CA: ``ca-key.pem``, ``ca-cert.pem``,
                                ``crl.pem``, ``issued/``, ``revoked/``, imported ``roots/``
``DATA_DIR/openings/``          the sealed bids (``<opening>/<sha256>.cms``) and the bids
                                their owners opened (``<opening>/opened/<supplier>/``)
``DATA_DIR/tendering/``         the lots' tender documents (``<lot>/<sha256>.bin``,
                                ``market.tendering.store``)
==============================  ==========================================================

The archive is a gzip'd tar, mode 0600, with ``manifest.json`` first (format, version, time,
SQL kind, Redis key count, and the SHA-256 and mode of every member), ``sql/bidroom.db``
(SQLite, taken with SQLite's online backup API) or ``sql/bidroom.pgdump`` (``pg_dump -Fc``),
``redis/keys.msgpack`` (every key as ``[key, pttl_ms, DUMP bytes]``, read with ``SCAN`` +
``DUMP``, on every master of a cluster) and ``data/…`` (the files above).

**Consistency** while the server runs (no pause is needed): Redis is copied first, then SQL,
then the files. The files are write-once and an upload is linked into place before its SQL row
commits, so every ciphertext the SQL copy names is in the archive. An auction closing between
the Redis and the SQL copy is in the SQL copy with its result and in the Redis copy still due:
after a restore the closer closes it again from the same bids and the stored result stands,
the same as after a crash between the two writes. Stopped server: the copy is exact (the
embedded Redis is started for the copy and stopped again).

**What it does not take** — by construction, a list of paths, not a directory copy: no
supplier's or official's private key (``bidroom demo`` keeps its suppliers' keys in
``DATA_DIR/suppliers/``; they stay out), no upload in progress (``.incoming``), no Redis socket,
log or pid file. Nothing from which a sealed bid can be opened is added: sealed bids stay
sealed to their suppliers' certificates and backup shares stay sealed to their officials'.
The CA key and the platform key are the operator's own secrets: keep the archive as you keep
them (encrypted, e.g. ``gpg -c``, access-controlled).

``restore`` writes into a *fresh* place: a data dir without a database, CA, openings or
platform key, and an empty Redis (``restore_target_not_empty`` otherwise), checks every
member's SHA-256 against the manifest (``backup_corrupted``), and re-creates the keys with
``RESTORE`` (keeping their remaining time to live).

Must not import: market, web.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final

import msgpack

from bidroom.config import Settings
from bidroom.errors import BidroomError, ConflictError, StoreError, ValidationError

__all__ = ["BACKUP_FORMAT", "BackupSummary", "create_backup", "restore_backup"]

BACKUP_FORMAT: Final = "bidroom-backup"
BACKUP_VERSION: Final = 1
PLATFORM_KEY: Final = "platform-key.pem"
MANIFEST: Final = "manifest.json"
SQLITE_MEMBER: Final = "sql/bidroom.db"
PGDUMP_MEMBER: Final = "sql/bidroom.pgdump"
REDIS_MEMBER: Final = "redis/keys.msgpack"
_CA_FILES: Final = ("ca-key.pem", "ca-cert.pem", "crl.pem")
# Folder → the file names it may hold: ``SERIAL.pem`` (hex), ``SERIAL.json``, and the
# certificates and CRLs the server reads from ``roots/``. A key someone wrote into one of these
# folders (``ca issue --out DATA_DIR/ca/issued``) stays out: by its name, or (roots) its content.
_CA_DIRS: Final = {
    "issued": re.compile(r"[0-9a-f]+\.pem"),
    "revoked": re.compile(r"[0-9a-f]+\.json"),
    "roots": re.compile(r"[^.].*\.(pem|crt|cer|crl)"),
}
_SCAN_COUNT: Final = 1000
#: What a restore may write: the SQL and Redis copies, and only the data dir's known places.
_RESTORABLE: Final = (SQLITE_MEMBER, PGDUMP_MEMBER, REDIS_MEMBER, f"data/{PLATFORM_KEY}",
                      "data/ca/", "data/openings/", "data/tendering/")


@dataclass
class BackupSummary:
    """What an archive holds (its manifest, read back)."""

    created_at: str
    sql: str
    redis_keys: int
    files: list[str] = field(default_factory=list)
    sealed_bids: int = 0


# ============================================================================ what to take


def _data_files(data_dir: Path) -> Iterator[tuple[str, Path]]:
    """(archive name under ``data/``, path) of every file to keep, by an explicit list."""
    key = data_dir / PLATFORM_KEY
    if key.is_file():
        yield PLATFORM_KEY, key
    ca = data_dir / "ca"
    for name in _CA_FILES:
        if (ca / name).is_file():
            yield f"ca/{name}", ca / name
    for folder, pattern in _CA_DIRS.items():
        directory = ca / folder
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                if (path.is_file() and pattern.fullmatch(path.name)
                        and not _holds_private_key(path)):
                    yield f"ca/{folder}/{path.name}", path
    openings = data_dir / "openings"
    if openings.is_dir():
        for opening in sorted(p for p in openings.iterdir() if p.is_dir()):
            for path in sorted(opening.glob("*.cms")):
                if path.is_file():
                    yield f"openings/{opening.name}/{path.name}", path
            opened = opening / "opened"
            if opened.is_dir():
                for path in sorted(opened.rglob("*")):
                    if path.is_file():
                        yield f"openings/{opening.name}/{path.relative_to(opening)}", path
    tendering = data_dir / "tendering"
    if tendering.is_dir():
        for lot in sorted(p for p in tendering.iterdir() if p.is_dir()):
            for path in sorted(lot.glob("*.bin")):
                if path.is_file():
                    yield f"tendering/{lot.name}/{path.name}", path


def _holds_private_key(path: Path) -> bool:
    with path.open("rb") as source:
        return b"PRIVATE KEY" in source.read(1 << 20)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# =================================================================================== SQL


def _sql_kind(url: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme.startswith("postgres"):
        return "postgresql"
    raise ValidationError(f"cannot back up a {scheme} database: SQLite and PostgreSQL only",
                          code="invalid_setting")


def _sqlite_file(url: str) -> Path:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValidationError(f"{url}: not a SQLite file", code="invalid_setting")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password (which goes to ``PGPASSWORD``, not the command line)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    if shutil.which(command[0]) is None:
        raise StoreError(f"{command[0]} is not installed: it is needed to {what}",
                         code="tool_missing")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StoreError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()}",
                         code="store_unavailable")


def _copy_sql(url: str, target: Path) -> str:
    kind = _sql_kind(url)
    if kind == "sqlite":
        source = _sqlite_file(url)
        if not source.is_file():
            raise StoreError(f"no database at {source}", code="store_unavailable")
        # The online backup API: a consistent copy even while the server writes.
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, \
                sqlite3.connect(target) as dst:
            src.backup(dst)
        return kind
    libpq, env = _libpq(url)
    _run(["pg_dump", "--format=custom", "--no-owner", f"--file={target}", f"--dbname={libpq}"],
         env, "back up PostgreSQL")
    return kind


def _restore_sql(url: str, kind: str, source: Path) -> None:
    if _sql_kind(url) != kind:
        raise ValidationError(f"the archive holds a {kind} database; the target is "
                              f"{_sql_kind(url)}", code="invalid_setting")
    if kind == "sqlite":
        target = _sqlite_file(url)
        if target.exists():
            raise ConflictError(f"{target} exists: restore into a fresh data dir",
                                code="restore_target_not_empty")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        os.chmod(target, 0o600)
        return
    libpq, env = _libpq(url)
    _run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq}", str(source)],
         env, "restore into PostgreSQL")


# ================================================================================= Redis


class _Redis:
    """The configured Redis, or the embedded one of ``DATA_DIR/redis`` (started if needed,
    stopped again afterwards only if it was not running)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._embedded: Any = None
        self._started = False

    def __enter__(self) -> str:
        if self._settings.redis_url is not None:
            return self._settings.redis_url
        from bidroom.stores.embedded import EmbeddedRedis

        self._embedded = EmbeddedRedis(self._settings.data_dir / "redis",
                                       appendfsync=self._settings.redis_appendfsync)
        self._started = not self._embedded.running()
        return str(self._embedded.start())

    def __exit__(self, *exc: object) -> None:
        if self._embedded is not None and self._started:
            self._embedded.stop()


async def _dump_keys(url: str) -> list[list[Any]]:
    from bidroom.stores.redis import connect_redis

    client = connect_redis(url)
    try:
        entries: list[list[Any]] = []
        async for key in client.scan_iter(count=_SCAN_COUNT):
            dumped = await client.dump(key)
            ttl = await client.pttl(key)
            if dumped is None or ttl == -2:  # gone (expired) since the SCAN
                continue
            entries.append([bytes(key), max(int(ttl), 0), bytes(dumped)])
        return entries
    finally:
        await client.aclose()


async def _restore_keys(url: str, entries: list[list[Any]]) -> None:
    from bidroom.stores.redis import connect_redis

    client = connect_redis(url)
    try:
        async for _ in client.scan_iter(count=1):
            raise ConflictError("the target Redis is not empty: restore into an empty one",
                                code="restore_target_not_empty")
        for key, ttl, dumped in entries:
            await client.restore(key, int(ttl), dumped)
    finally:
        await client.aclose()


# ============================================================================== the archive


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o600) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def create_backup(settings: Settings, out: Path, *, now: datetime) -> BackupSummary:
    """Write the archive of everything ``settings`` names to ``out`` (never overwritten;
    written to a temporary file and renamed, mode 0600). See the module doc."""
    out = Path(out).absolute()
    if out.exists():
        raise ConflictError(f"{out} exists: choose another --out", code="file_exists")
    if not out.parent.is_dir():
        raise ValidationError(f"{out.parent} is not a directory", code="invalid_input")
    data_dir = settings.data_dir
    members: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bidroom-backup-") as tmp:
        work = Path(tmp)
        with _Redis(settings) as redis_url:  # 1. Redis
            entries = asyncio.run(_dump_keys(redis_url))
        redis_blob = msgpack.packb(entries, use_bin_type=True)
        sql_file = work / "sql"  # 2. SQL
        kind = _copy_sql(settings.resolved_database_url(), sql_file)
        files = list(_data_files(data_dir))  # 3. files (write-once)
        sql_member = SQLITE_MEMBER if kind == "sqlite" else PGDUMP_MEMBER
        members.append({"name": sql_member, "sha256": _sha256(sql_file), "mode": 0o600})
        members.append({"name": REDIS_MEMBER, "sha256": hashlib.sha256(redis_blob).hexdigest(),
                        "mode": 0o600})
        for name, path in files:
            members.append({"name": f"data/{name}", "sha256": _sha256(path),
                            "mode": path.stat().st_mode & 0o777})
        manifest = {
            "format": BACKUP_FORMAT, "version": BACKUP_VERSION,
            "created_at": now.astimezone(UTC).isoformat(), "sql": kind,
            "redis_keys": len(entries), "members": members,
        }
        partial = out.with_name(f".{out.name}.part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                _add_bytes(tar, MANIFEST, json.dumps(manifest, ensure_ascii=False,
                                                     indent=1).encode("utf-8"))
                tar.add(sql_file, sql_member, recursive=False, filter=_private)
                _add_bytes(tar, REDIS_MEMBER, redis_blob)
                for name, path in files:
                    tar.add(path, f"data/{name}", recursive=False, filter=_anonymous)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return _summary(manifest)


def _private(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mode = 0o600
    return _anonymous(info)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _summary(manifest: dict[str, Any]) -> BackupSummary:
    names = [m["name"] for m in manifest["members"]]
    return BackupSummary(
        created_at=manifest["created_at"], sql=manifest["sql"],
        redis_keys=manifest["redis_keys"], files=names,
        sealed_bids=sum(1 for n in names if n.startswith("data/openings/")
                        and n.endswith(".cms") and "/opened/" not in n),
    )


def _corrupted(why: str) -> BidroomError:
    return ValidationError(f"not a usable Bidroom backup: {why}", code="backup_corrupted")


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise _corrupted(f"unsafe member name {name!r}")
    return path


def restore_backup(archive: Path, settings: Settings) -> BackupSummary:
    """Restore ``archive`` into the data dir, database and Redis that ``settings`` name,
    which must be fresh (see the module doc)."""
    data_dir = settings.data_dir
    for name in (PLATFORM_KEY, "ca", "openings", "tendering", "bidroom.db"):
        if (data_dir / name).exists():
            raise ConflictError(f"{data_dir / name} exists: restore into a fresh data dir",
                                code="restore_target_not_empty")
    try:
        tar = tarfile.open(archive, mode="r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise _corrupted(str(exc)) from exc
    with tar, tempfile.TemporaryDirectory(prefix="bidroom-restore-") as tmp:
        work = Path(tmp)
        try:
            manifest = json.loads(_read_member(tar, MANIFEST))
        except (KeyError, ValueError) as exc:
            raise _corrupted("no readable manifest.json") from exc
        if manifest.get("format") != BACKUP_FORMAT or manifest.get("version") != BACKUP_VERSION:
            raise _corrupted(f"format {manifest.get('format')!r} version "
                             f"{manifest.get('version')!r}")
        # Every member extracted and checked before anything is written to the target.
        staged: dict[str, Path] = {}
        for member in manifest["members"]:
            name = member["name"]
            if not name.startswith(_RESTORABLE):
                raise _corrupted(f"unexpected member {name!r}")
            target = work / _safe_name(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_read_member(tar, name))
            if _sha256(target) != member["sha256"]:
                raise _corrupted(f"{name} does not match its SHA-256")
            staged[name] = target
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        kind = manifest["sql"]
        sql_member = SQLITE_MEMBER if kind == "sqlite" else PGDUMP_MEMBER
        entries = msgpack.unpackb(staged[REDIS_MEMBER].read_bytes(), raw=False)
        with _Redis(settings) as redis_url:
            asyncio.run(_restore_keys(redis_url, entries))
        _restore_sql(settings.resolved_database_url(), kind, staged[sql_member])
        for member in manifest["members"]:
            name = member["name"]
            if not name.startswith("data/"):
                continue
            target = data_dir / _safe_name(name.removeprefix("data/"))
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(staged[name], target)
            os.chmod(target, int(member["mode"]) & 0o777)
    return _summary(manifest)


def _read_member(tar: tarfile.TarFile, name: str) -> bytes:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise _corrupted(f"{name} is missing") from None
    if not member.isfile():
        raise _corrupted(f"{name} is not a file")
    source = tar.extractfile(member)
    if source is None:
        raise _corrupted(f"{name} cannot be read")
    return source.read()

