"""The digest's unsubscribe link: a signed token good for one thing only, turning digests off.

Stateless (nothing stored, so nothing to leak or clean up) and without expiry (an old mail's
link must still work); its own secret and audience, so no other token of the platform can
pass for it, nor it for another.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import jwt

AUDIENCE = "iaf:unsubscribe:email-digest"


def issue_unsubscribe_token(secret: str, user_id: uuid.UUID) -> str:
    claims = {"sub": str(user_id), "aud": AUDIENCE, "iat": datetime.now(UTC)}
    return jwt.encode(claims, secret, algorithm="HS256")


def read_unsubscribe_token(secret: str, token: str) -> uuid.UUID | None:
    """The person the token unsubscribes, or None for anything that is not such a token."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], audience=AUDIENCE, options={"require": ["sub"]}
        )
        return uuid.UUID(str(claims["sub"]))
    except (jwt.PyJWTError, ValueError):
        return None


def unsubscribe_page_url(public_base_url: str, token: str) -> str:
    """The web client's page (the token rides in the fragment: never in a server log)."""
    return f"{public_base_url.rstrip('/')}/unsubscribe#token={token}"


def one_click_url(public_base_url: str, token: str) -> str:
    """RFC 8058 List-Unsubscribe target: mail clients POST to it with no page in between."""
    return f"{public_base_url.rstrip('/')}/api/notifications/unsubscribe?token={token}"
