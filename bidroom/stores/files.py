"""Content-addressed, write-once files under the data directory: the sealed bids
(``DATA_DIR/openings``, ``bidroom.opening.store.CiphertextFiles``) and the tender documents
(``DATA_DIR/tendering``, ``market.tendering.store.DocumentFiles``) are kept the same way.

A file is named by its SHA-256 (``<area>/<owner>/<sha256><suffix>``). An upload streams to a
temporary file beside its final place and is then hard-linked there read-only, so a stored file
is never overwritten, and a file of the same digest already there is kept as it is. A read
re-hashes the file first: a changed byte answers ``<what>_corrupted`` instead of the bytes.

Must not import: market, web.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from pathlib import Path
from typing import Final

from bidroom.errors import ConflictError

__all__ = ["HASH_CHUNK", "ContentFiles", "sha256_file"]

HASH_CHUNK: Final = 1 << 20


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks (hex)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as source:
        while chunk := source.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ContentFiles:
    """The files of one area of the data directory (``area``), named ``<sha256><suffix>``;
    ``what`` names them in errors (``ciphertext`` → ``ciphertext_corrupted``)."""

    def __init__(self, data_dir: Path, *, area: str, suffix: str, what: str) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / area
        self._area = area
        self._suffix = suffix
        self._what = what

    def relative_path(self, owner: str, sha256: str) -> str:
        return f"{self._area}/{owner}/{sha256}{self._suffix}"

    def path(self, relative: str) -> Path:
        return self.data_dir / relative

    def incoming_dir(self, owner: str) -> Path:
        """Where an upload streams to before it is kept (the same file system: the final step
        is a hard link)."""
        path = self.root / owner / ".incoming"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @staticmethod
    def temporary_name(directory: Path) -> Path:
        return directory / f"upload-{uuid.uuid4().hex}.part"

    def keep(self, owner: str, sha256: str, temporary: Path) -> str:
        """Move a checked upload into place (read-only). A file of that digest already there
        is kept as is (same content); the temporary file is removed."""
        relative = self.relative_path(owner, sha256)
        final = self.path(relative)
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(temporary, 0o440)
        try:
            os.link(temporary, final)  # never overwrites
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        return relative

    def verify(self, relative: str, sha256: str) -> Path:
        """The file's path after re-hashing it; ``<what>_corrupted`` if it changed, so nothing
        is served or decrypted but the bytes the SHA-256 on record names."""
        path = self.path(relative)
        code = f"{self._what}_corrupted"
        try:
            actual = sha256_file(path)
        except OSError as error:
            raise ConflictError(f"the stored {self._what} cannot be read: {error}",
                                code=code) from error
        if actual != sha256:
            raise ConflictError(f"the stored {self._what} does not match its SHA-256",
                                code=code, expected=sha256, actual=actual)
        return path
