"""The SQL regular expressions of an erasure: a whole address, a whole word, an exact @handle.

PostgreSQL runs them (AREs, with look-behind since 9.6); iaf.gdpr.scan holds their Python
twins for the files and vectors outside the database.
"""

from __future__ import annotations

import json
import re

TOMBSTONE = "[message removed: its author erased their account]"
ERASED = "[erased]"
REPLY_TOMBSTONE = "[reply removed: the person it answered erased their account]"


def quoted_identifier(name: str) -> str:
    """A table or column name as SQL, whatever it holds."""
    return '"' + name.replace('"', '""') + '"'


def regex_quote(value: str) -> str:
    """Escape a literal for a PostgreSQL ARE."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", value)


def like_pattern(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def word_regex(value: str) -> str:
    """Case-insensitive whole-word match, so erasing "Ann" leaves "Annual" alone."""
    start = r"\m" if re.match(r"\w", value[:1]) else ""
    end = r"\M" if re.match(r"\w", value[-1:]) else ""
    return start + regex_quote(value) + end


# The SQL twin of iaf.gdpr.scan.email_pattern: a whole address, so erasing ann@x.com leaves
# joann@x.com and ann@x.com.au alone (PostgreSQL AREs have look-behind since 9.6).
_ADDRESS_BEFORE = "[[:alnum:]_!#$%&*+/=?^`{|}~.-]"
_ADDRESS_AFTER = "[[:alnum:]_-]|\\.[[:alnum:]]"


def email_regex(email: str) -> str:
    forms = sorted({email, _json_escaped(email)}, key=len, reverse=True)
    alternatives = "|".join(regex_quote(f) for f in forms)
    return f"(?<!{_ADDRESS_BEFORE})(?:{alternatives})(?!{_ADDRESS_AFTER})"


def handle_regex(handle: str) -> str:
    """An @mention of exactly this handle: `@ann-lee` is not in `@ann-lee-3f2a` (a namesake's
    handle gets a suffix) nor in the address `x@ann-lee.org`."""
    return f"(?<![[:alnum:]_.+-])@{regex_quote(handle)}(?![[:alnum:]_-]|\\.[[:alnum:]])"


def _json_escaped(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]
