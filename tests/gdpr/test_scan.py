"""Needles: whole addresses and whole words, in text and in serialized bytes."""

from __future__ import annotations

import json

from iaf.gdpr.scan import Needles

SUBJECT = Needles.of("ann@x.com", "Ann Lee", "0b7c6f8e-2f5a-4c3e-9a43-5f3f3e0a9d11")


def kinds(text: str) -> list[str]:
    return SUBJECT.found_in_text(text)


def test_an_address_inside_a_longer_one_is_someone_else():
    for other in (
        "joann@x.com",
        "ann@x.com.au",
        "j.ann@x.com",
        "ann@x.community",
        "ann@x.com-mail.org",
        "a+ann@x.com",
    ):
        assert kinds(f"write to {other} today") == [], other


def test_the_address_itself_is_found_however_it_is_written():
    for text in (
        "ann@x.com",
        "mail ANN@X.COM.",
        "<ann@x.com>",
        "'ann@x.com'",
        '{"email": "ann@x.com"}',
        "mailto:ann@x.com?subject=hi",
        "(ann@x.com)",
    ):
        assert kinds(text) == ["email"], text


def test_names_are_whole_words_and_ids_match_anywhere():
    assert kinds("Annual report by Ann Leeds") == []
    assert kinds("thanks ann lee!") == ["name"]
    assert kinds("user 0B7C6F8E-2F5A-4C3E-9A43-5F3F3E0A9D11 left") == ["id"]


def test_bytes_and_json_escapes():
    zoe = Needles.of("zoë@x.com", "Zoë Brandt", "id-1")
    blob = b"\x0a\x12" + json.dumps({"who": "Zoë Brandt"}).encode() + b"\xff\x00"
    assert zoe.found_in(blob) == ["name"]
    assert zoe.found_in(json.dumps({"who": "Zoë Brandt"}, ensure_ascii=False).encode()) == ["name"]
    assert zoe.found_in("Zoëy Brandt".encode()) == []
