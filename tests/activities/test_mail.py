"""The invitation mail activity against a real SMTP server (aiosmtpd) and the real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.mail import MailActivities
from iaf.db.engine import make_engine, make_sessionmaker
from iaf.db.models import Invitation
from iaf.db.repositories.invitations import InvitationRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.db.repositories.users import UserRepository
from iaf.mail.links import derive_token, new_salt, token_hash
from iaf.settings import Settings
from schemas.invitations import InvitationMail
from tests.conftest import make_settings
from tests.helpers import free_port, unique_email
from tests.smtp_capture import SmtpCapture, html_of, link_in, text_of


@pytest.fixture(scope="module")
def mail_settings(data_dir: Path, database_url: str, smtp: SmtpCapture) -> Settings:
    return make_settings(
        data_dir,
        database_url,
        "127.0.0.1:1",
        smtp_port=smtp.port,
        public_base_url="https://chat.example.test",
    )


@pytest.fixture(scope="module")
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url, 2)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _invitation(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, room_name: str = "Roadmap"
) -> tuple[Invitation, str]:
    """A pending invitation from a fresh inviter, and its raw token."""
    async with sessionmaker() as session:
        users = UserRepository(session)
        org = await users.create_org("Mail Test Org")
        inviter = await users.create(
            org.id, unique_email("inviter"), "Ines Inviter", "x", "org_admin"
        )
        room = await RoomRepository(session).create(
            org.id, inviter.id, room_name, "group", "", False
        )
        salt = new_salt()
        token = derive_token(settings.secret("invitation_secret"), salt)
        expires = datetime.now(UTC) + timedelta(days=7)
        invitation = await InvitationRepository(session).create(
            room.id, inviter.id, unique_email("guest"), token_hash(token), salt, expires
        )
        assert invitation is not None
        await session.commit()
    return invitation, token


async def _send(
    activities: MailActivities, invitation_id: uuid.UUID, kind: str = "invite", seq: int = 0
):
    mail = InvitationMail(invitation_id=invitation_id, kind=kind, seq=seq)
    return await ActivityEnvironment().run(activities.send_invitation_mail, mail)


async def test_invite_mail_has_text_and_html_with_a_link_that_matches_the_stored_hash(
    smtp, mail_settings, sessionmaker
):
    invitation, token = await _invitation(sessionmaker, mail_settings)
    outcome = await _send(MailActivities(sessionmaker, mail_settings), invitation.id)
    assert outcome.sent and outcome.reason == "sent"
    message = await smtp.wait_for(lambda m: str(m["To"]) == invitation.email)
    url, linked = link_in(message)
    assert url == f"https://chat.example.test/api/chat/invitations/{token}"
    assert token_hash(linked) == invitation.token_hash
    assert "Ines Inviter" in text_of(message) and "Roadmap" in text_of(message)
    assert url in html_of(message)
    assert str(message["Subject"]) == 'Ines Inviter invited you to "Roadmap" on IAFactory'
    assert (
        str(message["Message-ID"]).strip()
        == f"<invitation-{invitation.id}-invite-0@iafactory.local>"
    )


async def test_a_retried_send_does_not_mail_twice_and_a_resend_carries_the_same_link(
    smtp, mail_settings, sessionmaker
):
    invitation, token = await _invitation(sessionmaker, mail_settings)
    activities = MailActivities(sessionmaker, mail_settings)
    assert (await _send(activities, invitation.id)).sent
    again = await _send(activities, invitation.id)
    assert (again.sent, again.reason) == (False, "already_sent")
    async with sessionmaker() as session:
        assert await InvitationRepository(session).request_resend(invitation.id) == 1
        await session.commit()
    assert (await _send(activities, invitation.id, "resend", 1)).sent
    assert (await _send(activities, invitation.id, "resend", 1)).reason == "already_sent"
    mails = smtp.to(invitation.email)
    assert len(mails) == 2
    assert {link_in(m)[1] for m in mails} == {token}


async def test_nothing_is_mailed_for_a_closed_or_missing_invitation(
    smtp, mail_settings, sessionmaker
):
    invitation, _ = await _invitation(sessionmaker, mail_settings)
    async with sessionmaker() as session:
        assert await InvitationRepository(session).revoke(invitation.id)
        await session.commit()
        closed = await InvitationRepository(session).get(invitation.id)
    assert closed is not None and closed.token_salt is None, (
        "a closed invitation cannot rebuild its link"
    )
    activities = MailActivities(sessionmaker, mail_settings)
    assert (await _send(activities, invitation.id)).reason == "not_pending"
    assert (await _send(activities, uuid.uuid4())).reason == "gone"
    assert smtp.to(invitation.email) == []


async def test_smtp_down_is_a_retryable_error_that_names_no_address(mail_settings, sessionmaker):
    down = mail_settings.model_copy(update={"smtp_port": free_port()})
    invitation, _ = await _invitation(sessionmaker, down)
    with pytest.raises(ApplicationError) as raised:
        await _send(MailActivities(sessionmaker, down), invitation.id)
    assert raised.value.non_retryable is False
    assert raised.value.type == "SmtpUnavailable"
    assert invitation.email not in str(raised.value)
    async with sessionmaker() as session:
        stored = await InvitationRepository(session).get(invitation.id)
    assert stored is not None and stored.invite_sent_at is None


async def test_a_refused_recipient_is_final_and_names_no_address(smtp, mail_settings, sessionmaker):
    invitation, _ = await _invitation(sessionmaker, mail_settings)
    smtp.refused.add(invitation.email.lower())
    with pytest.raises(ApplicationError) as raised:
        await _send(MailActivities(sessionmaker, mail_settings), invitation.id)
    assert raised.value.non_retryable is True
    assert invitation.email not in str(raised.value)


async def test_names_are_escaped_in_html_and_cannot_inject_headers(
    smtp, mail_settings, sessionmaker
):
    invitation, _ = await _invitation(
        sessionmaker, mail_settings, "Q4 <script>x</script>\r\nBcc: evil@x"
    )
    assert (await _send(MailActivities(sessionmaker, mail_settings), invitation.id)).sent
    message = await smtp.wait_for(lambda m: str(m["To"]) == invitation.email)
    assert message["Bcc"] is None
    assert "\n" not in str(message["Subject"])
    assert "<script>" not in html_of(message)
    assert "&lt;script&gt;" in html_of(message)
