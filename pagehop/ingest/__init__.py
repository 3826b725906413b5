"""Document ingestion: files in, pages, images, text, chunks and channel data out."""

from pagehop.ingest.files import IngestError
from pagehop.ingest.pipeline import IngestedDocument, IngestReport, delete, ingest

__all__ = ["IngestError", "IngestReport", "IngestedDocument", "delete", "ingest"]
