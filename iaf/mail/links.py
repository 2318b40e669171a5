"""Invitation tokens: random, derived so the mailer can rebuild them, stored only as a hash.

The API draws a 256-bit salt with `secrets` and derives the token as
HMAC-SHA256(invitation_secret, salt). The row keeps the salt and SHA-256(token), never the
token. The mail activity, which needs the link for the first mail, the reminder and any
resend, re-derives it from the salt and the key it reads from settings — so the token never
travels through Temporal, and a database dump alone cannot rebuild a link (the key lives
outside the database). Closing an invitation erases its salt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from iaf.security import hash_token

SALT_BYTES = 32


def new_salt() -> str:
    return secrets.token_hex(SALT_BYTES)


def derive_token(secret: str, salt: str) -> str:
    digest = hmac.new(secret.encode(), bytes.fromhex(salt), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """What is stored and looked up: SHA-256 is enough for 256-bit tokens (no guessing)."""
    return hash_token(token)


def invitation_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/api/chat/invitations/{token}"
