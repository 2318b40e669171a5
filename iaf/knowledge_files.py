"""Text from an uploaded knowledge file (.md, .txt or .pdf), its type judged by its bytes.

The file name only says what the person meant; the content decides: a PDF must start with
the PDF signature and yield text (pypdf), a text file must be UTF-8 without NUL bytes. A
mismatch (a PDF named .txt, an image named .md) is refused, never guessed around.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import PurePath

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from iaf.errors import ApiError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
PDF_SUFFIX = ".pdf"
PDF_SIGNATURE = b"%PDF-"
MAX_PDF_PAGES = 500


@dataclass(frozen=True)
class ExtractedFile:
    title: str
    text: str
    kind: str  # "markdown" | "text" | "pdf"


def _title(filename: str) -> str:
    stem = PurePath(filename.replace("\\", "/")).name
    for suffix in (*TEXT_SUFFIXES, PDF_SUFFIX):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return " ".join(stem.split())[:200] or "Untitled"


def _pdf_text(data: bytes) -> str:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ApiError(422, "pdf_encrypted", "the PDF is encrypted; upload an open copy")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise ApiError(413, "pdf_too_long", f"the PDF has over {MAX_PDF_PAGES} pages")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ApiError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        log.info("unreadable PDF upload: %s", type(exc).__name__)
        raise ApiError(422, "pdf_unreadable", "the PDF could not be read") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise ApiError(422, "pdf_no_text", "the PDF has no text (a scan needs OCR first)")
    return text


def _plain_text(data: bytes) -> str:
    if data.startswith(PDF_SIGNATURE):
        raise ApiError(415, "type_mismatch", "the file is a PDF; name it .pdf")
    if b"\x00" in data:
        raise ApiError(415, "not_text", "the file is not text (it holds binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(415, "not_text", "the file is not UTF-8 text") from None
    if not text.strip():
        raise ApiError(422, "empty_content", "the file is empty")
    return text


def extract(filename: str, data: bytes) -> ExtractedFile:
    """The title (from the file name) and text of an upload, or an ApiError (415, 413 or 422)."""
    suffix = PurePath(filename.lower()).suffix
    if suffix == PDF_SUFFIX:
        if not data.startswith(PDF_SIGNATURE):
            raise ApiError(415, "type_mismatch", "the file is named .pdf but is not a PDF")
        return ExtractedFile(_title(filename), _pdf_text(data), "pdf")
    if suffix in TEXT_SUFFIXES:
        kind = "text" if suffix == ".txt" else "markdown"
        return ExtractedFile(_title(filename), _plain_text(data), kind)
    raise ApiError(415, "unsupported_type", "upload a .md, .txt or .pdf file")
