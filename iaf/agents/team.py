"""When several agents answer one message together (the seed's Mixture-of-Agents).

A message asks for a team answer when it mentions `@team` (the panel is the agents it also
mentions, or the default panel when it names none), or when it mentions two agents or more
and says "together" (or the French "ensemble") outside code. Anything else is a plain
mention: each agent named answers on its own.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from iaf.agents.mentions import Mention, mentioned_agents, without_code

_TOGETHER = re.compile(r"(?<![\w-])(?:together|ensemble)(?![\w-])", re.IGNORECASE)


def team_panel(
    text: str,
    mentions: Sequence[Mention],
    default_panel: Sequence[str],
    known_agents: Collection[str],
    max_agents: int,
) -> list[str] | None:
    """The agents that answer together, in the order named; None for no team answer."""
    agents = mentioned_agents(mentions)
    if any(m.kind == "team" for m in mentions):
        panel = agents or [a for a in dict.fromkeys(default_panel) if a in known_agents]
    elif len(agents) >= 2 and _TOGETHER.search(without_code(text)):
        panel = agents
    else:
        return None
    return panel[: max(max_agents, 1)] or None
