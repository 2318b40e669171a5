"""Copies of a message: found however they were re-spaced, clipped or stripped of mentions;
short everyday texts are nobody's; a person's short overlap is not redacted."""

from __future__ import annotations

from iaf.privacy.fingerprints import (
    LONG_QUOTE_WORDS,
    copied_spans,
    fingerprint,
    longest_copy,
    redact,
)

SECRET = "@architect the Zephyr launch codes are hidden under the blue mailbox near Quay 7"


def test_an_agent_quote_is_found_despite_case_spacing_accents_and_mentions():
    prints = fingerprint(SECRET)
    quote = (
        '(offline model) As the Architect, on "architect the zephyr  LAUNCH codes are hidden'
        ' under the blue mailbox near quay 7": here is my advice.'
    )
    assert longest_copy(quote, prints) == 14
    redacted = redact(quote, prints, "[erased]")
    assert "zephyr" not in redacted.lower() and redacted.startswith("(offline model) As the")
    assert redacted.endswith(": here is my advice.")
    accented = "Thé Zéphyr launch codes are hidden somewhere else"
    assert longest_copy(accented, prints) == 6


def test_a_clipped_quote_is_a_copy_and_unrelated_text_is_not():
    prints = fingerprint(SECRET)
    assert longest_copy("they said the Zephyr launch codes are hidden …", prints) == 6
    assert longest_copy("the launch is hidden near the mailbox", prints) == 0
    assert copied_spans("nothing in common at all here", prints) == []


def test_short_texts_are_nobodys_and_four_words_are_one_run():
    assert fingerprint("ok") == set() and fingerprint("see you then") == set()
    four = fingerprint("Quokka Velvet Tango Nine")
    assert len(four) == 1
    assert longest_copy("well: quokka velvet tango nine!", four) == 4


def test_a_persons_short_overlap_is_kept_and_a_long_quote_redacted():
    prints = fingerprint(SECRET)
    short = "I agree the zephyr launch codes are hidden, fine"
    assert redact(short, prints, "[erased]", LONG_QUOTE_WORDS) == short
    long = f"Quoting: {SECRET[11:]} (end)"
    assert redact(long, prints, "[erased]", LONG_QUOTE_WORDS) == "Quoting: [erased] (end)"


def test_a_four_word_sentence_of_a_longer_text_is_found_alone():
    prints = fingerprint("Our runbook is long. Deploy with blue pipelines. Then verify everything.")
    assert longest_copy('- "Deploy with blue pipelines." [source: Runbook]', prints) == 4
