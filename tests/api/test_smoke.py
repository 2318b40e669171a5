async def test_signup_and_me(client):
    from tests.helpers import signup

    alice = await signup(client)
    me = await alice.get("/api/me")
    assert me.status_code == 200
    assert me.json()["id"] == alice.id
    assert me.json()["role"] == "org_admin"
