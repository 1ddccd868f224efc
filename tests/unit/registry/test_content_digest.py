"""The content digest of a model directory: stable, and sensitive to names and bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from seaway.registry.digest import directory_digest


def make(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_digest_is_the_documented_formula(tmp_path: Path) -> None:
    root = make(tmp_path, {"MLmodel": b"flavors: {}\n", "sub/model.pkl": b"\x00\x01"})
    lines = "".join(
        f"{name}\0{hashlib.sha256(data).hexdigest()}\n"
        for name, data in sorted(
            {"MLmodel": b"flavors: {}\n", "sub/model.pkl": b"\x00\x01"}.items()
        )
    )
    assert directory_digest(root) == "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def test_same_files_same_digest_wherever_they_are(tmp_path: Path) -> None:
    files = {"MLmodel": b"a", "b/c": b"d"}
    assert directory_digest(make(tmp_path / "one", files)) == directory_digest(
        make(tmp_path / "two", files)
    )


@pytest.mark.parametrize(
    "changed",
    [{"MLmodel": b"b", "b/c": b"d"}, {"MLmodel": b"a", "b/x": b"d"}, {"MLmodel": b"a"}],
    ids=["content", "name", "missing-file"],
)
def test_any_change_changes_the_digest(tmp_path: Path, changed: dict[str, bytes]) -> None:
    original = directory_digest(make(tmp_path / "one", {"MLmodel": b"a", "b/c": b"d"}))
    assert directory_digest(make(tmp_path / "two", changed)) != original


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        directory_digest(tmp_path / "f")
