"""Invitation e-mails (plain text + HTML) and the landing page, from the templates here."""

from __future__ import annotations

import html
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from functools import cache
from importlib.resources import files
from string import Template
from typing import Literal

MailKind = Literal["invite", "reminder", "resend"]

_INTROS = {
    "invite": "You have a new invitation.",
    "resend": "Here is your invitation again.",
    "reminder": "Reminder: your invitation expires soon.",
}
_STATE_NOTES = {
    "pending": "Create your account to join, or sign in if you already have one.",
    "accepted": "This invitation has already been accepted.",
    "revoked": "This invitation was withdrawn by the person who sent it.",
    "expired": "This invitation has expired. Ask the person who invited you for a new one.",
}


@cache
def _template(name: str) -> Template:
    return Template(files("iaf.mail").joinpath("templates", name).read_text(encoding="utf-8"))


def _one_line(value: str) -> str:
    """Header-safe: a room name must not be able to add a header line."""
    return " ".join(value.split())


def readable_time(moment: datetime) -> str:
    return moment.strftime("%d %B %Y at %H:%M UTC")


def subject_for(kind: MailKind, inviter_name: str, room_name: str) -> str:
    prefix = "Reminder: " if kind == "reminder" else ""
    return _one_line(f'{prefix}{inviter_name} invited you to "{room_name}" on IAFactory')


def compose_invitation(
    *,
    kind: MailKind,
    to: str,
    sender: str,
    inviter_name: str,
    room_name: str,
    url: str,
    expires_at: datetime,
    message_key: str,
) -> EmailMessage:
    """message_key makes the Message-ID stable across retries, so receivers can drop duplicates."""
    subject = subject_for(kind, inviter_name, room_name)
    text_values = {
        "intro": _INTROS[kind],
        "inviter_name": inviter_name,
        "room_name": room_name,
        "url": url,
        "expires_at": readable_time(expires_at),
        "subject": subject,
    }
    html_values = {key: html.escape(value) for key, value in text_values.items()}
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "iafactory.local"
    message["Message-ID"] = f"<{message_key}@{domain}>"
    message.set_content(_template("invitation.txt").substitute(text_values))
    message.add_alternative(_template("invitation.html").substitute(html_values), subtype="html")
    return message


def landing_page(
    *, status: str, inviter_name: str | None, room_name: str | None, nonce: str
) -> str:
    """The seed's "You're invited" page; names are escaped, scripts run only with the nonce.

    inviter_name/room_name are None for an unknown link, which gets the same shell, no names.
    """
    if inviter_name is None or room_name is None:
        lead = "This invitation link is not valid."
        note = "Check that you opened the whole address from the e-mail."
    else:
        lead = (
            f"<strong>{html.escape(inviter_name)}</strong> invited you to join:<br>"
            f"&ldquo;{html.escape(room_name)}&rdquo; workspace"
        )
        note = html.escape(_STATE_NOTES.get(status, ""))
    return _template("landing.html").substitute(
        nonce=nonce,
        lead=lead,
        state_note=note,
        forms_hidden="" if status == "pending" else " hidden",
    )
