"""Invitations end to end: the API, the Invitation workflow on the dev server, real SMTP mail."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.main import create_app
from iaf.mail.links import token_hash
from iaf.settings import Settings
from iaf.workflow_calls import invitation_workflow_id, referral_workflow_id
from schemas.invitations import InvitationResult
from tests.conftest import make_settings
from tests.helpers import (
    Person,
    colleague,
    free_port,
    open_stream,
    serve_api,
    serve_app,
    signup,
    unique_email,
)
from tests.smtp_capture import SmtpCapture, link_in

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
async def temporal(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, data_converter=pydantic_data_converter)


async def invite(person: Person, room_id: str, email: str, **extra: Any) -> httpx.Response:
    return await person.post(f"/api/chat/rooms/{room_id}/invite", json={"email": email, **extra})


async def invited(
    person: Person, smtp: SmtpCapture, room_id: str, email: str
) -> tuple[dict[str, Any], str]:
    """Invite and wait for the mail; returns the invitation and the token from the mail's link."""
    response = await invite(person, room_id, email)
    assert response.status_code == 201, response.text
    message = await smtp.wait_for(lambda m: str(m["To"]) == email)
    return response.json(), link_in(message)[1]


def other_ip_client(api_url: str) -> httpx.AsyncClient:
    """A client from its own loopback address, so per-IP limits are its own."""
    address = f"127.{random.randint(1, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=api_url, transport=transport, timeout=30)


async def test_invite_mail_link_accept_adds_member_and_tells_the_inviter(
    client, smtp, settings, temporal, database_url
):
    alice = await signup(client, "Alice Host")
    room = await alice.new_room("Launch plan")
    guest_email = unique_email("guest")
    async with open_stream(client, alice, room["id"]) as stream:
        invitation, token = await invited(alice, smtp, room["id"], guest_email)
        assert invitation["status"] == "pending" and invitation["email"] == guest_email
        assert "token" not in invitation

        info = await client.get(f"/api/chat/invitations/{token}")
        assert info.status_code == 200
        assert info.json()["id"] == invitation["id"]
        assert info.json()["room_name"] == "Launch plan"
        assert info.json()["inviter_name"] == "Alice Host"
        assert info.json()["status"] == "pending"

        accepted = await client.post(
            f"/api/chat/invitations/{token}/accept",
            json={"name": "Gus Guest", "password": PASSWORD},
        )
        assert accepted.status_code == 200, accepted.text
        body = accepted.json()
        assert body["room_id"] == room["id"] and body["access_token"]
        assert body["id"] == invitation["id"] and body["status"] == "accepted"
        assert body["user"]["email"] == guest_email
        assert body["user"]["org_id"] != alice.user["org_id"], "a guest gets its own organisation"

        joined = await stream.wait_for(
            lambda e: e.event == "member.add" and e.data["user_id"] == body["user"]["id"]
        )
        assert joined.data["invitation_id"] == invitation["id"]
        notice = await stream.wait_for(lambda e: e.event == "invitation.accepted")
        assert notice.data == {
            "invitation_id": invitation["id"],
            "room_id": room["id"],
            "invited_by": alice.id,
            "user_id": body["user"]["id"],
        }

    gus = Person(client, body["access_token"], body["user"])
    rooms = (await gus.get("/api/chat/rooms")).json()["items"]
    assert [r["id"] for r in rooms] == [room["id"]]
    members = (await alice.get(f"/api/chat/rooms/{room['id']}/members")).json()["items"]
    assert gus.id in {m["user_id"] for m in members}

    result = await temporal.get_workflow_handle(
        invitation_workflow_id(invitation["id"]), result_type=InvitationResult
    ).result()
    assert result.status == "accepted" and result.invite_sent and result.referral_id is not None
    described = await temporal.get_workflow_handle(
        referral_workflow_id(result.referral_id)
    ).describe()
    assert described.id == f"referral-{result.referral_id}"


