"""AppendOnlyText: what an append-only client receives when a reply's attempts restart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.reply_events import AppendOnlyText


def test_a_single_attempt_passes_through_unchanged():
    text = AppendOnlyText()
    sent = [text.delta("Hello ", 1, 0), text.delta("world", 1, 1)]
    assert sent == ["Hello ", "world"]
    assert text.finish("Hello world") == ""


def test_a_retry_that_repeats_itself_sends_only_what_is_new():
    text = AppendOnlyText()
    assert text.delta("The plan ", 1, 0) == "The plan "
    text.reset(2)
    assert text.delta("The ", 2, 0) == ""
    assert text.delta("plan is ", 2, 1) == "is "
    assert text.delta("ready.", 2, 2) == "ready."
    assert text.sent == "The plan is ready."
    assert text.finish("The plan is ready.") == ""


def test_a_retry_that_says_something_else_follows_after_a_blank_line():
    text = AppendOnlyText()
    assert text.delta("Option A is", 1, 0) == "Option A is"
    text.reset(2)
    assert text.delta("Option B", 2, 0) == "\n\nOption B"
    assert text.delta(" wins.", 2, 1) == " wins."
    assert text.sent == "Option A is\n\nOption B wins."


def test_late_deltas_of_an_old_attempt_and_repeated_sequence_numbers_are_dropped():
    text = AppendOnlyText()
    assert text.delta("one ", 1, 0) == "one "
    assert text.delta("one ", 1, 0) == ""  # the same stored event seen twice
    assert text.delta("one ", 2, 0) == ""  # a delta of attempt 2 implies its reset
    assert text.delta("three", 1, 1) == ""  # attempt 1 was abandoned
    assert text.delta("two", 2, 1) == "two"
    assert text.sent == "one two"


def test_finish_sends_what_the_stored_reply_has_beyond_the_deltas():
    text = AppendOnlyText()
    text.delta("Partial", 1, 0)
    assert text.finish("Partial answer.") == " answer."
    stripped = AppendOnlyText()
    stripped.delta("  Answer with spaces \n", 1, 0)
    assert stripped.finish("Answer with spaces") == ""


@given(
    st.lists(
        st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=6), min_size=1, max_size=4
    )
)
def test_the_client_keeps_the_first_attempt_and_receives_all_of_the_last(attempts):
    text = AppendOnlyText()
    received = ""
    for number, pieces in enumerate(attempts, start=1):
        if number > 1:
            text.reset(number)
        for seq, piece in enumerate(pieces):
            received += text.delta(piece, number, seq)
    assert received == text.sent
    assert received.startswith("".join(attempts[0]))
    last = "".join(attempts[-1])
    assert last in received
    assert received.endswith(last) or received.startswith(text.base + last)
