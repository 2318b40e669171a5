"""The information Art. 15(1)-(2) GDPR requires alongside a copy of the data."""

from __future__ import annotations

from typing import Any

from iaf.settings import Settings

# The pages iaf.legal serves (iaf/legal/pages.py); named here so the core below it needs no import.
LEGAL_PAGE_NAMES = ("privacy-policy", "terms", "cookie-policy", "dpa", "record-of-processing")


def llm_recipient(settings: Settings) -> str:
    provider = settings.default_llm_model.split("/", 1)[0]
    if provider == "offline":
        return "none: agents answer with a local model that sends nothing outside the platform"
    return f"the LLM provider '{provider}' receives the room history an agent needs to answer"


def art15_information(settings: Settings) -> dict[str, Any]:
    """Purposes, categories, recipients, retention, source and rights: shipped in every export."""
    grace = settings.erasure_grace_days
    return {
        "controller": "the organisation operating this IAFactory Agents instance",
        "purposes": [
            {"purpose": "providing the chat service", "legal_basis": "Art. 6(1)(b) contract"},
            {
                "purpose": "AI agent answers in rooms you use",
                "legal_basis": "Art. 6(1)(b) contract",
            },
            {
                "purpose": "credits and billing",
                "legal_basis": "Art. 6(1)(b) contract; 6(1)(c) legal obligation",
            },
            {
                "purpose": "security, abuse prevention, rate limiting",
                "legal_basis": "Art. 6(1)(f) legitimate interest",
            },
            {
                "purpose": "analytics, marketing, AI training",
                "legal_basis": "Art. 6(1)(a) consent, see consents",
            },
        ],
        "categories": [
            "identity: name, e-mail, handle",
            "account: organisation, role, status, API keys (prefixes only)",
            "content: messages you wrote, knowledge documents you uploaded, agent memories about"
            " you",
            "relations: room memberships, invitations sent and received, referrals",
            "financial: credit ledger",
            "consents and their history",
            "requests you made under the GDPR",
        ],
        "recipients": [
            "members of the rooms you post in see your messages and name",
            llm_recipient(settings),
            "hosting of PostgreSQL, Qdrant and Temporal used by this instance (processors)",
        ],
        "retention": {
            "account_and_content": "until you delete your account",
            "account_deletion_grace_period_days": grace,
            "shared_messages_after_erasure": (
                "replaced by a tombstone"
                if settings.anonymise_policy == "tombstone"
                else "kept without author"
            ),
            "export_archives_days": settings.export_link_days,
            "erasure_audit_record_days": settings.audit_retention_days,
            "erasure_audit_record_contents": "pseudonymous: request id, keyed hash of your id,"
            " steps, dates",
        },
        "source": "you, the members of your rooms, and agents answering you",
        "automated_decision_making": "none with legal or similarly significant effects (Art. 22)",
        "transfers_outside_eea": "depends on the LLM provider configured by the operator",
        "rights": [
            "access and portability: GET /api/user/data-export",
            "rectification: update your profile",
            "erasure: POST /api/user/delete-account",
            "withdraw consent at any time: PUT /api/user/consents",
            "object and restrict processing: contact the controller",
            "lodge a complaint with a supervisory authority",
        ],
        "legal_pages": {
            name: f"{settings.public_base_url.rstrip('/')}/legal/{name}"
            for name in LEGAL_PAGE_NAMES
        },
    }
