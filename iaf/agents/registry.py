"""Agent personas as data: one TOML file per persona, loaded and validated once.

Personas live in files rather than code so that adding or tuning an agent is a data change
reviewed like any other, and so that the API (autocomplete, `/v1/models`), the mention
parser and the workflows all agree on one list of ids.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

RetrievalScope = Literal["org+room", "room", "none"]
#: Where an agent sits in the directory (`GET /api/agents?category=`), in display order.
Category = Literal["planning", "design", "engineering", "quality", "delivery", "orchestration"]
CATEGORIES: tuple[Category, ...] = (
    "planning",
    "design",
    "engineering",
    "quality",
    "delivery",
    "orchestration",
)

#: Names that `@` can address but that no agent may take (see `iaf.agents.mentions`).
RESERVED_IDS = frozenset({"all", "room", "team"})

_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class PersonaError(ValueError):
    """A persona file is invalid or inconsistent with the others."""


class AgentPersona(BaseModel):
    """One agent: who it is, how it talks, which model and retrieval scope it uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID_PATTERN, max_length=40)
    name: str = Field(min_length=1, max_length=80)
    description: str = Field(min_length=1)
    role: str = Field(min_length=1)
    category: Category
    system_prompt: str = Field(min_length=1)
    # What the role looks at first: said in the prompt, so every answer shows the role.
    focus: tuple[str, ...] = ()
    # Other names `@` reaches this agent by (the seed's BMAD ids, such as bmm-architect).
    aliases: tuple[str, ...] = ()
    # Empty means "use settings.default_llm_model", so one setting switches every agent.
    model: str = ""
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    max_steps: int = Field(default=3, ge=1, le=20)
    retrieval_scope: RetrievalScope = "org+room"
    keywords: tuple[str, ...] = ()
    handoff_to: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_IDS:
            raise ValueError(f"{value!r} is reserved for @{value} mentions")
        return value

    @field_validator("aliases")
    @classmethod
    def _valid_aliases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for alias in value:
            if not re.match(_ID_PATTERN, alias) or len(alias) > 40:
                raise ValueError(f"alias {alias!r} is not a valid agent id")
            if alias in RESERVED_IDS:
                raise ValueError(f"{alias!r} is reserved for @{alias} mentions")
        return value

    @field_validator("system_prompt")
    @classmethod
    def _strip_prompt(cls, value: str) -> str:
        return value.strip()

    @field_validator("keywords")
    @classmethod
    def _normalise_keywords(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(dict.fromkeys(" ".join(k.lower().split()) for k in value))
        if any(not k.strip("*") for k in cleaned):
            raise ValueError("keywords must not be empty")
        return cleaned

    def resolved_model(self, default_model: str) -> str:
        """The litellm model string to call for this agent."""
        return self.model or default_model

    def prompt(self) -> str:
        """The system prompt with the role line every answer is written from."""
        role = f"Your role: {self.role}."
        if self.focus:
            role += f" Look first at: {'; '.join(self.focus)}."
        return f"{self.system_prompt}\n{role}"

    @property
    def mention(self) -> str:
        return f"@{self.id}"


class AgentRegistry:
    """The validated, immutable set of personas, with lookup and autocomplete search."""

    def __init__(self, personas: Iterable[AgentPersona]) -> None:
        by_id: dict[str, AgentPersona] = {}
        for persona in personas:
            if persona.id in by_id:
                raise PersonaError(f"duplicate agent id {persona.id!r}")
            by_id[persona.id] = persona
        for persona in by_id.values():
            unknown = [t for t in persona.handoff_to if t not in by_id]
            if unknown:
                raise PersonaError(f"{persona.id}: handoff_to unknown agents {unknown}")
            if persona.id in persona.handoff_to:
                raise PersonaError(f"{persona.id}: cannot hand off to itself")
        self._by_id = dict(sorted(by_id.items()))
        self._ids = frozenset(self._by_id)
        self._names = {agent_id: agent_id for agent_id in self._by_id}
        for persona in self._by_id.values():
            for alias in persona.aliases:
                if alias in self._names:
                    raise PersonaError(f"{persona.id}: alias {alias!r} is taken already")
                self._names[alias] = persona.id

    @classmethod
    def from_directory(cls, directory: Path | Traversable) -> AgentRegistry:
        """Load every `*.toml` in `directory`; the file stem must equal the persona id."""
        files = sorted(
            (f for f in directory.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name
        )
        return cls(_load_persona(f) for f in files)

    def get(self, agent_id: str) -> AgentPersona | None:
        """By id or alias."""
        return self._by_id.get(self._names.get(agent_id, agent_id))

    def ids(self) -> frozenset[str]:
        return self._ids

    def names(self) -> dict[str, str]:
        """Every name `@` reaches an agent by (ids and aliases), mapped to the agent's id."""
        return dict(self._names)

    def in_category(self, category: str | None) -> list[AgentPersona]:
        """Every persona of a category (all of them for None), sorted by id."""
        return [p for p in self._by_id.values() if category is None or p.category == category]

    def all(self) -> list[AgentPersona]:
        """Every persona, sorted by id."""
        return list(self._by_id.values())

    def search(self, q: str, limit: int = 10, category: str | None = None) -> list[AgentPersona]:
        """Autocomplete: the best matches for what the user typed after `@`."""
        needle = q.strip().lstrip("@").lower()
        candidates = self.in_category(category)
        if not needle:
            return candidates[: max(limit, 0)]
        ranked: list[tuple[int, str, AgentPersona]] = []
        for persona in candidates:
            rank = _search_rank(persona, needle)
            if rank is not None:
                ranked.append((rank, persona.id, persona))
        ranked.sort(key=lambda item: (item[0], item[1]))
        return [persona for _, _, persona in ranked[: max(limit, 0)]]

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._by_id

    def __iter__(self) -> Iterator[AgentPersona]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


def _search_rank(persona: AgentPersona, needle: str) -> int | None:
    """Lower is better; None means no match."""
    name = persona.name.lower()
    if persona.id == needle:
        return 0
    if persona.id.startswith(needle) or needle in persona.aliases:
        return 1
    if name.startswith(needle):
        return 2
    if needle in name or needle in persona.id:
        return 3
    if needle in persona.description.lower() or needle in persona.role.lower():
        return 4
    return None


def _load_persona(file: Path | Traversable) -> AgentPersona:
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
        persona = AgentPersona.model_validate(data)
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise PersonaError(f"{file.name}: {exc}") from exc
    stem = re.sub(r"\.toml$", "", file.name)
    if persona.id != stem:
        raise PersonaError(f"{file.name}: id {persona.id!r} does not match the file name")
    return persona


def personas_directory() -> Traversable:
    """The personas shipped with the package (works from a wheel as well as a checkout)."""
    return resources.files("iaf.agents").joinpath("personas")


@lru_cache(maxsize=1)
def get_registry() -> AgentRegistry:
    """The shipped personas, loaded once per process."""
    return AgentRegistry.from_directory(personas_directory())
