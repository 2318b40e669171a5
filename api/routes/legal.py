"""Legal pages for everyone (HTML for people, Markdown for clients), and the breach report
for compliance users (docs/breach-notification.md)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse

from api.deps import CurrentUser, SessionDep, SettingsDep, require_role
from iaf.errors import ApiError
from iaf.legal import pages
from iaf.legal.breach import breach_report
from schemas.legal import BreachReport, LegalIndex, LegalPageOut

router = APIRouter(tags=["legal"])


@router.get("/api/legal")
async def legal_index(settings: SettingsDep) -> LegalIndex:
    base = settings.public_base_url.rstrip("/")
    return LegalIndex(
        pages=[
            LegalPageOut(
                name=page.name,
                title=page.title,
                url=f"{base}/legal/{page.name}",
                markdown_url=f"{base}/legal/{page.name}.md",
            )
            for page in pages.PAGES
        ],
        missing_settings=pages.missing_settings(settings),
    )


@router.get("/legal/{name}", response_model=None)
async def legal_page(name: str, settings: SettingsDep) -> HTMLResponse | PlainTextResponse:
    """`/legal/terms` is a page to read; `/legal/terms.md` its Markdown source."""
    markdown_source = name.endswith(".md")
    page = name.removesuffix(".md")
    if page not in pages.PAGE_NAMES:
        raise ApiError(404, "page_not_found", f"no legal page {name[:60]!r}; see /api/legal")
    if markdown_source:
        return PlainTextResponse(
            pages.render_markdown(page, settings), media_type="text/markdown; charset=utf-8"
        )
    return HTMLResponse(pages.render_html(page, settings))


@router.get("/api/compliance/breach")
async def breach(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    since: datetime = Query(alias="from"),
    until: datetime = Query(alias="to"),
    include_email: bool = Query(default=False),
) -> BreachReport:
    """Everyone of the caller's organisation whose data the platform held between `from` and
    `to`, with what they wrote in that window (role compliance)."""
    require_role(user, "compliance")
    return await breach_report(session, settings, user, since, until, include_email=include_email)
