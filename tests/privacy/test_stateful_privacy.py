"""Privacy, tested statefully over the real API and worker (hypothesis RuleBasedStateMachine).

People of several organisations post, edit and delete messages, mention agents, upload
documents and memories, invite guests who accept, export their data, talk to /v1 and erase
each other. After every delete and every erasure:
- nobody still here reads the removed text, name or address through any endpoint: the
  message list of every room they are in, the event replay from Last-Event-ID 0, message
  search, their exports, /v1 answers (agent replies are in the first three);
- it is in no PostgreSQL column and no Qdrant payload;
- every other person's own words are byte for byte what they wrote.
At the end of each run no workflow history started during it holds anyone's text, name or
address, nor any removed id, and no log record at INFO or above holds a text, name or address.

`make test` runs a few bounded runs (IAF_PRIVACY_EXAMPLES, IAF_PRIVACY_STEPS, a fixed
seed, no shrinking); `make soak` many longer random ones (IAF_PRIVACY_SOAK=1).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis import settings as run_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from iaf.mail.links import derive_token
from iaf.settings import Settings
from iaf.workflow_calls import reply_workflow_id
from tests.agent_helpers import rows
from tests.gdpr_helpers import (
    PASSWORD,
    compliance_officer,
    org_user,
    scalar,
    wait_request,
    wait_user_export,
)
from tests.helpers import Person, signup, unique_email
from tests.privacy_helpers import (
    archive_text,
    postgres_holding,
    qdrant_holding,
    replay,
    reply_over,
    temporal_holding,
)

SOAK = os.environ.get("IAF_PRIVACY_SOAK") == "1"
EXAMPLES = int(os.environ.get("IAF_PRIVACY_EXAMPLES", "40" if SOAK else "8"))
STEPS = int(os.environ.get("IAF_PRIVACY_STEPS", "30" if SOAK else "12"))
T = TypeVar("T")
WORDS = [
    "amber",
    "basil",
    "cobalt",
    "dune",
    "ember",
    "fjord",
    "garnet",
    "heath",
    "iris",
    "jade",
    "kelp",
    "lumen",
    "moss",
]


RULES = [
    "new_room",
    "post",
    "mention",
    "edit",
    "delete",
    "add_knowledge",
    "remove_knowledge",
    "invite_guest",
    "export",
    "ask_v1",
    "erase",
]


def nonce() -> str:
    """A word nobody else writes: where it is found, the text it belongs to is."""
    return f"nz{uuid.uuid4().hex[:10]}"


def distinct_name() -> str:
    tag = uuid.uuid4().hex
    return f"Xa{tag[:5]} Qo{tag[5:10]}"


@dataclass
class Actor:
    person: Person
    name: str
    email: str
    org: str
    founder: bool  # org admin of their organisation: may create its compliance officer
    alive: bool = True

    @property
    def id(self) -> str:
        return self.person.id


@dataclass
class Said:
    id: int
    room: str
    author: Actor
    nonce: str
    content: str
    live: bool = True


@dataclass
class Item:
    """A document or a memory, by id, with the word its text carries."""

    id: str
    owner: Actor
    nonce: str
    kind: str
    room: str | None = None


@dataclass
class World:
    """What the machine needs from the test's event loop, shared by every run."""

    loop: asyncio.AbstractEventLoop
    client: Any
    settings: Settings
    database_url: str
    worker: Any
    logs: LogCapture
    # How often each rule ran, over every run: the bounded run must have deleted and erased.
    done: Counter[str] = field(default_factory=Counter)