async def test_the_token_is_stored_only_as_its_hash_and_never_reaches_temporal(
    client, smtp, settings, temporal, database_url
):
    alice = await signup(client)
    room = await alice.new_room()
    invitation, token = await invited(alice, smtp, room["id"], unique_email("hash"))
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT * FROM invitations WHERE id = %s", (invitation["id"],)
        ).fetchone()
    assert row is not None
    assert token_hash(token) in row
    assert not any(token in str(value) for value in row), "the raw token is in the row"
    assert len(token) >= 43, "at least 256 bits, URL-safe"
    handle = temporal.get_workflow_handle(invitation_workflow_id(invitation["id"]))
    history = (await handle.fetch_history()).to_json()
    assert token not in history and invitation["email"] not in history


async def test_inviting_the_same_address_again_returns_the_pending_invitation(client, smtp):
    alice = await signup(client)
    room = await alice.new_room()
    email = unique_email("twice")
    first = await invite(alice, room["id"], email)
    assert first.status_code == 201
    again = await invite(alice, room["id"], email.upper())
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other_room = await alice.new_room("other")
    elsewhere = await invite(alice, other_room["id"], email)
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first.json()["id"]
    listed = (await alice.get(f"/api/chat/rooms/{room['id']}/invitations")).json()["items"]
    assert [i["id"] for i in listed] == [first.json()["id"]]


async def test_only_room_owners_and_admins_invite_resend_and_revoke(client, smtp):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    outsider = await signup(client, "Olga Outsider")
    email = unique_email("authz")
    assert (await invite(bob, room["id"], email)).status_code == 403
    assert (await invite(outsider, room["id"], email)).status_code == 404
    created = await invite(alice, room["id"], email)
    path = f"/api/chat/rooms/{room['id']}/invitations/{created.json()['id']}"
    assert (await bob.post(f"{path}/resend")).status_code == 403
    assert (await bob.delete(path)).status_code == 403
    assert (await outsider.delete(path)).status_code == 404
    assert (await bob.get(f"/api/chat/rooms/{room['id']}/invitations")).status_code == 403
    assert (
        await client.post(f"/api/chat/rooms/{room['id']}/invite", json={"email": email})
    ).status_code == 401


async def test_bad_invite_requests_are_4xx(client, smtp, settings):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    assert (await invite(alice, room["id"], "not-an-address")).status_code == 422
    assert (
        await invite(alice, room["id"], unique_email(), expires_in_minutes=0)
    ).status_code == 422
    too_long = await invite(
        alice, room["id"], unique_email(), expires_in_minutes=settings.invitation_max_minutes + 1
    )
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "invalid_expiry"
    member = await invite(alice, room["id"], bob.user["email"])
    assert member.status_code == 409 and member.json()["error"]["code"] == "already_member"
    ok = await invite(alice, room["id"], unique_email(), expires_in_minutes=1)
    assert ok.status_code == 201


async def test_an_existing_account_accepts_when_signed_in_with_the_invited_address(
    client, smtp, temporal
):
    alice = await signup(client)
    room = await alice.new_room()
    carol = await signup(client, "Carol Elsewhere")
    mallory = await signup(client, "Mallory")
    invitation, token = await invited(alice, smtp, room["id"], carol.user["email"])
    anonymous = await client.post(f"/api/chat/invitations/{token}/accept")
    assert anonymous.status_code == 401
    exists = await client.post(
        f"/api/chat/invitations/{token}/accept", json={"name": "C", "password": PASSWORD}
    )
    assert exists.status_code == 409 and exists.json()["error"]["code"] == "account_exists"
    wrong = await mallory.post(f"/api/chat/invitations/{token}/accept")
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_account"
    accepted = await carol.post(f"/api/chat/invitations/{token}/accept")
    assert accepted.status_code == 200
    assert accepted.json()["access_token"] is None and accepted.json()["room_id"] == room["id"]
    assert room["id"] in {r["id"] for r in (await carol.get("/api/chat/rooms")).json()["items"]}
    result = await temporal.get_workflow_handle(
        invitation_workflow_id(invitation["id"]), result_type=InvitationResult
    ).result()
    assert result.status == "accepted" and result.referral_id is None, (
        "existing users are no referral"
    )
    assert (await alice.get("/api/referrals")).json()["items"] == []


