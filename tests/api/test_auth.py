"""Sign-up, login, tokens, API keys and org administration against the real stack."""

from __future__ import annotations

import asyncio
import json
import uuid

import psycopg

from tests.helpers import colleague, signup, unique_email


async def test_signup_creates_org_admin_and_me_returns_user(client):
    alice = await signup(client)
    me = await alice.get("/api/me")
    assert me.status_code == 200
    assert me.json()["id"] == alice.id
    assert me.json()["role"] == "org_admin"


async def test_signup_twice_with_same_email_is_a_conflict(client):
    email = unique_email()
    body = {"email": email, "password": "long enough pw", "name": "Dup"}
    assert (await client.post("/api/auth/signup", json=body)).status_code == 201
    again = await client.post("/api/auth/signup", json={**body, "email": email.upper()})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_taken"


async def test_login_wrong_password_is_401_and_attempts_are_rate_limited(client, settings):
    email = unique_email()
    await client.post(
        "/api/auth/signup", json={"email": email, "password": "right password", "name": "L"}
    )
    wrong = {"email": email, "password": "wrong password"}
    statuses = [
        (await client.post("/api/auth/login", json=wrong)).status_code
        for _ in range(settings.login_attempts_per_minute)
    ]
    assert set(statuses) == {401}
    blocked = await client.post(
        "/api/auth/login", json={"email": email, "password": "right password"}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    assert blocked.json()["error"]["code"] == "rate_limited"


async def test_anonymous_and_garbage_tokens_get_401(client):
    assert (await client.get("/api/me")).status_code == 401
    bad = await client.get("/api/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "unauthorized"


async def test_only_org_admins_add_colleagues(client):
    admin = await signup(client)
    bob = await colleague(admin)
    assert bob.user["org_id"] == admin.user["org_id"]
    refused = await bob.post(
        "/api/org/users", json={"email": unique_email(), "name": "X", "password": "long enough pw"}
    )
    assert refused.status_code == 403


async def test_api_key_authenticates_until_revoked(client):
    alice = await signup(client)
    created = await alice.post("/api/auth/api-keys", json={"name": "ci"})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("iaf_") and len(key) > 40
    listed = await alice.get("/api/auth/api-keys")
    assert "key" not in listed.json()["items"][0]
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json()["id"] == alice.id
    assert (await alice.delete(f"/api/auth/api-keys/{created.json()['id']}")).status_code == 204
    assert (
        await client.get("/api/me", headers={"Authorization": f"Bearer {key}"})
    ).status_code == 401


def as_json(body: object) -> dict[str, object]:
    """ASCII-escaped JSON: lone surrogates travel as "\\ud800", as any client may send them."""
    return {"content": json.dumps(body), "headers": {"content-type": "application/json"}}


async def test_unstorable_text_in_account_fields_is_422_and_creates_nothing(client):
    admin = await signup(client)
    email = unique_email("nul")
    bad = [
        ("/api/auth/signup", {"email": email, "password": "long enough pw", "name": "N\u0000"}),
        ("/api/auth/signup", {"email": email, "password": "long enough pw", "name": "\ud800"}),
        ("/api/auth/signup", {"email": email, "password": "long \ud800 pw", "name": "N"}),
        (
            "/api/auth/signup",
            {"email": email, "password": "long enough pw", "name": "N", "org_name": "O\u0000"},
        ),
        ("/api/auth/login", {"email": email, "password": "\udfff"}),
    ]
    for url, body in bad:
        response = await client.post(url, **as_json(body))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    for body in (
        {"email": email, "name": "C\u0000", "password": "long enough pw"},
        {"email": email, "name": "C", "password": "\ud800 long enough"},
    ):
        response = await admin.post("/api/org/users", **as_json(body))
        assert response.status_code == 422, (body, response.text)
    key = await admin.post("/api/auth/api-keys", **as_json({"name": "k\u0000"}))
    assert key.status_code == 422, key.text
    assert (await admin.get("/api/auth/api-keys")).json()["items"] == []
    colleagues = (await admin.get("/api/org/users")).json()["items"]
    assert [u["id"] for u in colleagues] == [admin.id]
    fresh = await client.post(
        "/api/auth/signup", json={"email": email, "password": "long enough pw", "name": "N"}
    )
    assert fresh.status_code == 201, "nothing was stored under the e-mail before"


async def test_concurrent_signups_with_one_email_give_one_account_and_409s(client):
    for _ in range(3):  # a few rounds: each interleaves the requests differently
        body = {"email": unique_email("race"), "password": "long enough pw", "name": "Racer"}
        responses = await asyncio.gather(
            *(client.post("/api/auth/signup", json=body) for _ in range(8))
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 7, [r.text for r in responses]
        assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
            "email_taken"
        }


async def test_concurrent_signups_with_one_name_all_succeed_with_distinct_handles(client):
    for _ in range(3):
        name = f"Same Name {uuid.uuid4().hex[:6]}"
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/auth/signup",
                    json={"email": unique_email(), "password": "long enough pw", "name": name},
                )
                for _ in range(8)
            )
        )
        assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
        assert len({r.json()["user"]["handle"] for r in responses}) == 8


async def test_concurrent_org_user_creation_with_one_email_is_one_201(client):
    admin = await signup(client)
    for _ in range(3):
        body = {"email": unique_email("org-race"), "name": "Twin", "password": "long enough pw"}
        responses = await asyncio.gather(
            *(admin.post("/api/org/users", json=body) for _ in range(8))
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 7, [r.text for r in responses]
        assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
            "email_taken"
        }


async def test_the_longest_names_still_get_a_default_organisation(client, database_url):
    for length in (185, 186, 200):
        name = "N" * (length - 1) + "é"
        response = await client.post(
            "/api/auth/signup",
            json={"email": unique_email(), "password": "long enough pw", "name": name},
        )
        assert response.status_code == 201, (length, response.text)
        assert response.json()["user"]["name"] == name
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT name FROM orgs WHERE id = %s", (response.json()["user"]["org_id"],)
            ).fetchone()
        assert row is not None
        org_name = row[0]
        assert len(org_name) <= 200 and org_name.endswith("'s organisation")
        assert name.startswith(org_name.removesuffix("'s organisation"))
