"""The JSON Schema every export.json is validated against; shipped inside each archive too."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

FORMAT = "iaf-gdpr-export"
VERSION = 1

_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"anyOf": [_TIME, {"type": "null"}]}
_UUID = {"type": "string", "format": "uuid"}
_STR_OR_NULL = {"type": ["string", "null"]}


def _records(required: dict[str, Any]) -> dict[str, Any]:
    """An array of objects with at least these typed properties; extra columns are allowed."""
    return {
        "type": "array",
        "items": {
            "type": "object",
            "required": sorted(required),
            "properties": required,
        },
    }


SECTIONS: dict[str, dict[str, Any]] = {
    "rooms": _records(
        {
            "room_id": _UUID,
            "name": {"type": "string"},
            "role": {"type": "string"},
            "joined_at": _TIME,
        }
    ),
    "messages": _records(
        {
            "id": {"type": "integer"},
            "room_id": _UUID,
            "content": {"type": "string"},
            "created_at": _TIME,
            "edited_at": _TIME_OR_NULL,
            "deleted_at": _TIME_OR_NULL,
        }
    ),
    "mentions_of_you": _records(
        {"message_id": {"type": "integer"}, "room_id": _UUID, "created_at": _TIME}
    ),
    "invitations_sent": _records({"id": _UUID, "room_id": _UUID, "status": {"type": "string"}}),
    "invitations_received": _records({"id": _UUID, "room_id": _UUID, "status": {"type": "string"}}),
    "ledger_entries": _records(
        {
            "id": {"type": "integer"},
            "amount": {"type": "integer"},
            "kind": {"type": "string"},
            "source": {"type": "string"},
        }
    ),
    "consents": _records(
        {"purpose": {"type": "string"}, "granted": {"type": "boolean"}, "updated_at": _TIME}
    ),
    "consent_history": _records(
        {"purpose": {"type": "string"}, "granted": {"type": "boolean"}, "changed_at": _TIME}
    ),
    "referrals": _records(
        {"id": _UUID, "role": {"enum": ["referrer", "referred"]}, "status": {"type": "string"}}
    ),
    "knowledge_documents": _records(
        {"id": _UUID, "title": {"type": "string"}, "content": {"type": "string"}}
    ),
    "memories": _records({"id": _UUID, "content": {"type": "string"}}),
    "attachments": _records(
        {
            "id": _UUID,
            "name": {"type": "string"},
            "content_type": {"type": "string"},
            "size_bytes": {"type": "integer"},
            "file": {"type": "string"},
        }
    ),
    "agent_runs": _records(
        {
            "reply_id": {"type": "string"},
            "room_id": _UUID,
            "agent_id": {"type": "string"},
            "status": {"type": "string"},
        }
    ),
    "requests": _records(
        {
            "id": _UUID,
            "kind": {"enum": ["export", "erasure"]},
            "status": {"type": "string"},
            "created_at": _TIME,
            "due_at": _TIME,
        }
    ),
    "api_keys": _records(
        {
            "id": _UUID,
            "name": {"type": "string"},
            "prefix": {"type": "string"},
            "created_at": _TIME,
            "revoked_at": _TIME_OR_NULL,
        }
    ),
}

EXPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://iafactory.local/schemas/gdpr-export-v1.json",
    "title": "IAFactory Agents personal data export",
    "type": "object",
    "required": [
        "format",
        "version",
        "request_id",
        "generated_at",
        "subject",
        "information",
        "sections",
        "ledger_balance",
        "unavailable_sections",
    ],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "version": {"const": VERSION},
        "request_id": _UUID,
        "generated_at": _TIME,
        "subject": {
            "type": "object",
            "required": ["id", "email", "name", "handle", "role", "status", "created_at", "org"],
            "properties": {
                "id": _UUID,
                "email": {"type": "string"},
                "name": {"type": "string"},
                "handle": {"type": "string"},
                "role": {"type": "string"},
                "status": {"type": "string"},
                "created_at": _TIME,
                "org": {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {"id": _UUID, "name": {"type": "string"}},
                },
            },
        },
        "information": {
            "type": "object",
            "required": ["purposes", "categories", "recipients", "retention", "source", "rights"],
        },
        "sections": {
            "type": "object",
            "required": sorted(SECTIONS),
            "additionalProperties": False,
            "properties": SECTIONS,
        },
        "ledger_balance": {"type": "integer"},
        # Sections whose feature is not installed on this instance (their tables do not exist).
        "unavailable_sections": {"type": "array", "items": {"enum": sorted(SECTIONS)}},
    },
}

_validator = Draft202012Validator(EXPORT_SCHEMA, format_checker=FormatChecker())


def validation_errors(document: dict[str, Any]) -> list[str]:
    """Empty when the document is valid; otherwise where and why (paths, no values)."""
    errors = sorted(_validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.validator}"
        for e in errors[:20]
    ]
