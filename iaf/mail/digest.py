"""The notification digest: what happened while the person was away, room by room.

It says who did what where, with a link to each room, and never quotes a message: the text
stays behind the person's sign-in (an e-mail cannot be taken back once sent). It carries a
one-click unsubscribe (RFC 8058 headers) and a link to a page that does the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import formatdate

from iaf.db.repositories.notifications import DigestItem

TEXT = """Hello {name},

While you were away:

{lines}

You get this e-mail because you were not signed in to IAFactory when it happened, and at most
one every {minutes} minutes. To stop these e-mails: {unsubscribe}
"""


def _one_line(value: str) -> str:
    return " ".join(value.split())


def item_line(item: DigestItem, agent_name: Callable[[str], str]) -> str:
    room = f'"{_one_line(item.room_name)}"' if item.room_name else "a room"
    who = _one_line(item.actor_name) if item.actor_name else "Someone"
    if item.kind == "mention":
        return f"{who} mentioned you in {room}"
    if item.kind == "reply":
        agent = agent_name(item.actor_agent_id or "") if item.actor_agent_id else "An agent"
        return f"{agent} answered your question in {room}"
    return f"{who} accepted your invitation to {room}"


def compose_digest(
    *,
    to: str,
    sender: str,
    name: str,
    items: Sequence[DigestItem],
    agent_name: Callable[[str], str],
    room_url: Callable[[str], str],
    minutes: float,
    unsubscribe_page: str,
    one_click: str,
    message_key: str,
) -> EmailMessage:
    """One line per notification, grouped under each room's link, oldest first."""
    rooms: dict[str, list[str]] = {}
    for item in items:
        key = str(item.room_id) if item.room_id else ""
        rooms.setdefault(key, []).append(f"- {item_line(item, agent_name)}")
    blocks = [
        "\n".join([*lines, f"  {room_url(room_id)}" if room_id else ""]).rstrip()
        for room_id, lines in rooms.items()
    ]
    count = len(items)
    message = EmailMessage()
    message["Subject"] = f"{count} update{'s' if count != 1 else ''} while you were away"
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "iafactory.local"
    message["Message-ID"] = f"<{message_key}@{domain}>"
    message["List-Unsubscribe"] = f"<{one_click}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        TEXT.format(
            name=_one_line(name),
            lines="\n\n".join(blocks),
            minutes=f"{minutes:g}",
            unsubscribe=unsubscribe_page,
        )
    )
    return message
