"""The shared text type: what PostgreSQL cannot store is a validation error, not a 500."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from schemas.auth import LoginRequest, SignupRequest
from schemas.chat import MessageCreate, ReadMarker, RoomCreate, RoomUpdate
from schemas.common import MAX_BIGINT, SafeStr, UnicodeStr
from schemas.invitations import AcceptRequest
from schemas.knowledge import DocumentCreate, MemoryCreate
from schemas.openai import ChatCompletionRequest


class Text(BaseModel):
    value: SafeStr


class Secret(BaseModel):
    value: UnicodeStr


@pytest.mark.parametrize("bad", ["\x00", "a\x00b", "\ud800", "x\udfffy", "é\ud83d"])
def test_safe_text_refuses_nul_and_lone_surrogates(bad):
    with pytest.raises(ValidationError):
        Text(value=bad)


@pytest.mark.parametrize("good", ["", "plain", "é à ü", "emoji 😀", "中文", "tab\tnewline\n"])
def test_safe_text_keeps_valid_text_unchanged(good):
    assert Text(value=good).value == good


def test_password_text_allows_nul_but_not_surrogates():
    assert Secret(value="pass\x00word").value == "pass\x00word"
    with pytest.raises(ValidationError):
        Secret(value="pass\ud800word")


def test_every_stored_text_field_uses_the_safe_type():
    email = "a@example.com"
    bad_bodies = [
        (SignupRequest, {"email": email, "password": "long enough", "name": "a\x00"}),
        (SignupRequest, {"email": email, "password": "long \ud800 pw", "name": "a"}),
        (
            SignupRequest,
            {"email": email, "password": "long enough", "name": "a", "org_name": "\x00"},
        ),
        (LoginRequest, {"email": email, "password": "\ud800"}),
        (RoomCreate, {"name": "r\x00"}),
        (RoomCreate, {"name": "r", "topic": "\ud800"}),
        (RoomUpdate, {"name": "\x00"}),
        (RoomUpdate, {"topic": "t\x00"}),
        (MessageCreate, {"content": "\ud800"}),
        (MessageCreate, {"content": "ok", "client_msg_id": "\x00"}),
        (AcceptRequest, {"name": "\x00", "password": "long enough"}),
        (DocumentCreate, {"title": "\x00", "content": "c", "scope": "org"}),
        (DocumentCreate, {"title": "t", "content": "\ud800", "scope": "org"}),
        (MemoryCreate, {"content": "m\x00"}),
        (
            ChatCompletionRequest,
            {"model": "architect", "messages": [{"role": "user", "content": "\x00"}]},
        ),
        (
            ChatCompletionRequest,
            {"model": "a\ud800", "messages": [{"role": "user", "content": "hi"}]},
        ),
    ]
    for model, body in bad_bodies:
        with pytest.raises(ValidationError):
            model.model_validate(body)


def test_ids_are_bounded_to_bigint():
    assert ReadMarker(message_id=MAX_BIGINT).message_id == MAX_BIGINT
    with pytest.raises(ValidationError):
        ReadMarker(message_id=MAX_BIGINT + 1)
    with pytest.raises(ValidationError):
        MessageCreate(content="x", reply_to_id=2**64)


@pytest.mark.parametrize("field", ["name", "topic", "auto_route", "archived"])
def test_a_room_update_refuses_null_but_allows_omission(field):
    with pytest.raises(ValidationError):
        RoomUpdate.model_validate({field: None})
    assert RoomUpdate.model_validate({}).model_dump(exclude_unset=True) == {}


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (RoomCreate, {"name": "   "}),
        (RoomUpdate, {"name": "\t\n"}),
        (DocumentCreate, {"title": "  ", "content": "c", "scope": "org"}),
        (SignupRequest, {"email": "a@example.com", "password": "long enough pw", "name": " "}),
    ],
)
def test_names_and_titles_must_not_be_blank(model, body):
    with pytest.raises(ValidationError):
        model.model_validate(body)


def test_names_are_trimmed():
    assert RoomCreate.model_validate({"name": "  design  "}).name == "design"
