"""Where dataset files come from: a folder (searched recursively) or a zip archive, both seen
as sorted relative POSIX paths whose bytes can be read."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import IO

from .images import is_image_file


class FolderSource:
    """The files under ``root``, recursively; names are POSIX paths relative to ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"{self.root} is not a directory")

    def names(self) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for filename in filenames:
                found.append((Path(dirpath) / filename).relative_to(self.root).as_posix())
        return sorted(found)

    def open(self, name: str) -> IO[bytes]:
        return open(self.root / name, "rb")

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def __repr__(self) -> str:
        return f"FolderSource({str(self.root)!r})"


class ZipSource:
    """The file entries of the zip archive at ``path``.

    The archive is opened lazily and reopened in each process, so a dataset over it can be
    handed to DataLoader workers (a ZipFile handle must not be shared across a fork).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not zipfile.is_zipfile(self.path):
            raise ValueError(f"{self.path} is not a zip archive")
        self._zip: zipfile.ZipFile | None = None
        self._pid: int | None = None

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._pid = os.getpid()
        return self._zip

    def names(self) -> list[str]:
        return sorted(info.filename for info in self._archive().infolist() if not info.is_dir())

    def open(self, name: str) -> IO[bytes]:
        return self._archive().open(name)

    def read(self, name: str) -> bytes:
        return self._archive().read(name)

    def __getstate__(self):
        return {"path": self.path, "_zip": None, "_pid": None}

    def __repr__(self) -> str:
        return f"ZipSource({str(self.path)!r})"


def open_source(path: str | os.PathLike) -> FolderSource | ZipSource:
    """A :class:`FolderSource` for a directory, a :class:`ZipSource` for a zip archive."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"dataset path {path} does not exist")
    if path.is_dir():
        return FolderSource(path)
    if zipfile.is_zipfile(path):
        return ZipSource(path)
    raise ValueError(f"dataset path {path} is neither a directory nor a zip archive")


def image_names(source: FolderSource | ZipSource) -> list[str]:
    """The PNG/JPEG files of ``source``, sorted."""
    return [name for name in source.names() if is_image_file(name)]
