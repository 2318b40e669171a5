"""Credits: the starting grant, the ledger's guarantees, GET /api/credits, a referral paying out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.db.repositories.ledger import LedgerRepository
from tests.helpers import Person, colleague, signup, unique_email
from tests.smtp_capture import link_in

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url, 2)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_sign_up_and_org_user_creation_grant_the_starting_credits_once(client, settings):
    alice = await signup(client)
    bob = await colleague(alice)
    for person in (alice, bob):
        credits = (await person.get("/api/credits")).json()
        assert credits["balance"] == settings.starting_credits
        assert [
            (e["amount"], e["kind"], e["source"], e["source_id"]) for e in credits["items"]
        ] == [(settings.starting_credits, "grant", "signup", person.id)]


async def test_history_pages_newest_first_and_the_balance_sums_every_entry(
    client, settings, sessionmaker
):
    alice = await signup(client)
    user_id = uuid.UUID(alice.id)
    async with sessionmaker() as session:
        ledger = LedgerRepository(session)
        for n in range(5):
            assert await ledger.append(user_id, -(n + 1), "debit", "test-debit", f"{alice.id}-{n}")
        await session.commit()
    seen: list[int] = []
    before = None
    while True:
        params = {"limit": 2, **({"before": before} if before else {})}
        page = (await alice.get("/api/credits", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)
    assert (await alice.get("/api/credits")).json()["balance"] == settings.starting_credits - 15


async def test_a_booking_is_idempotent_and_entries_cannot_be_edited(client, sessionmaker):
    alice = await signup(client)
    user_id = uuid.UUID(alice.id)
    async with sessionmaker() as session:
        ledger = LedgerRepository(session)
        assert await ledger.append(user_id, -7, "reserve", "reply-reserve", "reply-42-x") is True
        assert await ledger.append(user_id, -7, "reserve", "reply-reserve", "reply-42-x") is False
        assert await ledger.grant_starting_credits(user_id, 1000) is False, (
            "granted at sign-up already"
        )
        await session.commit()
        entry = await ledger.entry("reply-reserve", "reply-42-x")
        assert entry is not None and entry.amount == -7
    async with sessionmaker() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(
                text("UPDATE ledger_entries SET amount = 1 WHERE id = :id"), {"id": entry.id}
            )


async def test_credits_and_referrals_need_a_user_and_valid_paging(client):
    assert (await client.get("/api/credits")).status_code == 401
    assert (await client.get("/api/referrals")).status_code == 401
    alice = await signup(client)
    assert (await alice.get("/api/credits", params={"limit": 0})).status_code == 422
    assert (await alice.get("/api/credits", params={"before": "x"})).status_code == 422
    assert (await alice.get("/api/referrals")).json() == {"items": []}


async def test_a_guest_signs_up_on_the_invitation_page_posts_and_the_referrer_earns_the_reward(
    client, smtp, settings
):
    alice = await signup(client, "Alice Referrer")
    room = await alice.new_room("Growth")
    email = unique_email("newcomer")
    assert (
        await alice.post(f"/api/chat/rooms/{room['id']}/invite", json={"email": email})
    ).status_code == 201
    url, token = link_in(await smtp.wait_for(lambda m: str(m["To"]) == email))
    path = url.split("://", 1)[1].split("/", 1)[1]
    page = await client.get(f"/{path}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and 'id="signup-form"' in page.text
    before = (await alice.get("/api/credits")).json()["balance"]

    # What the page's form sends.
    joined = await client.post(
        f"/{path}/accept", json={"name": "Nina Newcomer", "password": PASSWORD}
    )
    assert joined.status_code == 200
    nina = Person(client, joined.json()["access_token"], joined.json()["user"])
    assert (await nina.get("/api/credits")).json()["balance"] == settings.starting_credits
    assert (await alice.get("/api/referrals")).json()["items"][0]["status"] == "pending"
    await nina.say(room["id"], "Hi all, glad to be here")

    balance = before
    for _ in range(300):
        balance = (await alice.get("/api/credits")).json()["balance"]
        if balance != before:
            break
        await asyncio.sleep(0.1)
    assert balance == before + settings.referral_reward_credits
    await nina.say(room["id"], "a second message")
    referrals = (await alice.get("/api/referrals")).json()["items"]
    assert [(r["status"], r["referred_user_id"], r["referred_name"]) for r in referrals] == [
        ("granted", nina.id, "Nina Newcomer")
    ]
    entries = (await alice.get("/api/credits")).json()["items"]
    assert [e["amount"] for e in entries if e["source"] == "referral"] == [
        settings.referral_reward_credits
    ]
    assert token not in str(entries)


async def test_a_credits_cursor_beyond_64_bits_is_422(client):
    alice = await signup(client)
    assert (await alice.get("/api/credits", params={"before": 2**63 - 1})).status_code == 200
    for before in (2**63, 10**30):
        too_big = await alice.get("/api/credits", params={"before": before})
        assert too_big.status_code == 422, too_big.text
        assert too_big.json()["error"]["code"] == "invalid_request"
