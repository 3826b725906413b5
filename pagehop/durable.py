"""Files that are replaced whole and must survive a crash: the old version or the new one, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A file to write ``path``'s new content into. When the block ends without an error the content is
    fsynced and renamed over ``path`` in one step (a temporary file beside it, then ``os.replace``); on an
    error the temporary is removed and ``path`` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def is_temporary_of(candidate: Path, path: Path) -> bool:
    """``candidate`` is a temporary :func:`replacing` left for ``path`` (its writer was killed mid-write)."""
    return candidate.name.startswith(f".{path.name}.") and candidate.name.endswith(".tmp")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
