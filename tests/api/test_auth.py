"""Sign-up, login, tokens, API keys and org administration against the real stack."""

from __future__ import annotations

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
