"""The signed-in person's own account: profile (name, e-mail confirmed by a mailed link),
password (other sessions signed out), and sign-out (this token revoked on the server)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import CurrentUser, SessionDep, StateDep
from iaf.accounts import profile
from iaf.accounts.service import token_response
from iaf.errors import ApiError
from iaf.security import API_KEY_PREFIX, decode_access_token
from iaf.workflow_calls import start_email_change_mail
from schemas.auth import TokenResponse
from schemas.profile import EmailConfirm, MeOut, PasswordChange, ProfileUpdate

router = APIRouter(tags=["me"])


@router.get("/api/me")
async def me(user: CurrentUser, session: SessionDep) -> MeOut:
    return MeOut.of(user, await profile.pending_email(session, user))


@router.put("/api/me")
async def update_me(
    body: ProfileUpdate, user: CurrentUser, session: SessionDep, state: StateDep
) -> MeOut:
    """A new name applies at once; a new e-mail once the link mailed to it is opened."""
    account, change = await profile.update_profile(session, state.settings, user, body)
    await session.commit()
    if change is not None:
        try:
            await start_email_change_mail(state.temporal, state.settings, change.id, account.id)
        except Exception:  # without its workflow no mail would ever go out: undo, say so
            await profile.withdraw_email_change(session, change.id)
            await session.commit()
            raise ApiError(
                503, "mail_unavailable", "the confirmation mail cannot be sent now; try again"
            ) from None
    pending = change.new_email if change else await profile.pending_email(session, account)
    return MeOut.of(account, pending)


@router.post("/api/me/email/confirm")
async def confirm_email(body: EmailConfirm, session: SessionDep) -> MeOut:
    """The mailed link's holder confirms the new address (no sign-in needed: the link is the
    credential, single-use, stored hashed, expiring)."""
    account = await profile.confirm_email(session, body.token)
    await session.commit()
    return MeOut.of(account, None)


@router.post("/api/me/password")
async def change_password(
    body: PasswordChange, user: CurrentUser, session: SessionDep, state: StateDep
) -> TokenResponse:
    """Every other session is signed out; the answer carries this session's new token."""
    account = await profile.change_password(session, user, body.current_password, body.new_password)
    await session.commit()
    return token_response(state.jwt_secret, state.settings, account)


@router.post("/api/auth/logout", status_code=204)
async def logout(
    request: Request, user: CurrentUser, session: SessionDep, state: StateDep
) -> Response:
    """Revokes the access token of this request, on every replica, until it would expire."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    if token.startswith(API_KEY_PREFIX):
        raise ApiError(422, "api_key", "API keys are revoked with DELETE /api/auth/api-keys/{id}")
    claims = decode_access_token(state.jwt_secret, token)
    assert claims is not None  # CurrentUser has verified it
    await profile.sign_out(session, user, claims)
    await session.commit()
    return Response(status_code=204)
