"""Passwords (argon2), access tokens (JWT) and API keys (random, stored as SHA-256)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so both paths cost the same.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
API_KEY_PREFIX = "iaf_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


# argon2 costs tens of milliseconds of CPU and 64 MiB of memory per call by design. The API
# runs it on threads of its own (argon2 releases the GIL), so a login never stalls the event
# loop; two of them, so a flood of logins queues here instead of taking every core and
# gigabytes of memory, and never fills the default executor other work shares. Routes that
# call it are rate-limited as well (login, sign-up, delete-account, password changes).
ARGON2_THREADS = 2
_argon2_pool = ThreadPoolExecutor(max_workers=ARGON2_THREADS, thread_name_prefix="argon2")


async def hashed_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_argon2_pool, hash_password, password)


async def password_matches(password_hash: str | None, password: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_argon2_pool, verify_password, password_hash, password)


def issue_access_token(
    secret: str, user_id: uuid.UUID, org_id: uuid.UUID, role: str, version: int, minutes: int
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "org": str(org_id),
        "role": role,
        "ver": version,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_access_token(secret: str, token: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "exp", "ver"]}
        )
    except jwt.PyJWTError:
        return None
    return claims


def new_api_key() -> tuple[str, str, str]:
    """Returns (raw key shown once, display prefix, stored hash)."""
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return raw, raw[: len(API_KEY_PREFIX) + 6], hash_token(raw)


def hash_token(raw: str) -> str:
    """High-entropy tokens need no slow hash; SHA-256 lets us look them up by hash."""
    return hashlib.sha256(raw.encode()).hexdigest()


def pseudonym(secret: str, user_id: uuid.UUID | str) -> str:
    """Stable non-personal reference for a user, used as a Temporal search attribute."""
    return hmac.new(secret.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()[:32]
