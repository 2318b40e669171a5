"""Signed erasure receipts: canonical JSON, HMAC-SHA256 with a settings secret."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(secret: str, document: dict[str, Any]) -> str:
    return hmac.new(secret.encode(), canonical(document), hashlib.sha256).hexdigest()


def verify(secret: str, document: dict[str, Any], signature: str) -> bool:
    return hmac.compare_digest(sign(secret, document), signature)
