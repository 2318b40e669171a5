"""The chunker keeps passages readable, bounded and overlapping."""

from __future__ import annotations

import itertools

import pytest

from iaf.retrieval.chunker import chunk_text

SENTENCE = "Every list endpoint uses cursor pagination."


def test_short_text_is_one_chunk_with_normalised_spaces() -> None:
    assert chunk_text("  Hello   world.\n  Second line.  ", 100) == ["Hello world. Second line."]


def test_empty_or_blank_text_has_no_chunks() -> None:
    assert chunk_text("", 100) == [] and chunk_text(" \n\n \t", 100) == []


def test_paragraphs_are_packed_together_while_they_fit() -> None:
    text = "First paragraph here.\n\nSecond paragraph here.\n\n\nThird one."
    assert chunk_text(text, 200) == [
        "First paragraph here.\n\nSecond paragraph here.\n\nThird one."
    ]


def test_chunks_respect_the_limit_and_split_between_sentences() -> None:
    text = " ".join([SENTENCE] * 40)
    chunks = chunk_text(text, 200, overlap=0)
    assert len(chunks) > 5
    assert all(len(c) <= 200 for c in chunks)
    assert all(c.startswith("Every") and c.endswith("pagination.") for c in chunks)
    assert " ".join(chunks) == text, "without overlap nothing is lost or repeated"


def test_consecutive_chunks_overlap_by_whole_sentences() -> None:
    sentences = [f"Sentence number {i} talks about topic {i}." for i in range(30)]
    chunks = chunk_text(" ".join(sentences), 200, overlap=90)
    for previous, current in itertools.pairwise(chunks):
        first = current.split(". ")[0] + "."
        assert first in previous, "each chunk starts with the end of the previous one"
        assert len(current) <= 200
    assert sentences[-1] in chunks[-1] and sentences[0] in chunks[0]


def test_a_sentence_longer_than_a_chunk_is_cut_between_words() -> None:
    words = " ".join(f"word{i}" for i in range(100))
    chunks = chunk_text(words, 60, overlap=0)
    assert all(len(c) <= 60 for c in chunks)
    assert " ".join(chunks).split() == words.split()


def test_unbreakable_text_is_cut_at_the_limit() -> None:
    assert chunk_text("x" * 250, 100, overlap=0) == ["x" * 100, "x" * 100, "x" * 50]


def test_a_tiny_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        chunk_text("text", 5)
