"""SMTP activities: invitation and password reset mails. Addresses and tokens are read here,
never passed in.

Delivery is at-least-once: the "sent" marker is written after the SMTP server accepted the
mail, so a crash in between can repeat one mail; its Message-ID is stable, so mail clients
can fold the duplicate. Errors leave without addresses or server text (they go to history).
"""

from __future__ import annotations

import logging
import uuid
from email.message import EmailMessage

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from iaf.db.models import Invitation, User
from iaf.db.repositories.email_changes import EmailChangeRepository
from iaf.db.repositories.invitations import InvitationRepository
from iaf.db.repositories.password_resets import PasswordResetRepository
from iaf.db.repositories.users import UserRepository
from iaf.mail.email_change import compose_email_change, email_change_url
from iaf.mail.links import derive_token, invitation_url
from iaf.mail.password_reset import compose_password_reset, reset_url
from iaf.mail.render import compose_invitation
from iaf.settings import Settings
from schemas.auth import MailSent, PasswordResetInput
from schemas.invitations import InvitationMail, MailOutcome
from schemas.profile import EmailChangeMail

log = logging.getLogger(__name__)
SMTP_TIMEOUT_SECONDS = 30.0


def already_sent(invitation: Invitation, mail: InvitationMail) -> bool:
    if mail.kind == "invite":
        return invitation.invite_sent_at is not None
    if mail.kind == "reminder":
        return invitation.reminder_sent_at is not None
    return invitation.resends_sent >= mail.seq


def refused_for_good(
    exc: aiosmtplib.SMTPRecipientsRefused | aiosmtplib.SMTPRecipientRefused,
) -> bool:
    """Whether every refusal was permanent (5xx); a 4xx asks the sender to try again."""
    refusals = exc.recipients if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) else [exc]
    return all(refusal.code >= 500 for refusal in refusals)


class MailActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings

    @activity.defn(name="send_invitation_mail")
    async def send_invitation_mail(self, mail: InvitationMail) -> MailOutcome:
        """Send one invitation, reminder or resend, unless it went out already or is moot."""
        async with self.sessionmaker() as session:
            view = await InvitationRepository(session).view(invitation_id=mail.invitation_id)
        if view is None:
            return MailOutcome(sent=False, reason="gone")
        invitation = view.invitation
        if invitation.status != "pending" or invitation.token_salt is None:
            return MailOutcome(sent=False, reason="not_pending")
        if already_sent(invitation, mail):
            return MailOutcome(sent=False, reason="already_sent")
        token = derive_token(self.settings.secret("invitation_secret"), invitation.token_salt)
        message = compose_invitation(
            kind=mail.kind,
            to=invitation.email,
            sender=self.settings.mail_from,
            inviter_name=view.inviter_name,
            room_name=view.room_name,
            url=invitation_url(self.settings.public_base_url, token),
            expires_at=invitation.expires_at,
            message_key=f"invitation-{invitation.id}-{mail.kind}-{mail.seq}",
        )
        await self.deliver(message, invitation.id)
        async with self.sessionmaker() as session:
            await InvitationRepository(session).mark_sent(invitation.id, mail.kind, mail.seq)
            await session.commit()
        return MailOutcome(sent=True, reason="sent")

    @activity.defn(name="send_email_change_mail")
    async def send_email_change_mail(self, mail: EmailChangeMail) -> MailOutcome:
        """The confirmation link for a new address, sent to that address, once."""
        async with self.sessionmaker() as session:
            change = await EmailChangeRepository(session).get(mail.email_change_id)
            if change is None:
                return MailOutcome(sent=False, reason="gone")
            if change.status != "pending" or change.token_salt is None:
                return MailOutcome(sent=False, reason="not_pending")
            if change.mail_sent_at is not None:
                return MailOutcome(sent=False, reason="already_sent")
            user = await session.get(User, change.user_id)
            name = user.name if user is not None else ""
        token = derive_token(self.settings.secret("invitation_secret"), change.token_salt)
        message = compose_email_change(
            to=change.new_email,
            sender=self.settings.mail_from,
            name=name,
            url=email_change_url(self.settings.public_base_url, token),
            expires_at=change.expires_at,
            message_key=f"email-change-{change.id}",
        )
        await self.deliver(message, change.id)
        async with self.sessionmaker() as session:
            await EmailChangeRepository(session).mark_sent(change.id)
            await session.commit()
        return MailOutcome(sent=True, reason="sent")

    @activity.defn(name="send_password_reset_mail")
    async def send_password_reset_mail(self, input: PasswordResetInput) -> MailSent:
        """Mail a pending reset link once (at least once across a crash, same Message-ID)."""
        async with self.sessionmaker() as session:
            reset = await PasswordResetRepository(session).get(input.reset_id)
            user = None if reset is None else await UserRepository(session).get(reset.user_id)
        if reset is None or user is None:
            return MailSent(sent=False, reason="gone")
        if reset.status != "pending" or reset.token_salt is None:
            return MailSent(sent=False, reason="not_pending")
        if reset.mail_sent_at is not None:
            return MailSent(sent=False, reason="already_sent")
        token = derive_token(self.settings.secret("invitation_secret"), reset.token_salt)
        message = compose_password_reset(
            to=user.email,
            sender=self.settings.mail_from,
            url=reset_url(self.settings.public_base_url, token),
            expires_at=reset.expires_at,
            message_key=f"password-reset-{reset.id}",
        )
        await self.deliver(message, reset.id)
        async with self.sessionmaker() as session:
            await PasswordResetRepository(session).mark_sent(reset.id)
            await session.commit()
        return MailSent(sent=True, reason="sent")

    async def deliver(self, message: EmailMessage, invitation_id: uuid.UUID) -> None:
        settings = self.settings
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value()
                if settings.smtp_password
                else None,
                use_tls=settings.smtp_use_tls,
                start_tls=False if settings.smtp_use_tls else settings.smtp_start_tls,
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPRecipientRefused) as exc:
            # A permanent (5xx) refusal is the only error retrying cannot fix for this mail;
            # everything else (server down, bad credentials, a 4xx "try later", even for the
            # recipient) retries with backoff until the expiry.
            if refused_for_good(exc):
                raise ApplicationError(
                    "the SMTP server refused the recipient",
                    type="RecipientRefused",
                    non_retryable=True,
                ) from None
            raise ApplicationError(
                "the SMTP server deferred the recipient", type="RecipientDeferred"
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            log.warning("invitation %s: SMTP answered %s", invitation_id, exc.code)
            raise ApplicationError(f"SMTP error {exc.code}", type="SmtpRejected") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ApplicationError(
                f"SMTP unavailable ({type(exc).__name__})", type="SmtpUnavailable"
            ) from None
