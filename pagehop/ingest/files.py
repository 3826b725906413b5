"""Which files can be ingested: content-hash ids, type detection by magic bytes, size limits.

The extension says what the user believes a file is; the first bytes say what it is. Both
must agree, so a PNG renamed ``report.pdf`` or an executable renamed ``notes.txt`` fails
with a clear message instead of reaching a parser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pagehop.schema import DocKind

EXTENSIONS: dict[str, DocKind] = {
    ".pdf": "pdf",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
    ".txt": "text",
    ".md": "text",
    ".markdown": "text",
}

# Magic bytes → (format name, document kind).
_MAGIC: tuple[tuple[bytes, str, DocKind], ...] = (
    (b"%PDF-", "PDF", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "PNG", "image"),
    (b"\xff\xd8\xff", "JPEG", "image"),
    (b"II*\x00", "TIFF", "image"),
    (b"MM\x00*", "TIFF", "image"),
)
_SNIFF_BYTES = 8192


class IngestError(Exception):
    """This one file cannot be ingested; the message says why. The rest of the batch goes on."""


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    kind: DocKind
    size_bytes: int
    doc_id: str


def content_doc_id(path: Path, copy_to: BinaryIO | None = None) -> str:
    """sha256 of the file's bytes, first 16 hex digits: the same content always gets the same id.
    ``copy_to``: also write the bytes read there, so the copy's id is the one returned."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            if copy_to is not None:
                copy_to.write(block)
    return digest.hexdigest()[:16]


def sniff_kind(head: bytes) -> tuple[str, DocKind | None]:
    """(format name, kind) from a file's first bytes; kind None when it is not a supported binary format."""
    # The PDF spec lets the header sit anywhere in the first 1024 bytes (some writers prepend junk).
    if b"%PDF-" in head[:1024]:
        return "PDF", "pdf"
    for magic, name, kind in _MAGIC[1:]:
        if head.startswith(magic):
            return name, kind
    if b"\x00" in head:
        return "binary data", None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sniff boundary is still text.
        if exc.start < len(head) - 3:
            return "binary data", None
    return "text", "text"


def inspect_file(path: Path, max_file_mb: float) -> SourceFile:
    """Check one file before anything is written: supported, correctly labelled, within the size limit."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise IngestError(f"{path}: not a file")
    kind = EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        supported = ", ".join(sorted(EXTENSIONS))
        raise IngestError(f"{path}: unsupported file type {path.suffix or '(no extension)'}; supported: {supported}")
    size = path.stat().st_size
    if size > max_file_mb * 1024 * 1024:
        megabytes = size / 1024 / 1024
        raise IngestError(f"{path}: {megabytes:.1f} MB is over the {max_file_mb:g} MB limit (ingest.max_file_mb)")
    if size == 0:
        raise IngestError(f"{path}: empty file")
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    found_name, found_kind = sniff_kind(head)
    if found_kind != kind:
        raise IngestError(
            f"{path}: the extension {path.suffix} says {kind}, but the content is {found_name}; "
            "rename it to match its content"
        )
    return SourceFile(path=path, kind=kind, size_bytes=size, doc_id=content_doc_id(path))


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files to ingest: named files as given, folders walked recursively in name order.

    Inside folders, hidden entries and files with unsupported extensions are passed over
    silently (a folder of PDFs often holds a stray .DS_Store); a file named explicitly is
    always attempted, so an unsupported one gets an error.
    """
    for path in paths:
        path = path.expanduser()
        if not path.is_dir():
            yield path
            continue
        for child in sorted(path.rglob("*")):
            hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
            if not hidden and child.is_file() and child.suffix.lower() in EXTENSIONS:
                yield child
