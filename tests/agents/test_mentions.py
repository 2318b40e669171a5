"""Mention parsing: examples for each rule, and properties over arbitrary text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from iaf.agents.mentions import Mention, mentioned_agents, parse_mentions, unique_targets

AGENTS = frozenset({"architect", "pm", "developer", "scrum-master", "data-engineer"})
USERS = ("alice", "Bob", "carol_")


def parse(text: str) -> list[tuple[str, str]]:
    return [(m.kind, m.id) for m in parse_mentions(text, AGENTS, USERS)]


def test_agents_users_and_all() -> None:
    text = "@architect can you and @alice look? cc @all and @room"
    assert parse(text) == [
        ("agent", "architect"),
        ("user", "alice"),
        ("all", "all"),
        ("all", "all"),
    ]


def test_offsets_are_exclusive_and_point_at_the_mention() -> None:
    text = "Hi @PM, ping @Scrum-Master."
    mentions = parse_mentions(text, AGENTS)
    assert mentions == [Mention("agent", "pm", 3, 6), Mention("agent", "scrum-master", 13, 26)]
    assert [text[m.start : m.end] for m in mentions] == ["@PM", "@Scrum-Master"]


def test_case_insensitive_returns_canonical_ids() -> None:
    assert parse("@ARCHITECT @bob @BOB @All") == [
        ("agent", "architect"),
        ("user", "Bob"),
        ("user", "Bob"),
        ("all", "all"),
    ]


def test_trailing_dashes_and_underscores() -> None:
    text = "@architect-- what now? @pm_ and @carol_"
    mentions = parse_mentions(text, AGENTS, USERS)
    assert [(m.id, text[m.start : m.end]) for m in mentions] == [
        ("architect", "@architect"),
        ("pm", "@pm"),
        ("carol_", "@carol_"),  # a handle that really ends with "_" keeps it
    ]


def test_punctuation_ends_a_name() -> None:
    assert parse("(@pm), @pm. @pm! @pm's @pm/@developer") == [("agent", "pm")] * 5 + [
        ("agent", "developer")
    ]


def test_name_running_into_other_letters_is_not_a_mention() -> None:
    assert parse("@pmé @pm中 @pm") == [("agent", "pm")]


def test_agents_win_over_users_and_all_wins_over_everyone() -> None:
    mentions = parse_mentions("@pm @all", AGENTS, ["PM", "all"])
    assert [(m.kind, m.id) for m in mentions] == [("agent", "pm"), ("all", "all")]


def test_unknown_names_are_ignored() -> None:
    assert parse("@ghost @ @- @_ @ghost-pm") == []
    assert parse("@@pm") == [("agent", "pm")]  # a doubled "@" is a typo, not an e-mail


def test_email_addresses_are_ignored() -> None:
    assert parse("mail bob@example.com or pm@architect.io or first.last@pm") == []
    assert parse("a.@pm x_@pm 1@pm") == []


def test_escaped_at_is_ignored_but_escaped_backslash_is_not() -> None:
    assert parse(r"\@pm") == []
    assert parse("\\\\@pm") == [("agent", "pm")]
    assert parse("\\\\\\@pm") == []


def test_inline_code_is_ignored() -> None:
    assert parse("run `@pm` then ``say `@pm` loud`` but @architect") == [("agent", "architect")]
    assert parse("not code: ` @pm") == [("agent", "pm")]  # an unmatched backtick is literal
    assert parse("``@pm` @developer") == [("agent", "pm"), ("agent", "developer")]


def test_fenced_code_is_ignored() -> None:
    text = "before @pm\n```python\n@architect\n```\nafter @developer\n~~~\n@pm\n~~~~\n@all"
    assert parse(text) == [("agent", "pm"), ("agent", "developer"), ("all", "all")]


def test_unclosed_fence_runs_to_the_end() -> None:
    assert parse("@pm\n```\n@architect\n@developer") == [("agent", "pm")]


def test_fence_needs_same_char_and_length_to_close() -> None:
    text = "````\n```\n@pm\n~~~~\n@pm\n````\n@developer"
    assert parse(text) == [("agent", "developer")]


def test_fence_may_be_indented_up_to_three_spaces() -> None:
    assert parse("   ```\n@pm\n   ```\n@architect") == [("agent", "architect")]
    assert parse("    ```\n@pm") == [("agent", "pm")]  # four spaces: not a fence


def test_duplicates_are_kept_and_unique_targets_collapses_them() -> None:
    mentions = parse_mentions("@pm @alice @PM @architect @Alice @all @room", AGENTS, USERS)
    assert len(mentions) == 7
    targets = unique_targets(mentions)
    assert [(m.kind, m.id) for m in targets] == [
        ("agent", "pm"),
        ("user", "alice"),
        ("agent", "architect"),
        ("all", "all"),
    ]
    assert targets[0].start == 0  # the first occurrence is kept
    assert mentioned_agents(mentions) == ["pm", "architect"]


# --- properties ------------------------------------------------------------------------

NAMES = sorted(AGENTS | {"alice", "bob", "carol_", "all", "room", "ghost"})
FRAGMENTS = [
    "@",
    "`",
    "```",
    "~~~",
    "\\",
    "\n",
    " ",
    ".",
    "-",
    "_",
    "x",
    "é",
    "mail@",
    *NAMES,
    *(n.upper() for n in NAMES),
]
dense_text = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)
any_text = st.one_of(st.text(max_size=200), dense_text)


def _resolves(token: str, mention: Mention) -> bool:
    lowered = token.lower()
    if mention.kind == "all":
        return lowered in ("all", "room")
    return lowered == mention.id.lower()


@settings(deadline=None, max_examples=300)
@given(any_text)
def test_offsets_point_at_the_mention(text: str) -> None:
    mentions = parse_mentions(text, AGENTS, USERS)
    previous_end = 0
    for m in mentions:
        assert text[m.start] == "@"
        assert _resolves(text[m.start + 1 : m.end], m)
        assert m.start >= previous_end  # in order, never overlapping
        previous_end = m.end


@settings(deadline=None, max_examples=300)
@given(any_text)
def test_parse_is_deterministic_and_total(text: str) -> None:
    first = parse_mentions(text, AGENTS, USERS)
    assert parse_mentions(text, AGENTS, USERS) == first
    assert parse_mentions(text, list(reversed(sorted(AGENTS))), USERS) == first
    assert unique_targets(unique_targets(first)) == unique_targets(first)


segment = st.one_of(
    st.tuples(st.just("plain"), st.sampled_from(NAMES)),
    st.tuples(st.just("code"), st.sampled_from(NAMES)),
    st.tuples(st.just("fence"), st.sampled_from(NAMES)),
    st.tuples(st.just("email"), st.sampled_from(NAMES)),
    st.tuples(st.just("escaped"), st.sampled_from(NAMES)),
    st.tuples(st.just("words"), st.text(alphabet="abc XYZ,.!?", max_size=12)),
)


def _render(kind: str, value: str) -> str:
    return {
        "plain": f" @{value} ",
        "code": f" `say @{value}` ",
        "fence": f"\n```\n@{value} and @{value}\n```\n",
        "email": f" someone@{value}.example ",
        "escaped": f" \\@{value} ",
        "words": f" {value} ",
    }[kind]


@settings(deadline=None, max_examples=300)
@given(st.lists(segment, max_size=12))
def test_only_plain_mentions_are_found(segments: list[tuple[str, str]]) -> None:
    """Mentions inside code, e-mails and escapes never count; every plain known one does."""
    text = "".join(_render(kind, value) for kind, value in segments)
    known = {n for n in NAMES if n != "ghost"}
    expected = [v for kind, v in segments if kind == "plain" and v in known]
    found = parse_mentions(text, AGENTS, USERS)
    assert [text[m.start + 1 : m.end] for m in found] == expected
