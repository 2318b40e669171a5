"""The SQL patterns of the erasure: whole addresses and whole words, as PostgreSQL runs them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from iaf.db.erasure_patterns import email_regex, handle_regex, word_regex
from iaf.db.repositories.erasure import ErasureRepository
from iaf.db.repositories.erasure_scan import ErasureScanRepository
from iaf.db.repositories.erasure_targets import Targets
from iaf.db.repositories.room_events import EventRepository
from tests.gdpr_helpers import db
from tests.helpers import signup

TEXTS = [
    ("write to ann@x.com today", True),
    ("MAIL ANN@X.COM.", True),
    ('{"email": "ann@x.com"}', True),
    ("'ann@x.com'", True),
    ("joann@x.com", False),
    ("ann@x.com.au", False),
    ("j.ann@x.com", False),
    ("a+ann@x.com", False),
    ("ann@x.community", False),
]


async def test_email_regex_matches_the_whole_address_only(settings):
    async with db(settings) as session:
        for value, expected in TEXTS:
            found = await session.scalar(
                text("SELECT CAST(:v AS text) ~* :re"), {"v": value, "re": email_regex("ann@x.com")}
            )
            assert found is expected, value
        replaced = await session.scalar(
            text("SELECT regexp_replace(:v, :re, '[erased]', 'gi')"),
            {"v": "cc joann@x.com, ann@x.com and ANN@x.com.au", "re": email_regex("ann@x.com")},
        )
        assert replaced == "cc joann@x.com, [erased] and ANN@x.com.au"


async def test_word_regex_leaves_longer_words_alone(settings):
    async with db(settings) as session:
        rows = await session.execute(
            text("SELECT v ~* :re FROM unnest(CAST(:vs AS text[])) AS v"),
            {"vs": ["Ann Lee", "thanks ann lee!", "Annual Leeds"], "re": word_regex("Ann Lee")},
        )
        assert [r[0] for r in rows.all()] == [True, True, False]


async def test_handle_regex_is_one_exact_mention(settings):
    async with db(settings) as session:
        rows = await session.execute(
            text(
                "SELECT regexp_replace(v, :re, '@erased', 'gi') FROM unnest(CAST(:vs AS text[])) v"
            ),
            {
                "vs": ["hi @ann-lee!", "hi @ann-lee-3f2a", "mail x@ann-lee.org", "@Ann-Lee."],
                "re": handle_regex("ann-lee"),
            },
        )
        assert [r[0] for r in rows.all()] == [
            "hi @erased!",
            "hi @ann-lee-3f2a",
            "mail x@ann-lee.org",
            "@erased.",
        ]


async def test_a_name_split_across_deltas_is_compacted_once_settled_and_found_while_not(
    client, settings
):
    owner = await signup(client, "Stream Owner")
    room = uuid.UUID((await owner.new_room("streams"))["id"])
    name = "Wanda Split-Name"
    targets = Targets(
        user_id=uuid.uuid4(),
        org_id=uuid.UUID(owner.user["org_id"]),
        email="wanda@example.org",
        name=name,
        handle="wanda",
        account_created_at=datetime.now(UTC),
        room_ids=[room],
        name_room_ids=[room],  # a room of their org where the name alone is theirs
    )
    async with db(settings) as session:
        events = EventRepository(session)
        for reply_id, settled in (("reply-1-scribe", True), ("reply-2-scribe", False)):
            base = {"reply_id": reply_id, "agent_id": "scribe", "attempt": 1}
            for seq, piece in enumerate((f"hello {name[:5]}", name[5:], ", bye")):
                await events.append(room, "agent.delta", {**base, "seq": seq, "text": piece})
            if settled:
                await events.append(room, "agent.done", {**base, "message_id": None})
        await session.commit()
        erasure, scanner = ErasureRepository(session), ErasureScanRepository(session)
        _, findings, _ = await scanner.scan(targets)
        streams = [f for f in findings if f.location == "postgres:room_events.agent_stream"]
        assert [(f.needle, f.rows) for f in streams] == [("name", 2)]
        assert await erasure.compact_agent_streams([room]) == 3
        _, findings, _ = await scanner.scan(targets)
        streams = [f for f in findings if f.location == "postgres:room_events.agent_stream"]
        assert [(f.needle, f.rows) for f in streams] == [("name", 1)]  # still streaming
        await session.rollback()
