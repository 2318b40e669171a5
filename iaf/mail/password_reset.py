"""The password reset e-mail (plain text + HTML). The link carries its token in the URL
fragment, which browsers never send to a server: it stays out of access logs."""

from __future__ import annotations

import html
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate

from iaf.mail.render import readable_time

SUBJECT = "Reset your IAFactory password"
TEXT = """Someone asked to reset the password of your IAFactory account.

To choose a new password, open this link before {expires_at}:

{url}

The link works once. If you did not ask for it, ignore this mail: your password stays as it is.
"""


def reset_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/#reset-password={token}"


def compose_password_reset(
    *, to: str, sender: str, url: str, expires_at: datetime, message_key: str
) -> EmailMessage:
    """message_key makes the Message-ID stable across retries, so receivers can drop duplicates."""
    text = TEXT.format(expires_at=readable_time(expires_at), url=url)
    message = EmailMessage()
    message["Subject"] = SUBJECT
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "iafactory.local"
    message["Message-ID"] = f"<{message_key}@{domain}>"
    message.set_content(text)
    paragraphs = "".join(
        f"<p>{html.escape(p)}</p>"
        if p != url
        else f'<p><a href="{html.escape(url)}">{html.escape(url)}</a></p>'
        for p in text.strip().split("\n\n")
    )
    message.add_alternative(
        f"<!doctype html><html><body>{paragraphs}</body></html>", subtype="html"
    )
    return message
