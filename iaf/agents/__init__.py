"""Agents: personas as data, @mention parsing and intent routing; pure, no I/O but personas."""

from iaf.agents.intent import (
    IntentResult,
    build_classifier_prompt,
    parse_classifier_answer,
    route_by_keywords,
)
from iaf.agents.mentions import Mention, mentioned_agents, parse_mentions, unique_targets
from iaf.agents.registry import AgentPersona, AgentRegistry, PersonaError, get_registry

__all__ = [
    "AgentPersona",
    "AgentRegistry",
    "IntentResult",
    "Mention",
    "PersonaError",
    "build_classifier_prompt",
    "get_registry",
    "mentioned_agents",
    "parse_classifier_answer",
    "parse_mentions",
    "route_by_keywords",
    "unique_targets",
]