class LogCapture(logging.Handler):
    """Every record at INFO and above, from every logger, while a run goes on."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[str] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        with self._lock2:
            self.records.append(text)

    def drain(self) -> list[str]:
        with self._lock2:
            taken, self.records = self.records, []
        return taken


class PrivacyMachine(RuleBasedStateMachine):
    world: World

    def __init__(self) -> None:
        super().__init__()
        self.actors: list[Actor] = []
        self.officers: dict[str, Person] = {}  # org id -> compliance officer
        self.rooms: dict[str, set[str]] = {}  # room id -> member actor ids
        self.owners: dict[str, str] = {}  # room id -> its owner's actor id
        self.said: list[Said] = []
        self.items: list[Item] = []
        self.removed: set[str] = set()  # words, names, addresses that must be gone
        self.searched: set[str] = set()  # removed words search was asked about already
        self.removed_ids: set[str] = set()
        self.everything: set[str] = set()  # every word, name and address of this run
        self.started = datetime.now(UTC)
        self.world.logs.drain()

    # --- plumbing ------------------------------------------------------------------------

    def note(self, rule_name: str) -> None:
        self.world.done[rule_name] += 1

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.world.loop).result(timeout)

    def alive(self) -> list[Actor]:
        return [a for a in self.actors if a.alive]

    def rooms_of(self, actor: Actor) -> list[str]:
        return sorted(r for r, members in self.rooms.items() if actor.id in members)

    def posters(self) -> list[Actor]:
        return [a for a in self.alive() if self.rooms_of(a)]

    def hosts(self) -> list[Actor]:
        """Who may invite: the alive owner of a room."""
        return [a for a in self.alive() if a.id in self.owners.values()]

    def live_said(self) -> list[Said]:
        return [s for s in self.said if s.live and s.author.alive]

    async def _join(self, name: str, inviter: Actor | None = None) -> Actor:
        if inviter is None:
            person = await signup(self.world.client, name)
            actor = Actor(person, name, person.user["email"], person.user["org_id"], True)
        else:
            actor = await self._accept_new(inviter, name)
        self.everything |= {name, actor.email}
        self.actors.append(actor)
        return actor

    async def _accept_new(self, inviter: Actor, name: str) -> Actor:
        room = next(r for r, owner in sorted(self.owners.items()) if owner == inviter.id)
        email = unique_email("guest")
        token = await self._invite(inviter, room, email)
        accepted = await self.world.client.post(
            f"/api/chat/invitations/{token}/accept", json={"name": name, "password": PASSWORD}
        )
        assert accepted.status_code == 200, accepted.text
        login = await self.world.client.post(
            "/api/auth/login", json={"email": email, "password": PASSWORD}
        )
        body = login.json()
        person = Person(self.world.client, body["access_token"], body["user"])
        self.rooms[room].add(person.id)
        return Actor(person, name, email, person.user["org_id"], True)

    async def _invite(self, inviter: Actor, room: str, email: str) -> str:
        invited = await inviter.person.post(f"/api/chat/rooms/{room}/invite", json={"email": email})
        assert invited.status_code == 201, invited.text
        salt = await scalar(
            self.world.settings,
            "SELECT token_salt FROM invitations WHERE id = :id",
            id=uuid.UUID(invited.json()["id"]),
        )
        return derive_token(self.world.settings.secret("invitation_secret"), salt)

    async def _new_room(self, owner: Actor, members: list[Actor]) -> str:
        room = await owner.person.new_room(
            f"r-{uuid.uuid4().hex[:6]}", member_ids=[m.id for m in members]
        )
        self.rooms[room["id"]] = {owner.id, *(m.id for m in members)}
        self.owners[room["id"]] = owner.id
        return str(room["id"])

    # --- setup ---------------------------------------------------------------------------

    @initialize()
    def two_organisations(self) -> None:
        async def setup() -> None:
            alice = await self._join(distinct_name())
            bob_person = await org_user(alice.person, distinct_name())
            bob = Actor(
                bob_person, bob_person.user["name"], bob_person.user["email"], alice.org, False
            )
            self.actors.append(bob)
            self.everything |= {bob.name, bob.email}
            carol = await self._join(distinct_name())
            await self._new_room(alice, [bob])
            await self._new_room(carol, [])

        self.run(setup())

    # --- what people do ------------------------------------------------------------------

    @rule(data=st.data(), with_colleague=st.booleans())
    def new_room(self, data: st.DataObject, with_colleague: bool) -> None:
        self.note("new_room")
        owner = data.draw(st.sampled_from(self.alive()))
        colleagues = [a for a in self.alive() if a.org == owner.org and a is not owner]
        members = colleagues[:1] if with_colleague else []
        self.run(self._new_room(owner, members))

    @precondition(lambda self: bool(self.posters()))
    @rule(
        data=st.data(),
        mention=st.booleans(),
        words=st.lists(st.sampled_from(WORDS), min_size=4, max_size=9),
    )
    def post(self, data: st.DataObject, mention: bool, words: list[str]) -> None:
        self.note("post")
        author = data.draw(st.sampled_from(self.posters()))
        room = data.draw(st.sampled_from(self.rooms_of(author)))
        word = nonce()
        content = ("@architect " if mention else "") + f"{word} " + " ".join(words)

        if mention:
            self.note("mention")

        async def go() -> None:
            message = await author.person.say(room, content)
            self.said.append(Said(message["id"], room, author, word, content))
            if mention:
                reply_id = reply_workflow_id(message["id"], "architect")
                await reply_over(self.world.database_url, reply_id)

        self.everything.add(word)
        self.run(go())

    @precondition(lambda self: any(s.live and s.author.alive for s in self.said))
    @rule(data=st.data())
    def edit(self, data: st.DataObject) -> None:
        self.note("edit")
        said = data.draw(st.sampled_from(self.live_said()))
        word = nonce()
        content = f"{word} edited " + said.content.split(" ", 2)[-1]

        async def go() -> None:
            edited = await said.author.person.put(
                f"/api/chat/messages/{said.id}", json={"content": content}
            )
            assert edited.status_code == 200, edited.text

        self.run(go())
        self.removed.add(said.nonce)
        self.everything.add(word)
        said.nonce, said.content = word, content
        self.check_removed()

    @precondition(lambda self: any(s.live and s.author.alive for s in self.said))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self.note("delete")
        said = data.draw(st.sampled_from(self.live_said()))
        response = self.run(said.author.person.delete(f"/api/chat/messages/{said.id}"))
        assert response.status_code == 204, response.text
        said.live = False
        self.removed.add(said.nonce)
        self.check_removed()

    @precondition(lambda self: bool(self.posters()))
    @rule(data=st.data(), scope=st.sampled_from(["room", "memory"]))
    def add_knowledge(self, data: st.DataObject, scope: str) -> None:
        self.note("add_knowledge")
        owner = data.draw(st.sampled_from(self.posters()))
        word = nonce()
        self.everything.add(word)
        if scope == "memory":
            item = self.run(self._remember(owner, word))
        else:
            room = data.draw(st.sampled_from(self.rooms_of(owner)))
            item = self.run(self._upload(owner, room, word))
        self.items.append(item)

    async def _remember(self, owner: Actor, word: str) -> Item:
        created = await owner.person.post("/api/memories", json={"content": f"I like {word} tea"})
        assert created.status_code == 201, created.text
        item = Item(created.json()["id"], owner, word, "memory")
        await self._until_status(item, "ready")
        return item

    async def _upload(self, owner: Actor, room: str, word: str) -> Item:
        body = {
            "title": "notes",
            "content": f"The {word} plan ships soon.",
            "scope": "room",
            "room_id": room,
        }
        created = await owner.person.post("/api/knowledge/documents", json=body)
        assert created.status_code == 202, created.text
        item = Item(created.json()["id"], owner, word, "document", room)
        await self._until_status(item, "ready")
        return item

    async def _until_status(self, item: Item, status: str | None) -> None:
        table = "memories" if item.kind == "memory" else "knowledge_documents"
        for _ in range(600):
            found = rows(
                self.world.database_url, f"SELECT status FROM {table} WHERE id = %s", item.id
            )
            current = found[0][0] if found else None
            if current == status:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{item.kind} {item.id} never became {status}")

    @precondition(lambda self: any(i.owner.alive for i in self.items))
    @rule(data=st.data())
    def remove_knowledge(self, data: st.DataObject) -> None:
        self.note("remove_knowledge")
        item = data.draw(st.sampled_from([i for i in self.items if i.owner.alive]))

        async def go() -> None:
            path = "/api/memories/" if item.kind == "memory" else "/api/knowledge/documents/"
            response = await item.owner.person.delete(path + item.id)
            assert response.status_code in (202, 204), response.text
            await self._until_status(item, None)

        self.run(go())
        self.items.remove(item)
        self.removed.add(item.nonce)
        self.check_removed()

    @precondition(lambda self: len(self.actors) < 7 and bool(self.hosts()))
    @rule(data=st.data())
    def invite_guest(self, data: st.DataObject) -> None:
        self.note("invite_guest")
        inviter = data.draw(st.sampled_from(self.hosts()))
        self.run(self._join(distinct_name(), inviter))

    @rule(data=st.data())
    def export(self, data: st.DataObject) -> None:
        self.note("export")
        actor = data.draw(st.sampled_from(self.alive()))

        async def go() -> str:
            started = await actor.person.get("/api/user/data-export")
            assert started.status_code in (200, 202), started.text
            done = await wait_user_export(actor.person, 120)
            assert done["status"] == "complete", done
            url = done["download_url"].replace(self.world.settings.public_base_url, "")
            return archive_text((await self.world.client.get(url)).content)

        text = self.run(go())
        others = {s.nonce for s in self.said if s.author is not actor}
        others |= {i.nonce for i in self.items if i.owner is not actor}
        leaked = [w for w in self.removed | others if w.lower() in text.lower()]
        assert leaked == [], f"{actor.name}'s export holds {leaked}"

    @rule(data=st.data())
    def ask_v1(self, data: st.DataObject) -> None:
        self.note("ask_v1")
        actor = data.draw(st.sampled_from(self.alive()))
        word = nonce()
        self.everything.add(word)

        async def go() -> str:
            response = await actor.person.post(
                "/v1/chat/completions",
                json={
                    "model": "architect",
                    "messages": [{"role": "user", "content": f"{word} plan?"}],
                },
                timeout=120,
            )
            assert response.status_code == 200, response.text
            return str(response.json()["choices"][0]["message"]["content"])

        answer = self.run(go())
        others = {s.nonce for s in self.said if s.author is not actor}
        others |= {i.nonce for i in self.items if i.owner is not actor}
        assert [w for w in self.removed | others if w in answer] == []

    @precondition(lambda self: len(self.alive()) > 2)
    @rule(data=st.data())
    def erase(self, data: st.DataObject) -> None:
        self.note("erase")
        subject = data.draw(st.sampled_from(self.alive()))
        done = self.run(self._erase(subject))
        assert done["status"] == "complete", (done["failed_step"], done["verification"])
        subject.alive = False
        for members in self.rooms.values():
            members.discard(subject.id)
        self.rooms = {r: m for r, m in self.rooms.items() if m}
        self.owners = {r: o for r, o in self.owners.items() if o != subject.id and r in self.rooms}
        self.removed |= {s.nonce for s in self.said if s.author is subject}
        self.removed |= {i.nonce for i in self.items if i.owner is subject}
        self.removed |= {subject.name, subject.email}
        self.removed_ids.add(subject.id)
        self.items = [i for i in self.items if i.owner is not subject]
        self.check_removed()

    async def _erase(self, subject: Actor) -> dict[str, Any]:
        officer = self.officers.get(subject.org)
        if officer is None:
            founder = next(a for a in self.alive() if a.org == subject.org and a.founder)
            officer = self.officers[subject.org] = await compliance_officer(founder.person)
        response = await officer.post(
            "/api/compliance/requests",
            json={
                "kind": "erasure",
                "subjects": [{"user_id": subject.id}],
                "reason": "ticket",
                "grace_days": 0,
            },
        )
        assert response.status_code == 201, response.text
        request = response.json()["items"][0]["request"]
        return await wait_request(officer, request["id"], ("complete", "error"), patience=240)

    # --- what must hold ------------------------------------------------------------------

    def check_removed(self) -> None:
        self.run(self._check_removed())

    async def _check_removed(self) -> None:
        needles = sorted(self.removed)
        for actor in self.alive():
            for room in self.rooms_of(actor):
                await self._room_as_seen_by(actor, room, needles)
        await self._search_finds_none(sorted(self.removed - self.searched))
        held = postgres_holding(self.world.database_url, needles + sorted(self.removed_ids))
        assert held == {}, f"PostgreSQL still holds {held}"
        vectors = await qdrant_holding(self.world.worker.vectors, needles)
        assert vectors == {}, f"Qdrant still holds {vectors}"

    async def _search_finds_none(self, fresh: list[str]) -> None:
        """Each word removed since the last check, searched for by everyone still here (a
        removed word never comes back, so once is enough, and within the search limit)."""
        for actor in self.alive():
            for word in fresh:
                found = await actor.person.get("/api/search", params={"q": word})
                assert found.status_code == 200, found.text
                shown = str(found.json()["items"]).lower()
                assert word.lower() not in shown, "search finds removed text"
        self.searched |= set(fresh)

    async def _room_as_seen_by(self, actor: Actor, room: str, needles: list[str]) -> None:
        listed = await actor.person.get(f"/api/chat/rooms/{room}/messages?limit=200")
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        shown = str(items).lower()
        assert [n for n in needles if n.lower() in shown] == [], f"{room} shows removed text"
        contents = {m["id"]: m["content"] for m in items}
        for said in self.said:
            if said.room == room and said.live and said.author.alive:
                assert contents.get(said.id) == said.content, "someone's own words changed"
        events = await replay(self.world.client, actor.person, room, self.world.database_url)
        replayed = str([e.data for e in events]).lower()
        assert [n for n in needles if n.lower() in replayed] == [], f"{room} replays removed text"

    def teardown(self) -> None:
        """No history of this run holds a text, name or address, nor a removed id; no log
        record at INFO or above holds a text, name or address."""
        try:
            query = f'StartTime >= "{self.started.strftime("%Y-%m-%dT%H:%M:%SZ")}"'
            needles = sorted(self.everything | self.removed_ids)
            held = self.run(temporal_holding(self.world.worker.temporal, needles, query))
            assert held == {}, f"Temporal histories hold {held}"
            records = self.world.logs.drain()
            self.world.done["log records scanned"] += len(records)
            self.world.done["of them the worker's"] += sum(
                r.startswith("temporalio") for r in records
            )
            logs = "\n".join(records).lower()
            assert [n for n in self.everything if n.lower() in logs] == [], "logs hold text"
        finally:
            super().teardown()


@pytest.fixture
def log_capture() -> Iterator[LogCapture]:
    capture = LogCapture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(min(previous, logging.INFO) if previous else logging.INFO)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)


async def test_nothing_removed_stays_and_nothing_of_anyone_else_changes(
    client, settings: Settings, database_url: str, worker: Any, log_capture: LogCapture
) -> None:
    world = World(asyncio.get_running_loop(), client, settings, database_url, worker, log_capture)
    machine = type("BoundPrivacyMachine", (PrivacyMachine,), {"world": world})
    options = settings_for_run()
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=options)
    print(f"privacy runs: {dict(world.done)}")
    # The bounded run (a fixed seed) is chosen so that every rule ran: it proves something.
    assert SOAK or set(world.done) >= set(RULES), world.done
    assert world.done["of them the worker's"], "the log capture saw the worker's records"


def settings_for_run() -> run_settings:
    return run_settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        database=None,
        derandomize=not SOAK,
        phases=(
            [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
            if SOAK
            else [Phase.explicit, Phase.generate]
        ),
        suppress_health_check=list(HealthCheck),
        print_blob=True,
        # IAF_PRIVACY_VERBOSE=1 prints every step of every run.
        verbosity=Verbosity.verbose if os.environ.get("IAF_PRIVACY_VERBOSE") else Verbosity.normal,
    )
