"""What a file is, judged from its bytes; the name only picks between text flavours.

Accepted: PNG, JPEG, GIF and WebP images (decoded by Pillow, so a file that only starts like
an image is refused), PDF (opened by pypdf), and UTF-8 text without NUL bytes. Anything else
(SVG, HTML pretending to be text is still text and served as text/plain, archives,
executables) is refused: 415 with what was found.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import PurePath

from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from iaf.errors import ApiError

_IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF87a", "image"),
    (b"GIF89a", "image"),
    (b"%PDF-", "pdf"),
)
_TEXT_TYPES = {".md": "text/markdown", ".markdown": "text/markdown", ".csv": "text/csv"}
MAX_IMAGE_PIXELS = 50_000_000


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    kind: str  # image | pdf | text
    width: int | None = None
    height: int | None = None


def _image(data: bytes) -> Sniffed:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or ""
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ApiError(413, "image_too_large", "the image has too many pixels")
                image.verify()
    except ApiError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Warning):
        raise ApiError(
            415, "unreadable_image", "the file starts like an image but is not one"
        ) from None
    if kind not in _IMAGE_TYPES:
        raise ApiError(415, "unsupported_type", f"{kind or 'this'} images are not accepted")
    return Sniffed(_IMAGE_TYPES[kind], "image", width, height)


def _pdf(data: bytes) -> Sniffed:
    try:
        reader = PdfReader(io.BytesIO(data))
        if not reader.is_encrypted:
            len(reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError, OSError):
        raise ApiError(415, "unreadable_pdf", "the file starts like a PDF but is not one") from None
    return Sniffed("application/pdf", "pdf")


def sniff(name: str, data: bytes) -> Sniffed:
    """The file's type from its content, or a 415 ApiError."""
    if not data:
        raise ApiError(422, "empty_file", "the file is empty")
    is_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    kind = "image" if is_webp else next((k for sig, k in _SIGNATURES if data.startswith(sig)), "")
    if kind == "image":
        return _image(data)
    if kind == "pdf":
        return _pdf(data)
    if b"\x00" in data:
        raise ApiError(415, "unsupported_type", "accepted: images, PDF and UTF-8 text")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(415, "unsupported_type", "accepted: images, PDF and UTF-8 text") from None
    suffix = PurePath(name.lower()).suffix
    return Sniffed(_TEXT_TYPES.get(suffix, "text/plain") + "; charset=utf-8", "text")
