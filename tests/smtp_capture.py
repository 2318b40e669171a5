"""A real SMTP server (aiosmtpd) that keeps what it receives, for the invitation tests."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

LINK = re.compile(r"(https?://\S+?/api/chat/invitations/([A-Za-z0-9_-]+))")


class SmtpCapture:
    """Start/stop on a fixed port, so a test can take the server away and bring it back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.refused: set[str] = set()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.lower() in self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if str(m["To"]).lower() == address.lower()]

    async def wait_for(
        self,
        predicate: Callable[[EmailMessage], bool],
        timeout: float = 30.0,
    ) -> EmailMessage:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            with self._lock:
                found = [m for m in self.messages if predicate(m)]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError("no matching e-mail arrived")


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def link_in(message: EmailMessage) -> tuple[str, str]:
    """(the invitation URL, its token) from the plain-text part."""
    found = LINK.search(text_of(message))
    assert found, "the e-mail has no invitation link"
    return found.group(1), found.group(2)
