"""E-mail digests of what a person missed while offline: their choice, and the unsubscribe link.

The unsubscribe endpoint needs no sign-in: the signed single-purpose token in the link is the
permission. Mail clients call it with the token in the URL (RFC 8058 one-click, form body
`List-Unsubscribe=One-Click`); the web client's /unsubscribe page sends it as JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError

from api.deps import CurrentUser, SessionDep, SettingsDep
from iaf.errors import ApiError
from iaf.notifications import service as notifications
from schemas.notifications import (
    NotificationSettingsOut,
    NotificationSettingsUpdate,
    UnsubscribeOut,
    UnsubscribeRequest,
)

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


@router.get("/settings")
async def get_settings(
    user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> NotificationSettingsOut:
    return await notifications.settings_of(session, user, settings)


@router.put("/settings")
async def put_settings(
    body: NotificationSettingsUpdate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> NotificationSettingsOut:
    await notifications.choose(session, user, body.email_digest)
    await session.commit()
    return await notifications.settings_of(session, user, settings)


@router.post("/unsubscribe")
async def unsubscribe(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: str | None = Query(default=None, min_length=1, max_length=2000),
) -> UnsubscribeOut:
    """Digests off for the link's person: `?token=` (one-click) or `{"token": ...}`."""
    if token is None:
        try:
            token = UnsubscribeRequest.model_validate_json(await request.body()).token
        except ValidationError:
            raise ApiError(422, "invalid_request", "the unsubscribe token is missing") from None
    await notifications.unsubscribe(session, settings, token)
    await session.commit()
    return UnsubscribeOut()
