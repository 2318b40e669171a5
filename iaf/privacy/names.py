"""When a person's name in free text may be replaced without asking anyone.

A name is free text, not an identifier: "May", "Ali" or a person called "the" are words
other people use about other things. So an erasure replaces a name on its own only when it
is a full name (two words or more, not all of them everyday words) and nobody else around
(the organisation, the room) is called the same; every other match is counted for review.
Structured mentions (@handle, mention records) are identifiers and are always replaced.
"""

from __future__ import annotations

import re

# Everyday words in the languages the product speaks; a name made only of these is too
# likely to be someone's ordinary sentence.
_EVERYDAY = """
    a an and or but of to in on for with at by from is are was were be it its this that
    the then than so no not yes all any some one two new old big little good best first
    last may june april august will mark rose grace hope joy faith summer bill art
    le la les des du de un une et ou est sont pour dans sur avec que qui
"""
EVERYDAY_WORDS = frozenset(_EVERYDAY.split())


def name_words(name: str) -> list[str]:
    return re.findall(r"\w+", name.lower())


def is_distinctive(name: str) -> bool:
    """True for a full name that can be replaced wherever it stands whole."""
    parts = name_words(name)
    return len(parts) >= 2 and not all(p in EVERYDAY_WORDS for p in parts)