async def test_accepting_twice_is_idempotent_for_the_same_person_only(client, smtp):
    alice = await signup(client)
    room = await alice.new_room()
    email = unique_email("idem")
    _, token = await invited(alice, smtp, room["id"], email)
    body = {"name": "Ida", "password": PASSWORD}
    first = await client.post(f"/api/chat/invitations/{token}/accept", json=body)
    assert first.status_code == 200
    retry = await client.post(f"/api/chat/invitations/{token}/accept", json=body)
    assert retry.status_code == 200
    assert retry.json()["user"]["id"] == first.json()["user"]["id"] and retry.json()["access_token"]
    ida = Person(client, first.json()["access_token"], first.json()["user"])
    assert (await ida.post(f"/api/chat/invitations/{token}/accept")).status_code == 200
    guess = await client.post(
        f"/api/chat/invitations/{token}/accept", json={**body, "password": "wrong password"}
    )
    assert guess.status_code == 409 and guess.json()["error"]["code"] == "invitation_used"
    assert (await alice.post(f"/api/chat/invitations/{token}/accept")).status_code == 409
    members = (await alice.get(f"/api/chat/rooms/{room['id']}/members")).json()["items"]
    assert [m["user_id"] for m in members].count(ida.id) == 1
    referrals = (await alice.get("/api/referrals")).json()["items"]
    assert len(referrals) == 1 and referrals[0]["referred_user_id"] == ida.id


async def test_revoked_and_expired_invitations_answer_410(client, smtp, temporal, database_url):
    alice = await signup(client)
    room = await alice.new_room()
    invitation, token = await invited(alice, smtp, room["id"], unique_email("revoke"))
    path = f"/api/chat/rooms/{room['id']}/invitations/{invitation['id']}"
    revoked = await alice.delete(path)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert (await alice.delete(path)).status_code == 200, "revoking again changes nothing"
    gone = await client.post(
        f"/api/chat/invitations/{token}/accept", json={"name": "R", "password": PASSWORD}
    )
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "invitation_revoked"
    assert (await client.get(f"/api/chat/invitations/{token}")).json()["status"] == "revoked"
    assert (await alice.post(f"{path}/resend")).status_code == 409
    result = await temporal.get_workflow_handle(
        invitation_workflow_id(invitation["id"]), result_type=InvitationResult
    ).result()
    assert result.status == "revoked"

    late, late_token = await invited(alice, smtp, room["id"], unique_email("late"))
    with psycopg.connect(
        database_url
    ) as conn:  # its timer has not fired yet: the API still refuses
        conn.execute(
            "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = %s",
            (late["id"],),
        )
    expired = await client.post(
        f"/api/chat/invitations/{late_token}/accept", json={"name": "L", "password": PASSWORD}
    )
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "invitation_expired"
    page = await client.get(f"/api/chat/invitations/{late_token}", headers={"Accept": "text/html"})
    assert page.status_code == 410 and "has expired" in page.text


async def test_unknown_tokens_are_404_and_cost_the_same_queries_as_real_ones(
    settings, smtp, client
):
    app = create_app(settings)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        alice = await signup(http)
        room = await alice.new_room()
        _, token = await invited(alice, smtp, room["id"], unique_email("timing"))
        statements: list[tuple[str, Any]] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            statements.append((statement, parameters))

        engine = app.state.iaf.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            real = await http.get(f"/api/chat/invitations/{token}")
            real_sql = [s for s, _ in statements]
            statements.clear()
            guessed = "A" * len(token)
            fake = await http.get(f"/api/chat/invitations/{guessed}")
            fake_params = [p for _, p in statements]
            fake_sql = [s for s, _ in statements]
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert real.status_code == 200
    assert fake.status_code == 404 and fake.json()["error"]["code"] == "invitation_not_found"
    assert fake_sql == real_sql, "an unknown token runs exactly the queries a real one does"
    lookups = [s for s in fake_sql if "token_hash" in s]
    assert len(lookups) == 1
    assert any(token_hash(guessed) in str(p) for p in fake_params)
    assert not any(guessed in str(p) for p in fake_params), "only the hash is looked up"
    html = await client.get(f"/api/chat/invitations/{guessed}", headers={"Accept": "text/html"})
    assert html.status_code == 404 and "not valid" in html.text


