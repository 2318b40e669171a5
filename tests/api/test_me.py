"""The person's own account: name, e-mail confirmed by a mailed link, password, sign-out."""

from __future__ import annotations

import re

from tests.helpers import signup, unique_email

PASSWORD = "correct horse battery"
LINK = re.compile(r"/confirm-email#token=([A-Za-z0-9_-]+)")


async def test_a_new_name_applies_at_once_and_bad_input_changes_nothing(client):
    alice = await signup(client)
    response = await alice.put("/api/me", json={"name": "Alice Renamed"})
    assert response.status_code == 200 and response.json()["name"] == "Alice Renamed"
    assert (await alice.get("/api/me")).json()["name"] == "Alice Renamed"
    for body in ({}, {"name": ""}, {"name": "   "}, {"email": "not-an-email"}, {"role": "x"}):
        refused = await alice.put("/api/me", json=body)
        assert refused.status_code == 422, body
    assert (await alice.get("/api/me")).json()["name"] == "Alice Renamed"
    assert (await client.put("/api/me", json={"name": "x"})).status_code == 401


async def test_a_new_email_waits_for_its_mailed_link_which_works_once(client, smtp):
    alice = await signup(client)
    old_email = alice.user["email"]
    new_email = unique_email("renamed")
    response = await alice.put("/api/me", json={"email": new_email})
    assert response.status_code == 200, response.text
    assert response.json()["email"] == old_email and response.json()["pending_email"] == new_email
    mail = await smtp.wait_for(lambda m: new_email in str(m["To"]))
    token = LINK.search(mail.get_body(preferencelist=("plain",)).get_content()).group(1)
    assert (await alice.get("/api/me")).json()["pending_email"] == new_email

    confirmed = await client.post("/api/me/email/confirm", json={"token": token})
    assert confirmed.status_code == 200 and confirmed.json()["email"] == new_email
    again = await client.post("/api/me/email/confirm", json={"token": token})
    assert again.status_code == 410 and again.json()["error"]["code"] == "link_used"
    unknown = await client.post("/api/me/email/confirm", json={"token": "x" * 43})
    assert unknown.status_code == 404
    login = await client.post("/api/auth/login", json={"email": new_email, "password": PASSWORD})
    assert login.status_code == 200
    old = await client.post("/api/auth/login", json={"email": old_email, "password": PASSWORD})
    assert old.status_code == 401


async def test_an_address_someone_else_uses_is_refused(client, smtp):
    alice, bob = await signup(client), await signup(client, "Bob")
    taken = await alice.put("/api/me", json={"email": bob.user["email"].upper()})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "email_taken"
    assert (await alice.get("/api/me")).json()["pending_email"] is None


async def test_a_password_change_signs_out_the_other_sessions_only(client):
    alice = await signup(client)
    login = await client.post(
        "/api/auth/login", json={"email": alice.user["email"], "password": PASSWORD}
    )
    other = {"Authorization": f"Bearer {login.json()['access_token']}"}
    wrong = await alice.post(
        "/api/me/password", json={"current_password": "nope", "new_password": "new password 1"}
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_password"
    assert (await client.get("/api/me", headers=other)).status_code == 200
    short = await alice.post(
        "/api/me/password", json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert short.status_code == 422
    changed = await alice.post(
        "/api/me/password", json={"current_password": PASSWORD, "new_password": "new password 1"}
    )
    assert changed.status_code == 200
    fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert (await client.get("/api/me", headers=fresh)).status_code == 200
    assert (await client.get("/api/me", headers=other)).status_code == 401
    assert (await alice.get("/api/me")).status_code == 401
    relogin = await client.post(
        "/api/auth/login", json={"email": alice.user["email"], "password": "new password 1"}
    )
    assert relogin.status_code == 200


async def test_logout_revokes_this_token_on_the_server_and_only_this_one(client):
    alice = await signup(client)
    login = await client.post(
        "/api/auth/login", json={"email": alice.user["email"], "password": PASSWORD}
    )
    other = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await alice.post("/api/auth/logout")).status_code == 204
    assert (await alice.get("/api/me")).status_code == 401
    assert (await alice.get("/api/chat/rooms")).status_code == 401
    other_person = type(alice)(client, login.json()["access_token"], alice.user)
    room = await other_person.new_room("still signed in here")
    posted = await alice.post(f"/api/chat/rooms/{room['id']}/messages", json={"content": "hi"})
    assert posted.status_code == 401  # the one-statement post path checks revocation too
    assert (await alice.post("/api/auth/logout")).status_code == 401
    assert (await client.get("/api/me", headers=other)).status_code == 200
