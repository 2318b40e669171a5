"""Notification digests on the time-skipping test server, with a real SMTP server (aiosmtpd):
the API, RouteMessage, the notify step and NotificationDigest, with minutes passing in
seconds. Offline means no SSE stream open (a lease in user_presence)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.chat_db import ChatDbActivities
from iaf.db.engine import make_engine, make_sessionmaker
from iaf.notifications.unsubscribe import issue_unsubscribe_token
from iaf.settings import Settings
from iaf.workflow_calls import invitation_workflow_id, route_workflow_id
from schemas.agents import AgentReplyResult
from schemas.invitations import InvitationResult
from tests.agent_helpers import rows
from tests.conftest import make_settings
from tests.helpers import (
    Person,
    colleague,
    free_port,
    open_my_events,
    serve_api,
    signup,
    unique_email,
)
from tests.smtp_capture import SmtpCapture, link_in, text_of
from tests.workflows.test_agent_reply import _reply_on, own_worker
from tests.workflows.test_invitation import PASSWORD, time_skipping_env
from workers.registry import WorkerClients, invitation_activities
from workflows.invitation import Invitation
from workflows.notification_digest import NotificationDigest
from workflows.referral import Referral
from workflows.route_message import RouteMessage

QUEUE = "iaf-digest-ts"
ONE_CLICK = re.compile(r"<(https?://\S+/api/notifications/unsubscribe\?token=([\w.-]+))>")


@dataclass
class Stack:
    env: WorkflowEnvironment
    client: httpx.AsyncClient
    smtp: SmtpCapture
    settings: Settings
    database_url: str

    async def routed(self, message: dict) -> None:
        """Until RouteMessage (mentions, then the notify step) has finished for the message."""
        handle = self.env.client.get_workflow_handle(route_workflow_id(message["id"]))
        await asyncio.wait_for(handle.result(), 60)

    def pending(self, person: Person) -> list[tuple[str, str | None]]:
        return [
            (str(r[0]), r[1])
            for r in rows(
                self.database_url,
                "SELECT kind, dropped_reason FROM notifications WHERE user_id = %s"
                " AND digest_id IS NULL ORDER BY id",
                person.id,
            )
        ]

    async def mails_to(self, person: Person, count: int) -> list[EmailMessage]:
        email = person.user["email"]
        await _until(lambda: _at_least(self.smtp.to(email), count), 60)
        return self.smtp.to(email)


@pytest.fixture
async def stack(data_dir, database_url) -> AsyncIterator[Stack]:
    smtp = SmtpCapture(free_port())
    smtp.start()
    engine = make_engine(database_url, 4)
    try:
        async with time_skipping_env() as env:
            settings = make_settings(
                data_dir,
                database_url,
                env.client.service_client.config.target_host,
                temporal_task_queue=QUEUE,
                smtp_port=smtp.port,
                notification_emails=True,
                api_starts_replies=False,
            )
            sessionmaker = make_sessionmaker(engine)
            clients = WorkerClients(
                settings=settings, sessionmaker=sessionmaker, temporal=env.client
            )
            worker = Worker(
                env.client,
                task_queue=QUEUE,
                workflows=[RouteMessage, NotificationDigest, Invitation, Referral],
                activities=[
                    ChatDbActivities(sessionmaker, settings).record_mentions,
                    *invitation_activities(clients),  # with the notify and digest steps
                ],
            )
            async with (
                worker,
                serve_api(settings) as url,
                httpx.AsyncClient(base_url=url, timeout=30) as client,
            ):
                yield Stack(env, client, smtp, settings, database_url)
    finally:
        smtp.stop()
        await engine.dispose()


async def _pair(stack: Stack) -> tuple[Person, Person, dict]:
    alice = await signup(stack.client, "Alice Owner")
    bob = await colleague(alice, "Bob Away")
    room = await alice.new_room("Launch", member_ids=[bob.id])
    return alice, bob, room


async def test_one_digest_for_what_happened_together_then_at_most_one_per_window(stack):
    alice, bob, room = await _pair(stack)
    handle = f"@{bob.user['handle']}"
    first = await alice.say(room["id"], f"{handle} please review the secret launch plan")
    second = await alice.say(room["id"], "@all standup moved to ten")
    await asyncio.gather(stack.routed(first), stack.routed(second))
    assert stack.pending(bob) == [("mention", None), ("mention", None)]
    assert stack.pending(alice) == [], "the author is not told of her own message"

    await stack.env.sleep(timedelta(seconds=61))  # the gathering delay
    (digest,) = await stack.mails_to(bob, 1)
    body = text_of(digest)
    assert digest["Subject"] == "2 updates while you were away"
    assert body.count('Alice Owner mentioned you in "Launch"') == 2
    assert f"{stack.settings.public_base_url}/rooms/{room['id']}" in body
    assert "secret launch plan" not in body and "standup" not in body, "no message text"
    assert "/unsubscribe#token=" in body
    assert ONE_CLICK.search(digest["List-Unsubscribe"])
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    third = await alice.say(room["id"], f"{handle} one more thing")
    await stack.routed(third)
    await stack.env.sleep(timedelta(minutes=10))
    assert len(stack.smtp.to(bob.user["email"])) == 1, "the window is not over"
    await stack.env.sleep(timedelta(minutes=6))
    mails = await stack.mails_to(bob, 2)
    assert mails[1]["Subject"] == "1 update while you were away"
    sent = rows(
        stack.database_url,
        "SELECT sent_at FROM notification_digests WHERE user_id = %s ORDER BY sent_at",
        bob.id,
    )
    assert sent[1][0] - sent[0][0] >= timedelta(minutes=15)


async def test_online_muted_unsubscribed_or_read_means_no_mail(stack):
    alice, bob, room = await _pair(stack)
    handle = f"@{bob.user['handle']}"
    async with open_my_events(stack.client, bob):
        await _until(lambda: _online(stack, bob))
        seen = await alice.say(room["id"], f"{handle} you are online")
        await stack.routed(seen)
    assert stack.pending(bob) == [], "an open stream means online: nothing queued"
    # The stream closed: its lease is deleted (not left to run out).
    await _until(lambda: _no_lease(stack, bob))

    mute = f"/api/chat/rooms/{room['id']}/membership"
    await bob.client.patch(mute, json={"is_muted": True}, headers=bob.headers)
    await stack.routed(await alice.say(room["id"], f"{handle} in a muted room"))
    assert stack.pending(bob) == []
    await bob.client.patch(mute, json={"is_muted": False}, headers=bob.headers)

    off = await bob.put("/api/notifications/settings", json={"email_digest": False})
    assert off.status_code == 200 and off.json()["email_digest"] is False
    await stack.routed(await alice.say(room["id"], f"{handle} digests are off"))
    assert stack.pending(bob) == []
    on = await bob.put("/api/notifications/settings", json={"email_digest": True})
    assert on.json() == {
        "email_digest": True,
        "digest_minutes": 15.0,
        "changed_by": "settings",
        "updated_at": on.json()["updated_at"],
    }

    read_later = await alice.say(room["id"], f"{handle} read this in the app")
    await stack.routed(read_later)
    assert stack.pending(bob) == [("mention", None)]
    marked = await bob.post(
        f"/api/chat/rooms/{room['id']}/read", json={"message_id": read_later["id"]}
    )
    assert marked.status_code == 200
    await stack.env.sleep(timedelta(seconds=61))
    await _until(lambda: _dropped(stack, bob))
    assert stack.smtp.to(bob.user["email"]) == []


async def test_the_unsubscribe_link_works_once_clicked_and_only_for_its_person(stack):
    alice, bob, room = await _pair(stack)
    await stack.routed(await alice.say(room["id"], f"@{bob.user['handle']} hello"))
    await stack.env.sleep(timedelta(seconds=61))
    (digest,) = await stack.mails_to(bob, 1)
    url, token = ONE_CLICK.search(digest["List-Unsubscribe"]).groups()  # type: ignore[union-attr]
    assert url.startswith(stack.settings.public_base_url)
    clicked = await stack.client.post(
        url.removeprefix(stack.settings.public_base_url.rstrip("/")),
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200, clicked.text
    choice = (await bob.get("/api/notifications/settings")).json()
    assert choice["email_digest"] is False and choice["changed_by"] == "unsubscribe_link"
    again = await stack.client.post("/api/notifications/unsubscribe", json={"token": token})
    assert again.status_code == 200, "idempotent"

    forged = issue_unsubscribe_token("another-secret-of-at-least-32-bytes", bob.user["id"])
    for bad in (forged, alice.token, "not-a-token"):
        refused = await stack.client.post("/api/notifications/unsubscribe", json={"token": bad})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_token"
    missing = await stack.client.post("/api/notifications/unsubscribe")
    assert missing.status_code == 422
    assert (await alice.get("/api/notifications/settings")).json()["email_digest"] is True


async def test_an_accepted_invitation_reaches_the_offline_inviter(stack):
    alice = await signup(stack.client, "Alice Host")
    room = await alice.new_room("Design review")
    email = unique_email("guest")
    invited = await alice.post(f"/api/chat/rooms/{room['id']}/invite", json={"email": email})
    assert invited.status_code == 201, invited.text
    token = link_in(await stack.smtp.wait_for(lambda m: str(m["To"]) == email))[1]
    joined = await stack.client.post(
        f"/api/chat/invitations/{token}/accept", json={"name": "Gina Guest", "password": PASSWORD}
    )
    assert joined.status_code == 200, joined.text
    handle = stack.env.client.get_workflow_handle(
        invitation_workflow_id(invited.json()["id"]), result_type=InvitationResult
    )
    assert (await handle.result()).status == "accepted"
    await stack.env.sleep(timedelta(seconds=61))
    (digest,) = await stack.mails_to(alice, 1)
    assert 'Gina Guest accepted your invitation to "Design review"' in text_of(digest)


async def test_a_reply_finished_while_its_asker_is_offline_is_mailed(
    client, settings, database_url, smtp
):
    """Real Temporal dev server and worker: AgentReply's last step queues, the digest sends."""
    mailing = settings.model_copy(
        update={"notification_emails": True, "notification_digest_delay_seconds": 0.2}
    )
    alice = await signup(client, "Alice Asker")
    room = await alice.new_room("Architecture")
    message = await alice.say(room["id"], "how should we structure the API?")
    async with own_worker(mailing, database_url, lambda _: []) as (own, tc):
        result: AgentReplyResult = await _reply_on(own, tc, alice, room, message)
        assert result.status == "done"
        found = await smtp.wait_for(lambda m: str(m["To"]) == alice.user["email"], 60)
    assert 'Architect answered your question in "Architecture"' in text_of(found)
    kinds = rows(database_url, "SELECT kind FROM notifications WHERE user_id = %s", alice.id)
    assert [r[0] for r in kinds] == ["reply"]


async def _online(stack: Stack, person: Person) -> bool:
    return bool(
        rows(
            stack.database_url,
            "SELECT 1 FROM user_presence WHERE user_id = %s AND online_until > now()",
            person.id,
        )
    )


async def _no_lease(stack: Stack, person: Person) -> bool:
    return not rows(stack.database_url, "SELECT 1 FROM user_presence WHERE user_id = %s", person.id)


async def _dropped(stack: Stack, person: Person) -> bool:
    found = rows(
        stack.database_url,
        "SELECT dropped_reason FROM notifications WHERE user_id = %s",
        person.id,
    )
    return [r[0] for r in found] == ["read"]


async def _at_least(found: list[EmailMessage], count: int) -> bool:
    return len(found) >= count


async def _until(check, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)
