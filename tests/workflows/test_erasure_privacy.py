"""Erasure in both directions: everything of the subject goes (their words in agent replies,
quotes of them, a referral's ledger note), nothing of anyone else is touched (an everyday
word for a name, rooms of other organisations, short overlaps in others' own words)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from iaf.mail.links import derive_token
from iaf.workflow_calls import reply_workflow_id
from tests.agent_helpers import ingest, rows
from tests.gdpr_helpers import compliance_officer, execute, org_user, scalar, wait_request
from tests.helpers import Person, signup
from tests.privacy_helpers import eventually, postgres_holding, replay, reply_over
from tests.workflows.test_erasure import accept_as_guest, submit


def token() -> str:
    return f"Zq{uuid.uuid4().hex[:8]}"


async def erase(officer: Person, subject: Person) -> dict[str, Any]:
    request = await submit(officer, "erasure", subject, grace_days=0)
    done = await wait_request(officer, request["id"], ("complete", "error"), patience=180)
    assert done["status"] == "complete", (
        done["failed_step"],
        done["verification"],
        [(s["step"], s["status"], s["last_error"]) for s in done["steps"]],
    )
    return done


def review_of(done: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["location"], r["needle"]) for r in done["verification"]["review"]}


async def contents(person: Person, room_id: str) -> dict[int, str]:
    listed = await person.get(f"/api/chat/rooms/{room_id}/messages?limit=200")
    return {m["id"]: m["content"] for m in listed.json()["items"]}


async def test_replies_for_the_subject_and_every_copy_of_their_words_go(
    client, settings, database_url
):
    subject = await signup(client, "Sigrid Vantablack")
    bob = await org_user(subject, "Bob Keeper-Two")
    officer = await compliance_officer(subject)
    room = await subject.new_room("shared", member_ids=[bob.id])
    word, other = token(), token()
    long_text = (
        f"the {word} ledger migration needs a dry run on staging first and then a"
        " careful rollout with the finance team watching every step"
    )
    asked = await subject.say(room["id"], f"@architect {long_text}")
    handed = await subject.say(room["id"], f"@architect ask @developer about the {other} cutover")
    for message, agent in ((asked, "architect"), (handed, "architect")):
        assert await reply_over(database_url, reply_workflow_id(message["id"], agent)) == "done"
    handoff = await eventually(
        lambda: _runs_for(database_url, subject.id),
        lambda runs: (
            len(runs) >= 3
            and all(status in ("done", "error", "cancelled") for status in runs.values())
        ),
    )
    assert any(r.endswith("-developer") for r in handoff), handoff

    # Bob quotes the subject at length, then asks an agent about it (the reply quotes him);
    # elsewhere he shares a few of the same words in his own sentence.
    quote = " ".join(long_text.split()[:14])
    quoting = await bob.say(room["id"], f"@analyst summarise what they said: {quote} - ok?")
    assert await reply_over(database_url, reply_workflow_id(quoting["id"], "analyst")) == "done"
    overlap = await bob.say(room["id"], "my view: a dry run on staging first, always")
    own = await bob.say(room["id"], f"bob's {token()} words stay as they are")
    before = await contents(bob, room["id"])

    done = await erase(officer, subject)
    assert postgres_holding(database_url, [word, other]) == {}
    after = await contents(bob, room["id"])
    assert after[own["id"]] == before[own["id"]] and after[overlap["id"]] == before[overlap["id"]]
    assert after[quoting["id"]] == "@analyst summarise what they said: [erased] - ok?"
    agent_texts = [c for i, c in after.items() if i not in (own["id"], overlap["id"])]
    assert all(word not in c and "dry run on staging" not in c for c in agent_texts)
    assert ("postgres:messages.content", "text") in review_of(done)  # Bob's short overlap
    events = await replay(client, bob, room["id"], database_url)
    assert all(word not in str(e.data) and other not in str(e.data) for e in events)
    assert "agent.delta" not in [e.event for e in events]


def _runs_for(database_url: str, user_id: str) -> Any:
    async def probe() -> dict[str, str]:
        found = rows(
            database_url,
            "SELECT reply_id, status FROM agent_runs WHERE requested_by = %s",
            user_id,
        )
        return {str(r): str(s) for r, s in found}

    return probe()


async def test_a_colleagues_document_quoting_the_subject_is_kept_and_listed_for_review(
    client, settings, database_url
):
    """Bob's document is his own words, even where it quotes the subject: the erasure keeps
    it (and the chunk texts retrieval reads) byte for byte and lists the quote for review."""
    subject = await signup(client, "Quentin Docquoted")
    bob = await org_user(subject, "Bob Archivist")
    officer = await compliance_officer(subject)
    room = await subject.new_room("notes", member_ids=[bob.id])
    said = (
        f"the {token()} archive keeps every signed contract for seven years"
        " in the basement vault behind the mail room"
    )
    await subject.say(room["id"], said)
    document = f"Minutes. Quentin said: {said}. We agreed."
    uploaded = await ingest(bob, "Minutes", document)

    done = await erase(officer, subject)
    kept = await bob.get(f"/api/knowledge/documents/{uploaded['id']}")
    assert kept.json()["content"] == document
    chunks = rows(
        database_url,
        "SELECT content FROM knowledge_chunks WHERE document_id = %s",
        uploaded["id"],
    )
    assert "".join(str(c) for (c,) in chunks).count("basement vault") == 1
    assert {
        ("postgres:knowledge_documents", "text"),
        ("postgres:knowledge_chunks", "text"),
    } <= review_of(done)


async def test_an_everyday_word_for_a_name_touches_nobody_elses_words(
    client, settings, database_url
):
    subject = await signup(client, "the")
    bob = await org_user(subject, "Bob Plainspoken")
    officer = await compliance_officer(subject)
    room = await bob.new_room("the plan room", member_ids=[subject.id], topic="the topic")
    await subject.say(room["id"], "hello everyone")
    theirs = await bob.say(room["id"], "the plan is in the doc, see the wiki")
    before = await contents(bob, room["id"])

    done = await erase(officer, subject)
    after = await contents(bob, room["id"])
    assert after[theirs["id"]] == "the plan is in the doc, see the wiki" == before[theirs["id"]]
    shown = (await bob.get(f"/api/chat/rooms/{room['id']}")).json()
    assert (shown["name"], shown["topic"]) == ("the plan room", "the topic")
    assert ("postgres:messages.content", "name") in review_of(done)


async def test_rooms_of_other_organisations_lose_the_handle_but_keep_the_name(
    client, settings, database_url
):
    subject = await signup(client, "Ulla Quistgaard")
    officer = await compliance_officer(subject)
    colleague_ = await org_user(subject, "Otto Insider")
    home = await subject.new_room("home", member_ids=[colleague_.id])
    carol = await signup(client, "Carol Outsider")
    away = await carol.new_room("partners")
    handle = subject.user["handle"]
    # The subject joins Carol's organisation's room as a guest (an existing account).
    invited = await carol.post(
        f"/api/chat/rooms/{away['id']}/invite", json={"email": subject.user["email"]}
    )
    assert invited.status_code == 201, invited.text
    salt = await scalar(
        settings,
        "SELECT token_salt FROM invitations WHERE id = :id",
        id=uuid.UUID(invited.json()["id"]),
    )
    token_ = derive_token(settings.secret("invitation_secret"), salt)
    accepted = await subject.post(f"/api/chat/invitations/{token_}/accept")
    assert accepted.status_code == 200, accepted.text
    away_msg = await carol.say(away["id"], f"thanks Ulla Quistgaard, cc @{handle}")
    home_msg = await colleague_.say(home["id"], f"thanks Ulla Quistgaard, cc @{handle}")

    done = await erase(officer, subject)
    away_now = (await contents(carol, away["id"]))[away_msg["id"]]
    home_now = (await contents(colleague_, home["id"]))[home_msg["id"]]
    assert away_now == "thanks Ulla Quistgaard, cc @erased"
    assert home_now == "thanks [erased], cc @erased"
    assert ("postgres:messages.content", "name") in review_of(done)


async def test_a_referred_person_is_erased_and_the_referrer_keeps_the_credit(
    client, settings, database_url
):
    referrer = await signup(client, "Rhea Referrer")
    officer = await compliance_officer(referrer)
    room = await referrer.new_room("welcome")
    referred = await accept_as_guest(client, settings, referrer, room["id"], "Tobias Referred")
    await referred.say(room["id"], "my first message")

    async def referral_entries() -> int:
        return int(
            await scalar(
                settings,
                "SELECT count(*) FROM ledger_entries WHERE user_id = :u AND source = 'referral'",
                u=uuid.UUID(referrer.id),
            )
        )

    assert await eventually(referral_entries, lambda n: n == 1) == 1
    balance = (await referrer.get("/api/credits")).json()["balance"]
    guest_officer = await compliance_officer(referred)

    await erase(guest_officer, referred)
    assert await referral_entries() == 1
    assert (await referrer.get("/api/credits")).json()["balance"] == balance
    assert postgres_holding(database_url, [referred.id]) == {}
    assert officer.id  # the referrer's organisation was not involved


async def test_the_ledger_changes_notes_but_never_facts(settings, client):
    person = await signup(client, "Lena Ledger")
    entry = await scalar(
        settings, "SELECT id FROM ledger_entries WHERE user_id = :u", u=uuid.UUID(person.id)
    )
    assert (
        await execute(
            settings,
            'UPDATE ledger_entries SET meta = meta || \'{"note": "x"}\' WHERE id = :id',
            id=entry,
        )
        == 1
    )
    with pytest.raises(Exception, match="append-only"):
        await execute(settings, "UPDATE ledger_entries SET amount = 1 WHERE id = :id", id=entry)
    assert (
        await scalar(
            settings, "SELECT meta ->> 'note' FROM ledger_entries WHERE id = :id", id=entry
        )
        == "x"
    )
