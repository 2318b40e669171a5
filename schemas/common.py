"""Shared request types and response shapes."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel

T = TypeVar("T")

# The largest value a PostgreSQL bigint (every id and cursor here) holds: larger ones are a
# client's mistake (422), not a database error.
MAX_BIGINT = 2**63 - 1


def valid_unicode(value: str) -> str:
    """Text that can be encoded as UTF-8: JSON's "\\ud800" decodes to a lone surrogate that
    cannot, and would fail wherever the text is encoded (the database driver, a hash)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "text must be valid Unicode: it contains an unpaired surrogate (U+D800-U+DFFF)"
            ) from None
    return value


def storable_text(value: str) -> str:
    """Text PostgreSQL can store: valid Unicode without NUL (U+0000), which it refuses."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL (U+0000) characters")
    return valid_unicode(value)


# Every text field a client sends and the database stores uses this type.
SafeStr = Annotated[str, AfterValidator(storable_text)]


def non_blank(value: str) -> str:
    """A name or title: surrounding whitespace dropped, and something must be left."""
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


# Names and titles people see in lists: stored text, trimmed, never blank.
NameStr = Annotated[str, AfterValidator(storable_text), AfterValidator(non_blank)]
# Text that is never stored as such (a password is only hashed): NUL is harmless there,
# and refusing it would lock out an account created with one.
UnicodeStr = Annotated[str, AfterValidator(valid_unicode)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_before: int | None = None
    next_after: int | None = None