async def test_accept_is_rate_limited_per_ip(api_url, settings, smtp, client):
    limit = settings.invitation_accepts_per_minute
    async with other_ip_client(api_url) as http:
        statuses = [
            (await http.post(f"/api/chat/invitations/x{i}/accept")).status_code
            for i in range(limit)
        ]
        blocked = await http.post("/api/chat/invitations/whatever/accept")
    assert set(statuses) == {404}
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert (await client.post("/api/chat/invitations/whatever/accept")).status_code == 404, (
        "other IPs unaffected"
    )


async def test_the_landing_page_is_the_seed_invitation_with_a_sign_up_form(client, smtp):
    alice = await signup(client, "Alice <b>Bold</b>")
    room = await alice.new_room("Project <script>alert(1)</script>")
    _, token = await invited(alice, smtp, room["id"], unique_email("page"))
    page = await client.get(
        f"/api/chat/invitations/{token}", headers={"Accept": "text/html,*/*;q=0.8"}
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "You're invited to collaborate on IAFactory!" in text
    assert "Alice &lt;b&gt;Bold&lt;/b&gt;" in text and "<script>alert(1)</script>" not in text
    assert "Accept Invitation" in text and "Already have an account?" in text
    assert 'id="signup-form"' in text and 'name="password"' in text and 'name="name"' in text
    assert "/accept" in text, "the form posts to the accept endpoint"
    csp = page.headers["content-security-policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in text and "frame-ancestors 'none'" in csp
    assert (
        page.headers["referrer-policy"] == "no-referrer"
        and page.headers["cache-control"] == "no-store"
    )


async def test_resend_mails_the_same_working_link_and_is_rate_limited(client, smtp, settings):
    alice = await signup(client)
    room = await alice.new_room()
    email = unique_email("resend")
    invitation, token = await invited(alice, smtp, room["id"], email)
    path = f"/api/chat/rooms/{room['id']}/invitations/{invitation['id']}/resend"
    resent = await alice.post(path)
    assert resent.status_code == 202
    await smtp.wait_for(
        lambda m: str(m["To"]) == email and "again" in str(m.get_body(("plain",)).get_content())
    )
    assert {link_in(m)[1] for m in smtp.to(email)} == {token}
    for _ in range(settings.invitation_resends_per_hour - 1):
        assert (await alice.post(path)).status_code == 202
    assert (await alice.post(path)).status_code == 429


async def test_smtp_down_at_invite_time_the_api_answers_201_and_mail_follows(
    client, smtp, temporal
):
    alice = await signup(client)
    room = await alice.new_room()
    email = unique_email("outage")
    smtp.stop()
    try:
        response = await invite(alice, room["id"], email)
        assert response.status_code == 201
        await asyncio.sleep(1.5)
        assert smtp.to(email) == []
    finally:
        smtp.start()
    message = await smtp.wait_for(lambda m: str(m["To"]) == email, timeout=60)
    _, token = link_in(message)
    assert (await client.get(f"/api/chat/invitations/{token}")).json()["status"] == "pending"
    history = await temporal.get_workflow_handle(
        invitation_workflow_id(response.json()["id"])
    ).fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert attempts and attempts[0] >= 2, (
        "the first send failed while SMTP was down, then was retried"
    )
    assert len(smtp.to(email)) == 1


async def test_with_temporal_away_an_invite_is_refused_and_leaves_nothing_behind(
    data_dir, database_url, smtp
):
    settings = make_settings(data_dir, database_url, f"127.0.0.1:{free_port()}")
    async with serve_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        alice = await signup(http)
        room = await alice.new_room()
        email = unique_email("no-temporal")
        refused = await invite(alice, room["id"], email)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "temporarily_unavailable"
    with psycopg.connect(database_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM invitations WHERE email = %s", (email,)
        ).fetchone()
    assert left == (0,), "nothing was acknowledged, so nothing is kept"


async def test_accept_with_unstorable_text_is_422_and_the_invitation_stays_pending(client, smtp):
    alice = await signup(client)
    room = await alice.new_room()
    _, token = await invited(alice, smtp, room["id"], unique_email("nul"))
    url = f"/api/chat/invitations/{token}/accept"
    headers = {"content-type": "application/json"}
    for body in (
        {"name": "N\u0000", "password": PASSWORD},
        {"name": "\ud800", "password": PASSWORD},
        {"name": "N", "password": PASSWORD + "\udfff"},
    ):
        response = await client.post(url, content=json.dumps(body), headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    assert (await client.get(f"/api/chat/invitations/{token}")).json()["status"] == "pending"
    long_name = "G" * 200
    accepted = await client.post(url, json={"name": long_name, "password": PASSWORD})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["user"]["name"] == long_name


async def test_a_retried_sign_up_is_a_login_rate_limited_per_account(
    api_url, client, smtp, settings
):
    alice = await signup(client)
    room = await alice.new_room()
    _, token = await invited(alice, smtp, room["id"], unique_email("retry"))
    url = f"/api/chat/invitations/{token}/accept"
    async with other_ip_client(api_url) as http:
        first = await http.post(url, json={"name": "Rita", "password": PASSWORD})
        assert first.status_code == 200
        wrong = {"name": "Rita", "password": "not the password"}
        statuses = [
            (await http.post(url, json=wrong)).status_code
            for _ in range(settings.login_attempts_per_minute)
        ]
        assert set(statuses) == {409}
        blocked = await http.post(url, json={"name": "Rita", "password": PASSWORD})
    assert blocked.status_code == 429, blocked.text
    assert blocked.json()["error"]["code"] == "rate_limited"
    assert int(blocked.headers["Retry-After"]) >= 1
    assert "access_token" not in blocked.text


async def test_a_retried_sign_up_gets_no_token_for_an_inactive_account(
    api_url, client, smtp, database_url
):
    alice = await signup(client)
    room = await alice.new_room()
    _, token = await invited(alice, smtp, room["id"], unique_email("frozen"))
    url = f"/api/chat/invitations/{token}/accept"
    async with other_ip_client(api_url) as http:
        first = await http.post(url, json={"name": "Fay", "password": PASSWORD})
        assert first.status_code == 200
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "UPDATE users SET status = 'frozen' WHERE id = %s", (first.json()["user"]["id"],)
            )
        retry = await http.post(url, json={"name": "Fay", "password": PASSWORD})
    assert retry.status_code == 409, retry.text
    assert retry.json()["error"]["code"] == "invitation_used"
    assert "access_token" not in retry.text


async def test_concurrent_sign_up_accepts_of_one_invitation_make_one_account(api_url, client, smtp):
    alice = await signup(client)
    room = await alice.new_room()
    _, token = await invited(alice, smtp, room["id"], unique_email("twice"))
    url = f"/api/chat/invitations/{token}/accept"
    async with other_ip_client(api_url) as http:
        responses = await asyncio.gather(
            *(http.post(url, json={"name": "Twin", "password": PASSWORD}) for _ in range(4))
        )
    assert all(r.status_code in (200, 409) for r in responses), [r.text for r in responses]
    users = {r.json()["user"]["id"] for r in responses if r.status_code == 200}
    assert len(users) == 1, [r.text for r in responses]
    members = (await alice.get(f"/api/chat/rooms/{room['id']}/members")).json()["items"]
    assert [m["user_id"] for m in members].count(users.pop()) == 1
