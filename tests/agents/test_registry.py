"""The shipped personas are valid and the registry's lookup and autocomplete behave."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from iaf.agents.mentions import parse_mentions
from iaf.agents.registry import (
    CATEGORIES,
    AgentPersona,
    AgentRegistry,
    PersonaError,
    get_registry,
    personas_directory,
)

REQUIRED = {
    "architect",
    "pm",
    "developer",
    "tester",
    "writer",
    "analyst",
    "designer",
    "scrum-master",
    "ux",
    "devops",
    "security",
    "data-engineer",
}


def persona(agent_id: str, **fields: object) -> AgentPersona:
    values: dict[str, object] = {
        "id": agent_id,
        "name": agent_id.title(),
        "description": f"{agent_id} things",
        "role": "Helper",
        "category": "engineering",
        "system_prompt": f"You are {agent_id}.",
    }
    values.update(fields)
    return AgentPersona.model_validate(values)


def write_persona(directory: Path, stem: str, body: str) -> None:
    (directory / f"{stem}.toml").write_text(body, encoding="utf-8")


def toml_for(agent_id: str, extra: str = "") -> str:
    return (
        f'id = "{agent_id}"\nname = "{agent_id.title()}"\ndescription = "d"\nrole = "r"\n'
        'category = "quality"\n'
        f'system_prompt = """\nYou are {agent_id}.\n"""\n{extra}'
    )


# The seed's catalogue (bmm-architect, pm, developer, tester, tech-writer, …) completed with
# the BMAD method's other roles.
BMAD = {"product-owner", "qa", "orchestrator", "master", "agent-builder", "workflow-builder"}


def test_ships_the_required_personas() -> None:
    registry = get_registry()
    assert registry.ids() >= REQUIRED | BMAD
    assert len(registry) == 19
    assert isinstance(registry.ids(), frozenset)


def test_every_category_has_agents_and_every_agent_a_category() -> None:
    registry = get_registry()
    by_category = {c: [p.id for p in registry.in_category(c)] for c in CATEGORIES}
    assert all(by_category.values()), by_category
    assert sorted(a for ids in by_category.values() for a in ids) == sorted(registry.ids())
    assert "qa" in by_category["quality"] and "orchestrator" in by_category["orchestration"]
    assert [p.id for p in registry.search("", 50, "quality")] == ["qa", "security", "tester"]


def test_the_seeds_bmad_ids_reach_the_same_agents() -> None:
    registry = get_registry()
    seed = {
        "bmm-architect": "architect",
        "bmm-pm": "pm",
        "bmm-developer": "developer",
        "bmm-tester": "tester",
        "bmm-tech-writer": "writer",
        "po": "product-owner",
        "bmad-orchestrator": "orchestrator",
        "bmad-master": "master",
        "ux-expert": "ux",
    }
    for alias, agent_id in seed.items():
        persona = registry.get(alias)
        assert persona is not None and persona.id == agent_id, alias
        assert registry.names()[alias] == agent_id
    found = parse_mentions("@bmm-architect and @PO, then @writer", registry.names())
    assert [(m.kind, m.id) for m in found] == [
        ("agent", "architect"),
        ("agent", "product-owner"),
        ("agent", "writer"),
    ]


def test_aliases_must_be_free_and_valid() -> None:
    with pytest.raises(PersonaError, match="taken"):
        AgentRegistry([persona("a", aliases=("b",)), persona("b")])
    with pytest.raises(ValidationError):
        persona("a", aliases=("team",))
    with pytest.raises(ValidationError):
        persona("a", aliases=("Not An Id",))
    with pytest.raises(ValidationError):
        persona("a", category="marketing")


def test_every_prompt_ends_with_its_role() -> None:
    for p in get_registry():
        assert p.focus, p.id
        assert p.prompt().splitlines()[-1] == (
            f"Your role: {p.role}. Look first at: {'; '.join(p.focus)}."
        )


def test_registry_is_cached() -> None:
    assert get_registry() is get_registry()


@pytest.mark.parametrize("agent_id", sorted(get_registry().ids()))
def test_shipped_persona_is_substantive(agent_id: str) -> None:
    p = get_registry().get(agent_id)
    assert p is not None
    assert 5 <= len(p.system_prompt.splitlines()) <= 15
    assert p.system_prompt.splitlines()[0].startswith("You are")
    assert f"(@{p.id})" in p.system_prompt.splitlines()[0]  # the offline model reads it
    assert p.keywords, "every persona must be reachable by intent routing"
    assert p.model == ""
    assert 0.0 <= p.temperature <= 1.0
    assert p.max_steps >= 1
    assert p.retrieval_scope in ("org+room", "room", "none")
    assert p.id not in p.handoff_to
    assert set(p.handoff_to) <= get_registry().ids()


def test_file_names_match_ids() -> None:
    stems = {f.name.removesuffix(".toml") for f in personas_directory().iterdir()}
    assert {s for s in stems if not s.startswith("_")} >= get_registry().ids()


def test_get_and_contains() -> None:
    registry = get_registry()
    architect = registry.get("architect")
    assert architect is not None and architect.name == "Architect"
    assert registry.get("nobody") is None
    assert "architect" in registry and "nobody" not in registry
    assert [p.id for p in registry.all()] == sorted(registry.ids())


def test_resolved_model_falls_back_to_default() -> None:
    assert persona("a").resolved_model("offline/iaf-offline") == "offline/iaf-offline"
    assert persona("a", model="openai/gpt-4o-mini").resolved_model("x") == "openai/gpt-4o-mini"


def test_search_ranking() -> None:
    registry = AgentRegistry(
        [
            persona("xx", name="Xavier", description="a better agent"),
            persona("yy", name="Alphabet"),
            persona("zz", name="Betty"),
            persona("beta", name="Zed"),
            persona("bet", name="Quux"),
            persona("other", name="Other"),
        ]
    )
    assert [p.id for p in registry.search("bet")] == ["bet", "beta", "zz", "yy", "xx"]
    assert [p.id for p in registry.search("@BET", limit=2)] == ["bet", "beta"]
    assert registry.search("nothing-like-it") == []
    assert registry.search("bet", limit=0) == []


def test_search_empty_query_lists_all_sorted() -> None:
    registry = get_registry()
    assert [p.id for p in registry.search("", limit=100)] == sorted(registry.ids())
    assert len(registry.search("  ", limit=3)) == 3


def test_search_shipped_personas() -> None:
    registry = get_registry()
    assert registry.search("pm")[0].id == "pm"
    assert [p.id for p in registry.search("de")][:3] == ["designer", "developer", "devops"]
    assert registry.search("data")[0].id == "data-engineer"
    assert [p.id for p in registry.search("master")][:2] == ["master", "scrum-master"]
    assert registry.search("bmm-architect")[0].id == "architect"
    assert registry.search("pipelines")[0].id == "data-engineer"


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(PersonaError, match="duplicate"):
        AgentRegistry([persona("a"), persona("a")])


def test_unknown_handoff_rejected() -> None:
    with pytest.raises(PersonaError, match="unknown"):
        AgentRegistry([persona("a", handoff_to=["ghost"])])


def test_self_handoff_rejected() -> None:
    with pytest.raises(PersonaError, match="itself"):
        AgentRegistry([persona("a", handoff_to=["a"])])


@pytest.mark.parametrize("bad_id", ["all", "room", "Upper", "with space", "-dash", ""])
def test_invalid_ids_rejected(bad_id: str) -> None:
    with pytest.raises(ValueError):
        persona(bad_id)


def test_keywords_normalised() -> None:
    p = persona("a", keywords=["Deploy*", "deploy*", "  How   To "])
    assert p.keywords == ("deploy*", "how to")


def test_loads_a_directory(tmp_path: Path) -> None:
    write_persona(tmp_path, "one", toml_for("one", 'handoff_to = ["two"]\n'))
    write_persona(tmp_path, "two", toml_for("two", 'retrieval_scope = "none"\n'))
    (tmp_path / "README.md").write_text("not a persona")
    registry = AgentRegistry.from_directory(tmp_path)
    assert registry.ids() == {"one", "two"}
    two = registry.get("two")
    assert two is not None and two.retrieval_scope == "none"


def test_id_must_match_file_name(tmp_path: Path) -> None:
    write_persona(tmp_path, "one", toml_for("uno"))
    with pytest.raises(PersonaError, match="file name"):
        AgentRegistry.from_directory(tmp_path)


@pytest.mark.parametrize(
    "body",
    [
        'id = "one"\nname = ',  # broken TOML
        toml_for("one", 'colour = "blue"\n'),  # unknown field
        toml_for("one", 'retrieval_scope = "everywhere"\n'),
        toml_for("one", "temperature = 5.0\n"),
    ],
)
def test_invalid_files_name_the_file(tmp_path: Path, body: str) -> None:
    write_persona(tmp_path, "one", body)
    with pytest.raises(PersonaError, match=r"one\.toml"):
        AgentRegistry.from_directory(tmp_path)


def test_unknown_handoff_in_files_rejected(tmp_path: Path) -> None:
    write_persona(tmp_path, "one", toml_for("one", 'handoff_to = ["ghost"]\n'))
    with pytest.raises(PersonaError, match="ghost"):
        AgentRegistry.from_directory(tmp_path)
