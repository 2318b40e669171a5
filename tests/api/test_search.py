"""GET /api/search: French and English stems without accents, only readable messages, the
filters, highlighted fragments; deleted, edited and erased words are never found."""

from __future__ import annotations

import asyncio
import html
import uuid

import psycopg

from iaf.db.repositories.erasure import TOMBSTONE
from tests.helpers import colleague, signup


async def _search(person, q="", **params):
    response = await person.get("/api/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return response.json()


async def _ids(person, q="", **params):
    return [hit["message"]["id"] for hit in (await _search(person, q, **params))["items"]]


async def _add_member(owner, room_id, person):
    response = await owner.post(f"/api/chat/rooms/{room_id}/members", json={"user_id": person.id})
    assert response.status_code in (200, 201), response.text


async def test_french_and_english_stems_match_without_accents(client):
    alice = await signup(client)
    room = await alice.new_room("planning")
    french = await alice.say(room["id"], "Les réunions de planification sont déplacées à jeudi")
    english = await alice.say(room["id"], "The developers were running the integration tests")
    await alice.say(room["id"], "nothing to see here")

    assert await _ids(alice, "reunion") == [french["id"]]  # plural and accent
    assert await _ids(alice, "DÉPLACÉ") == [french["id"]]
    assert await _ids(alice, "run test") == [english["id"]]  # running, tests
    assert await _ids(alice, "developer") == [english["id"]]
    assert await _ids(alice, '"integration tests"') == [english["id"]]
    assert await _ids(alice, "tests -integration") == []
    assert await _ids(alice, "réunion OR developers") == [english["id"], french["id"]]


async def test_only_messages_of_rooms_the_person_is_in(client):
    alice = await signup(client)
    bob = await colleague(alice)
    mallory = await signup(client, "Mallory Outsider")
    shared = await alice.new_room("shared")
    private = await alice.new_room("private")
    await _add_member(alice, shared["id"], bob)
    word = f"zebra{uuid.uuid4().hex[:6]}"
    in_shared = await alice.say(shared["id"], f"{word} in the shared room")
    await alice.say(private["id"], f"{word} in the private room")
    await mallory.say((await mallory.new_room())["id"], f"{word} elsewhere")

    assert await _ids(bob, word) == [in_shared["id"]]
    assert len(await _ids(alice, word)) == 2
    assert len(await _ids(mallory, word)) == 1

    removed = await alice.delete(f"/api/chat/rooms/{shared['id']}/members/{bob.id}")
    assert removed.status_code in (200, 204), removed.text
    assert await _ids(bob, word) == []


async def test_deleted_and_edited_words_are_not_found(client):
    alice = await signup(client)
    room = await alice.new_room()
    gone = await alice.say(room["id"], "the secret password is swordfish")
    changed = await alice.say(room["id"], "meet at the lighthouse")
    assert await _ids(alice, "swordfish") == [gone["id"]]

    assert (await alice.delete(f"/api/chat/messages/{gone['id']}")).status_code == 204
    edit = await alice.put(
        f"/api/chat/messages/{changed['id']}", json={"content": "meet at the harbour"}
    )
    assert edit.status_code == 200
    assert await _ids(alice, "swordfish") == []
    assert await _ids(alice, "lighthouse") == []
    assert await _ids(alice, "harbour") == [changed["id"]]


async def test_erased_text_is_not_found(client, database_url):
    """The erasure's anonymise step rewrites the text in SQL: the vector follows it."""
    alice = await signup(client)
    bob = await colleague(alice, "Bob Leaving")
    room = await alice.new_room()
    await _add_member(alice, room["id"], bob)
    message = await bob.say(room["id"], "my home address is 12 quokka street")
    assert await _ids(alice, "quokka") == [message["id"]]
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE messages SET sender_user_id = NULL, content = %s WHERE id = %s",
            (TOMBSTONE, message["id"]),
        )
    assert await _ids(alice, "quokka") == []


