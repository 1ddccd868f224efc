"""A content digest of a model directory, recorded at registration and checkable after download.

`seaway registry register` computes it over the exact files it uploads and
stores it as the version tag `seaway.content_digest`; the resolver passes it on
(`ResolvedModel.content_digest`) so whoever downloads the files can compare.

    sha256( for each file, sorted by its POSIX path relative to the root:
            "<path>\\0<sha256 hex of the file>\\n" )

Written as `sha256:<hex>`. Standard library only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PREFIX = "sha256:"
TAG = "seaway.content_digest"
"""The model-version tag that holds the digest."""
_CHUNK = 1 << 20


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def directory_digest(root: Path) -> str:
    """`sha256:<hex>` over every regular file below `root` (names and contents)."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    total = hashlib.sha256()
    for relative, path in files:
        total.update(f"{relative}\0{_file_sha256(path)}\n".encode())
    return PREFIX + total.hexdigest()
