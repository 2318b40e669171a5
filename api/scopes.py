"""What an API key may call: each key carries scopes (chat, agents, compliance), and each
route accepts some of them, by its path template. A route not listed here refuses API keys
(403): account management (keys, passwords, org users, deleting one's account) needs a
person's session, and a route added later is closed to keys until someone decides otherwise.
"""

from __future__ import annotations

from typing import Literal

from iaf.errors import ApiError

Scope = Literal["chat", "agents", "compliance"]
ALL_SCOPES: tuple[Scope, ...] = ("chat", "agents", "compliance")

# (method or "*", exact path template) first, then the longest matching path prefix.
_EXACT: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/me"): frozenset(ALL_SCOPES),
}
_PREFIXES: tuple[tuple[str, frozenset[str]], ...] = (
    ("/api/chat/rooms/{room_id}/replies", frozenset({"chat", "agents"})),
    ("/api/chat/", frozenset({"chat"})),
    ("/api/events", frozenset({"chat"})),
    ("/api/search", frozenset({"chat"})),
    ("/api/referrals", frozenset({"chat"})),
    ("/api/credits", frozenset({"chat", "agents"})),
    ("/api/agents", frozenset({"chat", "agents"})),
    ("/api/knowledge/", frozenset({"agents"})),
    ("/api/memories", frozenset({"agents"})),
    ("/v1/", frozenset({"agents"})),
    ("/api/compliance/", frozenset({"compliance"})),
)


def scopes_for(method: str, path: str) -> frozenset[str]:
    """The scopes any one of which lets an API key call this route; empty: keys refused."""
    exact = _EXACT.get((method, path))
    if exact is not None:
        return exact
    for prefix, scopes in sorted(_PREFIXES, key=lambda item: -len(item[0])):
        if path == prefix.rstrip("/") or path.startswith(prefix):
            return scopes
    return frozenset()


def check_scopes(granted: list[str], method: str, path: str) -> None:
    accepted = scopes_for(method, path)
    if not accepted:
        raise ApiError(
            403, "api_key_not_allowed", "this route needs a signed-in person, not an API key"
        )
    if not accepted.intersection(granted):
        needed = " or ".join(sorted(accepted))
        raise ApiError(403, "insufficient_scope", f"this API key needs the scope {needed}")
