"""Looking for a subject in serialized data (Temporal histories, Qdrant payloads, archives).

E-mail addresses match only as whole addresses: erasing ann@x.com must not see joann@x.com or
ann@x.com.au. Names match as whole words ("Ann" is not in "Annual"); a name is evidence of
the subject only when it is distinctive (iaf.privacy.names), else a match is for review.
Ids (UUIDs) match as they are. The subject's messages match as copied word runs ("text",
iaf.privacy.fingerprints). The same boundaries are used in SQL (iaf.db.erasure_patterns).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field

from iaf.privacy.fingerprints import longest_copy
from iaf.privacy.names import is_distinctive

# Characters that may sit next to an address without ending it: a match preceded by one of
# these is the tail of a longer address (jo|ann@x.com), one followed by a domain character
# or by ".tld" is the head of a longer domain (ann@x.com|.au). An apostrophe ends an address
# here: quoting 'ann@x.com' is far more common than an apostrophe inside one.
EMAIL_BEFORE = r"[\w!#$%&*+/=?^`{|}~.-]"
EMAIL_AFTER = r"[\w-]|\.\w"


def _forms(value: str) -> list[str]:
    """The value as written and as JSON escapes it (ASCII-only escaping included)."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def email_pattern(email: str) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(f) for f in _forms(email))
    return re.compile(f"(?<!{EMAIL_BEFORE})(?:{alternatives})(?!{EMAIL_AFTER})", re.IGNORECASE)


def word_pattern(value: str) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(f) for f in _forms(value))
    start = r"(?<!\w)" if re.match(r"\w", value[:1]) else ""
    end = r"(?!\w)" if re.match(r"\w", value[-1:]) else ""
    return re.compile(f"{start}(?:{alternatives}){end}", re.IGNORECASE)


# JSON and protobuf escapes that would glue two words together ("a\\nb" is "a", "b").
_ESCAPES = re.compile(r"\\[nrt]")


@dataclass(frozen=True)
class Needles:
    """One compiled pattern per kind of identifier ("email", "name", "id"), and the
    fingerprints of the subject's messages ("text")."""

    by_kind: dict[str, re.Pattern[str]]
    prints: Collection[str] = field(default=frozenset())
    # Whether the name alone points at the subject (iaf.privacy.names).
    name_is_evidence: bool = True

    @classmethod
    def of(
        cls, email: str, name: str, user_id: str, prints: Collection[str] = frozenset()
    ) -> Needles:
        return cls(
            {
                "email": email_pattern(email),
                "name": word_pattern(name),
                "id": re.compile(re.escape(user_id), re.IGNORECASE),
            },
            prints,
            is_distinctive(name),
        )

    def found_in_text(self, text: str) -> list[str]:
        kinds = [kind for kind, pattern in self.by_kind.items() if pattern.search(text)]
        if self.prints and longest_copy(_ESCAPES.sub(" ", text), self.prints):
            kinds.append("text")
        return kinds

    def evidence(self, kinds: Collection[str]) -> bool:
        """Whether what was found ties a record to the subject by itself."""
        return any(k != "name" or self.name_is_evidence for k in kinds)

    def found_in(self, blob: bytes) -> list[str]:
        """Serialized protobuf or JSON: text fields are UTF-8 runs inside the bytes."""
        return self.found_in_text(blob.decode("utf-8", "replace"))
