"""The mail that confirms a new e-mail address: sent to the new address, with a link that
opens the web client's /confirm-email page (the token rides in the fragment, so it never
reaches a server log)."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate

from iaf.mail.render import readable_time

TEXT = """Hello {name},

Someone (we hope you) asked to change the e-mail address of an IAFactory account to this one.
To confirm, open this link:

{url}

The link works once, until {expires_at}. If you did not ask for this, ignore this mail: the
address stays as it was.
"""


def email_change_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/confirm-email#token={token}"


def compose_email_change(
    *, to: str, sender: str, name: str, url: str, expires_at: datetime, message_key: str
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "Confirm your new e-mail address on IAFactory"
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "iafactory.local"
    message["Message-ID"] = f"<{message_key}@{domain}>"
    one_line_name = " ".join(name.split())
    message.set_content(
        TEXT.format(name=one_line_name, url=url, expires_at=readable_time(expires_at))
    )
    return message
