"""A name replaced on its own is a full name of a person, never an everyday word."""

from __future__ import annotations

import pytest

from iaf.privacy.names import is_distinctive


@pytest.mark.parametrize("name", ["the", "Ali", "May", "May June", "The Best", "  ", "Zoë"])
def test_single_or_everyday_words_are_never_replaced_alone(name):
    assert not is_distinctive(name)


@pytest.mark.parametrize("name", ["Ann Lee", "Ali May", "Jean-Luc Picard", "Alice Subject Q1"])
def test_full_names_are(name):
    assert is_distinctive(name)
