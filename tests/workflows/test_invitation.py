"""The Invitation workflow on the time-skipping test server: days pass in seconds."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.workflow_calls import invitation_workflow_id, referral_workflow_id
from schemas.invitations import InvitationResult, ReferralOutcome
from tests.conftest import make_settings
from tests.helpers import Person, free_port, serve_api, signup, unique_email
from tests.smtp_capture import SmtpCapture, link_in
from workers.registry import WorkerClients, invitation_activities
from workflows.invitation import Invitation
from workflows.referral import Referral

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"
PASSWORD = "correct horse battery"


@dataclass
class Stack:
    env: WorkflowEnvironment
    client: httpx.AsyncClient
    smtp: SmtpCapture


@contextlib.asynccontextmanager
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace="default",
            search_attributes={"Kind": keyword, "RoomId": keyword, "SubjectRef": keyword},
        )
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def stack(data_dir, database_url) -> AsyncIterator[Stack]:
    """A fresh virtual clock per test: skipped days must not leak into the next test."""
    smtp = SmtpCapture(free_port())
    smtp.start()
    engine = make_engine(database_url, 4)
    try:
        async with time_skipping_env() as env:
            target = env.client.service_client.config.target_host
            settings = make_settings(
                data_dir,
                database_url,
                target,
                temporal_task_queue="iaf-invitation-ts",
                smtp_port=smtp.port,
            )
            clients = WorkerClients(
                settings=settings, sessionmaker=make_sessionmaker(engine), temporal=env.client
            )
            worker = Worker(
                env.client,
                task_queue=settings.temporal_task_queue,
                workflows=[Invitation, Referral],
                activities=invitation_activities(clients),
            )
            async with (
                worker,
                serve_api(settings) as url,
                httpx.AsyncClient(base_url=url, timeout=30) as client,
            ):
                yield Stack(env, client, smtp)
    finally:
        smtp.stop()
        await engine.dispose()


async def _invite(
    stack: Stack, host: Person, room_id: str, email: str
) -> tuple[dict[str, Any], str]:
    response = await host.post(f"/api/chat/rooms/{room_id}/invite", json={"email": email})
    assert response.status_code == 201, response.text
    message = await stack.smtp.wait_for(lambda m: str(m["To"]) == email)
    return response.json(), link_in(message)[1]


def _subjects(stack: Stack, email: str) -> list[str]:
    return [str(m["Subject"]) for m in stack.smtp.to(email)]


async def test_seven_days_pass_the_invitation_expires_after_exactly_one_reminder(
    stack, database_url
):
    alice = await signup(stack.client, "Alice Host")
    room = await alice.new_room("Quarterly review")
    email = unique_email("late")
    invitation, token = await _invite(stack, alice, room["id"], email)
    handle = stack.env.client.get_workflow_handle(
        invitation_workflow_id(invitation["id"]), result_type=InvitationResult
    )

    await stack.env.sleep(timedelta(days=7, minutes=1))
    result = await handle.result()

    assert result.status == "expired"
    assert result.invite_sent and result.reminders_sent == 1
    subjects = _subjects(stack, email)
    assert sorted(subjects) == sorted(
        [
            'Alice Host invited you to "Quarterly review" on IAFactory',
            'Reminder: Alice Host invited you to "Quarterly review" on IAFactory',
        ]
    ), subjects
    accept = await stack.client.post(
        f"/api/chat/invitations/{token}/accept", json={"name": "Late", "password": PASSWORD}
    )
    assert accept.status_code == 410 and accept.json()["error"]["code"] == "invitation_expired"
    assert (await stack.client.get(f"/api/chat/invitations/{token}")).json()["status"] == "expired"
    with psycopg.connect(database_url) as conn:
        notices = conn.execute(
            "SELECT data FROM room_events WHERE room_id = %s AND type = 'invitation.expired'",
            (room["id"],),
        ).fetchall()
    assert [n[0] for n in notices] == [
        {"invitation_id": invitation["id"], "room_id": room["id"], "invited_by": alice.id}
    ], "exactly one notice, to the inviter"


async def test_the_reminder_comes_a_day_before_expiry_not_earlier(stack):
    alice = await signup(stack.client)
    room = await alice.new_room()
    email = unique_email("remind")
    await _invite(stack, alice, room["id"], email)
    await stack.env.sleep(timedelta(days=5, hours=23))
    assert len(stack.smtp.to(email)) == 1, "no reminder before day 6"
    await stack.env.sleep(timedelta(hours=2))
    reminder = await stack.smtp.wait_for(
        lambda m: str(m["To"]) == email and str(m["Subject"]).startswith("Reminder")
    )
    assert "expires soon" in str(reminder.get_body(("plain",)).get_content())


async def test_a_revoked_invitation_ends_without_reminder_or_expiry_notice(stack, database_url):
    alice = await signup(stack.client)
    room = await alice.new_room()
    email = unique_email("revoked")
    invitation, _ = await _invite(stack, alice, room["id"], email)
    revoked = await alice.delete(f"/api/chat/rooms/{room['id']}/invitations/{invitation['id']}")
    assert revoked.status_code == 200
    handle = stack.env.client.get_workflow_handle(
        invitation_workflow_id(invitation["id"]), result_type=InvitationResult
    )
    assert (await handle.result()).status == "revoked"
    await stack.env.sleep(timedelta(days=8))
    assert len(stack.smtp.to(email)) == 1, "only the first mail"
    with psycopg.connect(database_url) as conn:
        expired = conn.execute(
            "SELECT count(*) FROM room_events WHERE room_id = %s AND type = 'invitation.expired'",
            (room["id"],),
        ).fetchone()
    assert expired == (0,)


async def test_sign_up_then_first_message_grants_the_referrer_exactly_the_reward(stack):
    alice = await signup(stack.client)
    room = await alice.new_room()
    invitation, token = await _invite(stack, alice, room["id"], unique_email("referred"))
    before = (await alice.get("/api/credits")).json()["balance"]
    joined = await stack.client.post(
        f"/api/chat/invitations/{token}/accept",
        json={"name": "Rita Referred", "password": PASSWORD},
    )
    assert joined.status_code == 200
    rita = Person(stack.client, joined.json()["access_token"], joined.json()["user"])
    result = await stack.env.client.get_workflow_handle(
        invitation_workflow_id(invitation["id"]), result_type=InvitationResult
    ).result()
    assert result.status == "accepted" and result.referral_id is not None
    assert (await alice.get("/api/referrals")).json()["items"][0]["status"] == "pending"

    await rita.say(room["id"], "hello, thanks for the invite")
    await rita.say(room["id"], "a second message changes nothing")
    outcome = await stack.env.client.get_workflow_handle(
        referral_workflow_id(result.referral_id), result_type=ReferralOutcome
    ).result()

    assert outcome.status == "granted"
    after = await alice.get("/api/credits")
    assert after.json()["balance"] == before + 100
    referral_entries = [e for e in after.json()["items"] if e["source"] == "referral"]
    assert [(e["amount"], e["source_id"]) for e in referral_entries] == [
        (100, str(result.referral_id))
    ]
    assert (await alice.get("/api/referrals")).json()["items"][0]["status"] == "granted"


async def test_an_acceptance_whose_signal_was_lost_is_noticed_at_the_reminder(stack, database_url):
    alice = await signup(stack.client)
    room = await alice.new_room()
    email = unique_email("quiet")
    invitation, _ = await _invite(stack, alice, room["id"], email)
    bob = await signup(stack.client, "Bob")
    with psycopg.connect(database_url) as conn:  # what the accept route commits, minus the signal
        conn.execute(
            "UPDATE invitations SET status = 'accepted', closed_at = now(), token_salt = NULL,"
            " accepted_user_id = %s WHERE id = %s",
            (bob.id, invitation["id"]),
        )
    handle = stack.env.client.get_workflow_handle(
        invitation_workflow_id(invitation["id"]), result_type=InvitationResult
    )
    await stack.env.sleep(timedelta(days=6, minutes=1))
    for _ in range(200):  # real time only: the virtual clock stays a day before the expiry
        if (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED:
            break
        await asyncio.sleep(0.05)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    result = await handle.result()
    assert result.status == "accepted" and result.reminders_sent == 0
    assert len(stack.smtp.to(email)) == 1
