"""What a guest (a member from another organisation) reads of a reply drawn from the
organisation's documents: a notice instead of the text.

Agents leave organisation documents out while a guest is in the room; this covers the
replies written before a guest joined, in the message list and in the event replay.
"""

from __future__ import annotations

from typing import Any

ORG_ONLY_NOTICE = (
    "[This reply drew on organisation documents; only the organisation's members see it.]"
)
_TEXT_EVENTS = ("message.new", "message.edit")


def event_for_guest(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    if type_ in _TEXT_EVENTS and data.get("org_knowledge") and data.get("content"):
        return {**data, "content": ORG_ONLY_NOTICE}
    return data
