"""Looking for a subject in serialized bytes (Temporal histories, Qdrant payloads)."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Needles:
    """Lower-cased byte patterns for each kind of identifier, raw and JSON-escaped."""

    by_kind: dict[str, tuple[bytes, ...]]

    @classmethod
    def of(cls, email: str, name: str, user_id: str) -> Needles:
        def forms(value: str) -> tuple[bytes, ...]:
            raw = value.lower()
            escaped = json.dumps(raw)[1:-1]
            return tuple({raw.encode(), escaped.encode()})

        return cls({"email": forms(email), "name": forms(name), "id": forms(user_id)})

    def found_in(self, blob: bytes) -> list[str]:
        lowered = blob.lower()
        return [
            kind for kind, patterns in self.by_kind.items() if any(p in lowered for p in patterns)
        ]
