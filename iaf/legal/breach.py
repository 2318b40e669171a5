"""The people a personal data breach may concern, for the notification procedure
(docs/breach-notification.md): every account that existed in the window, what each wrote in
it, and the pseudonyms of those erased since. A query, not a workflow: nothing of it goes
to Temporal, and e-mail addresses only to the caller who asks for them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import User
from iaf.db.repositories.breach import BreachRepository
from iaf.errors import ApiError
from iaf.security import pseudonym
from iaf.settings import Settings
from schemas.legal import BreachPersonOut, BreachReport, ErasedPersonOut

MAX_WINDOW = timedelta(days=3 * 366)


async def breach_report(
    session: AsyncSession,
    settings: Settings,
    officer: User,
    since: datetime,
    until: datetime,
    *,
    include_email: bool,
) -> BreachReport:
    if since.tzinfo is None or until.tzinfo is None:
        raise ApiError(422, "invalid_window", "give times with a time zone, e.g. 2026-05-01T00:00Z")
    if until <= since:
        raise ApiError(422, "invalid_window", "the window must end after it begins")
    if until - since > MAX_WINDOW:
        raise ApiError(422, "invalid_window", "a window is at most three years")
    breaches = BreachRepository(session)
    secret = settings.secret("pseudonym_secret")
    people = [
        BreachPersonOut(
            **{key: value for key, value in person.items() if key != "email"},
            subject_ref=pseudonym(secret, person["user_id"]),
            email=person["email"] if include_email else None,
        )
        for person in await breaches.people(officer.org_id, since, until)
    ]
    totals: dict[str, int] = {}
    for person in people:
        for kind, count in person.records_in_window.items():
            totals[kind] = totals.get(kind, 0) + count
    erased = await breaches.erased_since(officer.org_id, since, until)
    return BreachReport(
        since=since,
        until=until,
        people=people,
        erased=[ErasedPersonOut(**row) for row in erased],
        records_in_window=totals,
    )