async def test_filters_room_author_agent_dates_and_mentions(client, database_url):
    alice = await signup(client)
    bob = await colleague(alice)
    general = await alice.new_room("General Chat")
    other = await alice.new_room("other")
    for room in (general, other):
        await _add_member(alice, room["id"], bob)
    word = f"kiwi{uuid.uuid4().hex[:6]}"
    by_alice = await alice.say(general["id"], f"{word} from alice")
    by_bob = await bob.say(general["id"], f"{word} from bob, @{alice.user['handle']} look")
    in_other = await bob.say(other["id"], f"{word} elsewhere")
    with psycopg.connect(database_url, autocommit=True) as connection:
        agent_id = connection.execute(
            "INSERT INTO messages (room_id, sender_agent_id, content, type, metadata)"
            " VALUES (%s, 'architect', %s, 'agent', '{}') RETURNING id",
            (general["id"], f"{word} says the architect"),
        ).fetchone()[0]

    assert await _ids(alice, f'{word} in:"general chat"') == [
        agent_id,
        by_bob["id"],
        by_alice["id"],
    ]
    assert await _ids(alice, word, room_id=other["id"]) == [in_other["id"]]
    assert await _ids(alice, f"{word} from:@{bob.user['handle']}") == [in_other["id"], by_bob["id"]]
    assert await _ids(alice, f"{word} from:@architect") == [agent_id]
    assert await _ids(alice, f"{word} agent:architect") == [agent_id]
    assert await _ids(alice, word, author_id=alice.id) == [by_alice["id"]]
    assert await _ids(alice, f"{word} before:2000-01-01") == []
    assert len(await _ids(alice, f"{word} after:2000-01-01")) == 4
    # The mention is recorded by RouteMessage on the worker: wait for it.
    for _ in range(300):
        if await _ids(alice, f"{word} has:mention") == [by_bob["id"]]:
            break
        await asyncio.sleep(0.1)
    assert await _ids(alice, f"{word} has:mention") == [by_bob["id"]]
    assert await _ids(bob, f"{word} has:mention") == []
    # Filters alone, without words.
    assert by_bob["id"] in await _ids(alice, "has:mention")


async def test_results_are_highlighted_and_escaped(client):
    alice = await signup(client)
    room = await alice.new_room()
    await alice.say(room["id"], "if a<b && c>d the Déploiement <img src=x onerror=alert(1)> failed")
    hit = (await _search(alice, "deploiement"))["items"][0]
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end] == "Déploiement"
    assert "<mark>Déploiement</mark>" in hit["snippet_html"]
    markup = hit["snippet_html"].replace("<mark>", "").replace("</mark>", "")
    assert "<" not in markup and ">" not in markup
    assert html.unescape(markup) == hit["snippet"] and "&lt;img" in markup
    assert hit["room_name"] == room["name"]
    assert hit["message"]["sender_name"] == alice.user["name"]


async def test_relevance_order_and_paging(client):
    alice = await signup(client)
    room = await alice.new_room()
    word = f"otter{uuid.uuid4().hex[:6]}"
    strong = await alice.say(room["id"], f"{word} {word} {word} everywhere")
    ids = [(await alice.say(room["id"], f"one {word} here, number {i}"))["id"] for i in range(4)]
    assert (await _ids(alice, word, sort="relevance"))[0] == strong["id"]
    first = await _search(alice, word, limit=3)
    assert [h["message"]["id"] for h in first["items"]] == ids[::-1][:3]
    rest = await _search(alice, word, limit=3, offset=first["next_offset"])
    assert [h["message"]["id"] for h in rest["items"]] == [ids[0], strong["id"]]
    assert rest["next_offset"] is None


async def test_bad_searches_get_a_clear_4xx(client):
    alice = await signup(client)
    room = await alice.new_room()
    stranger_room = await (await signup(client)).new_room()
    cases = [
        ({"q": ""}, 422, "empty_query"),
        ({"q": "x after:yesterday"}, 422, "invalid_query"),
        ({"q": "has:attachment"}, 422, "invalid_query"),
        ({"q": "from:@nobody-at-all"}, 422, "unknown_author"),
        ({"q": "agent:plumber"}, 422, "unknown_agent"),
        ({"q": "in:no-such-room"}, 422, "unknown_room"),
        ({"q": "x", "room_id": stranger_room["id"]}, 404, "room_not_found"),
        ({"q": "x" * 501}, 422, None),
        ({"q": "x", "limit": 0}, 422, None),
        ({"q": "x", "sort": "random"}, 422, None),
    ]
    for params, status, code in cases:
        response = await alice.get("/api/search", params=params)
        assert response.status_code == status, (params, response.text)
        if code:
            assert response.json()["error"]["code"] == code, params
    assert (await client.get("/api/search", params={"q": "x"})).status_code == 401
    # A filter word nobody meant as a filter stays a word.
    link = await alice.say(room["id"], "see ratio:2 for details")
    assert await _ids(alice, "ratio:2") == [link["id"]]
