"""The legal pages (privacy policy, terms, cookie policy, DPA template, Art. 30 record): Markdown
templates in iaf/legal/templates, filled from Settings.

A detail the operator has not set shows as "[set LEGAL_…]" rather than an invented value,
and `missing_settings` names them, so a page never states something nobody decided.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib.resources import files
from string import Template

import markdown

from iaf.gdpr.art15 import llm_recipient
from iaf.settings import Settings

SERVICE_NAME = "IAFactory Agents"


@dataclass(frozen=True)
class LegalPage:
    name: str
    title: str


PAGES: tuple[LegalPage, ...] = (
    LegalPage("privacy-policy", "Privacy policy"),
    LegalPage("terms", "Terms of service"),
    LegalPage("cookie-policy", "Cookie policy"),
    LegalPage("dpa", "Data processing agreement (template)"),
    LegalPage("record-of-processing", "Record of processing activities (Art. 30 GDPR)"),
)
PAGE_NAMES = frozenset(page.name for page in PAGES)

# Template variable -> the Settings field the operator sets for it.
_OPERATOR_DETAILS = {
    "org_name": "legal_org_name",
    "org_address": "legal_org_address",
    "contact_email": "legal_contact_email",
    "dpo_name": "legal_dpo_name",
    "dpo_email": "legal_dpo_email",
    "supervisory_authority": "legal_supervisory_authority",
    "hosting": "legal_hosting",
    "governing_law": "legal_governing_law",
    "effective_date": "legal_effective_date",
}


def missing_settings(settings: Settings) -> list[str]:
    """The operator's details still unset (environment variable names)."""
    return [field.upper() for field in _OPERATOR_DETAILS.values() if not getattr(settings, field)]


def _values(settings: Settings) -> dict[str, str]:
    values = {
        key: str(getattr(settings, field) or f"[set {field.upper()}]")
        for key, field in _OPERATOR_DETAILS.items()
    }
    keep = settings.anonymise_policy == "keep"
    values.update(
        service_name=SERVICE_NAME,
        base_url=settings.public_base_url.rstrip("/"),
        llm_recipient=llm_recipient(settings),
        transfers=(
            "none: agents answer with a local model"
            if settings.default_llm_model.startswith("offline/")
            else "as the configured language model provider's terms state (standard"
            " contractual clauses where it is outside the EEA)"
        ),
        erasure_grace_days=f"{settings.erasure_grace_days:g}",
        export_link_days=f"{settings.export_link_days:g}",
        audit_retention_days=str(settings.audit_retention_days),
        shared_messages_after_erasure=(
            "kept without your name" if keep else "replaced by a notice that they were removed"
        ),
    )
    return values


def render_markdown(name: str, settings: Settings) -> str:
    """The page's Markdown with the operator's details filled in (KeyError: no such page)."""
    if name not in PAGE_NAMES:
        raise KeyError(name)
    template = (files("iaf.legal") / "templates" / f"{name}.md").read_text(encoding="utf-8")
    return Template(template).substitute(_values(settings))


def render_html(name: str, settings: Settings) -> str:
    """A standalone page for people following a link; every setting value is escaped."""
    if name not in PAGE_NAMES:
        raise KeyError(name)
    escaped = {key: html.escape(value) for key, value in _values(settings).items()}
    template = (files("iaf.legal") / "templates" / f"{name}.md").read_text(encoding="utf-8")
    body = markdown.markdown(Template(template).substitute(escaped), extensions=["tables"])
    title = next(page.title for page in PAGES if page.name == name)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no /favicon.ico request, no 404 in the console
        f"<title>{html.escape(title)} · {SERVICE_NAME}</title></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def all_markdown(settings: Settings) -> dict[str, str]:
    """Every page, by file name: what a data export archive ships in legal/."""
    return {f"{page.name}.md": render_markdown(page.name, settings) for page in PAGES}
