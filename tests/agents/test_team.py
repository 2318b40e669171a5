"""Which messages ask several agents to answer together, and which agents."""

from __future__ import annotations

import pytest

from iaf.agents.mentions import parse_mentions
from iaf.agents.registry import get_registry
from iaf.agents.team import team_panel

DEFAULT = ["architect", "developer", "tester"]


def panel(text: str, max_agents: int = 5) -> list[str] | None:
    registry = get_registry()
    mentions = parse_mentions(text, registry.names(), ["teamlead"])
    return team_panel(text, mentions, DEFAULT, registry.ids(), max_agents)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@team how do we ship billing?", DEFAULT),
        ("@team @pm @qa what is missing?", ["pm", "qa"]),
        ("@qa and @pm, together: what is missing?", ["qa", "pm"]),
        ("@architect @developer réfléchissez ensemble", ["architect", "developer"]),
        ("@bmm-architect and @dev TOGETHER please", ["architect", "developer"]),
        ("@architect @developer what do you each think?", None),
        ("@architect together with the team", None),  # one agent is not a team
        ("@architect @developer `together` is code", None),
        ("@architect @developer togetherness", None),
        ("@teamlead please look", None),  # a person, not @team
        ("team work, no mention", None),
        ("`@team` in code", None),
    ],
)
def test_who_answers_together(text: str, expected: list[str] | None) -> None:
    assert panel(text) == expected


def test_the_panel_is_capped_and_unknown_defaults_are_dropped() -> None:
    text = "@pm @qa @ux @analyst @architect @developer together"
    assert panel(text, max_agents=3) == ["pm", "qa", "ux"]
    registry = get_registry()
    mentions = parse_mentions("@team hi", registry.names())
    assert team_panel("@team hi", mentions, ["ghost", "pm"], registry.ids(), 5) == ["pm"]
    assert team_panel("@team hi", mentions, ["ghost"], registry.ids(), 5) is None
