"""Attachments: upload to a room, post with a message, read, withdraw, add to knowledge.

An upload is stored before any message refers to it (row `uploading`, then the bytes, then
`stored`), so a crash leaves a row the janitor finds, never bytes nobody knows of. Posting
claims the uploads in the message's transaction. Only the room's members read a posted
file; an unposted one only its uploader. Nothing here commits: the caller does.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import unicodedata
import uuid
from pathlib import PurePath

from pypdf import PdfReader
from pypdf.errors import PdfReadError
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Attachment, KnowledgeDocument, User
from iaf.db.repositories.attachments import AttachmentRepository
from iaf.db.repositories.knowledge import KnowledgeRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.errors import ApiError
from iaf.files.sniff import sniff
from iaf.files.store import FileStore, user_prefix
from iaf.rooms.service import ensure_writable, room_for_member
from iaf.settings import Settings
from schemas.chat import AttachmentRef, MessageCreate

log = logging.getLogger(__name__)


def clean_name(name: str) -> str:
    """The file's base name, without directories or control characters; never empty."""
    base = PurePath(name.replace("\\", "/")).name
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return base[:200] or "file"


def reference(attachment: Attachment) -> AttachmentRef:
    return AttachmentRef.model_validate(attachment, from_attributes=True)


async def upload(
    session: AsyncSession,
    settings: Settings,
    store: FileStore,
    user: User,
    room_id: uuid.UUID,
    name: str,
    data: bytes,
) -> Attachment:
    room, _ = await room_for_member(session, room_id, user)
    ensure_writable(room)
    if len(data) > settings.attachment_max_bytes:
        raise ApiError(
            413, "file_too_large", f"a file is at most {settings.attachment_max_bytes} bytes"
        )
    found = await asyncio.to_thread(sniff, name, data)
    attachment_id = uuid.uuid4()
    attachments = AttachmentRepository(session)
    attachment = await attachments.create(
        Attachment(
            id=attachment_id,
            org_id=room.org_id,
            room_id=room.id,
            uploader_id=user.id,
            name=clean_name(name),
            content_type=found.content_type,
            kind=found.kind,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            storage_key=f"{user_prefix(user.id)}{attachment_id}",
            status="uploading",
            width=found.width,
            height=found.height,
        )
    )
    await session.commit()  # the row first: bytes are never stored without one
    await asyncio.to_thread(store.put, attachment.storage_key, data, found.content_type)
    await attachments.set_status(attachment.id, "stored")
    attachment.status = "stored"
    return attachment


async def claim_for_post(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    room_id: uuid.UUID,
    body: MessageCreate,
) -> list[Attachment]:
    """The uploads a post names, locked; 422 for one that is not the caller's in this room,
    409 for one posted already (unless the post is a retry of that message)."""
    ids = list(dict.fromkeys(body.attachment_ids))
    if len(ids) > settings.attachments_per_message:
        raise ApiError(
            422,
            "too_many_attachments",
            f"a message carries at most {settings.attachments_per_message} files",
        )
    found = await AttachmentRepository(session).for_posting(ids, user_id, room_id)
    if len(found) != len(ids):
        raise ApiError(
            422, "invalid_attachment", "an attachment is not one you uploaded to this room"
        )
    if any(a.message_id is not None for a in found) and not body.client_msg_id:
        raise ApiError(409, "attachment_posted", "an attachment was posted with another message")
    by_id = {a.id: a for a in found}
    return [by_id[i] for i in ids]


async def attach(session: AsyncSession, claimed: list[Attachment], message_id: int) -> None:
    """After the post stored a new message: the claimed files become its own."""
    if any(a.message_id is not None and a.message_id != message_id for a in claimed):
        raise ApiError(409, "attachment_posted", "an attachment was posted with another message")
    await AttachmentRepository(session).attach([a.id for a in claimed], message_id)


async def readable(session: AsyncSession, attachment_id: uuid.UUID, user: User) -> Attachment:
    """A posted file for the members of its room, an unposted one for its uploader; 404 else."""
    attachment = await AttachmentRepository(session).get(attachment_id)
    if attachment is None or attachment.status != "stored" or attachment.room_id is None:
        raise ApiError(404, "attachment_not_found", "attachment not found")
    if attachment.message_id is None:
        if attachment.uploader_id != user.id:
            raise ApiError(404, "attachment_not_found", "attachment not found")
        return attachment
    if await RoomRepository(session).get_for_member(attachment.room_id, user.id) is None:
        raise ApiError(404, "attachment_not_found", "attachment not found")
    return attachment


async def content(store: FileStore, attachment: Attachment) -> bytes:
    return await asyncio.to_thread(store.get, attachment.storage_key)


async def discard_unposted(session: AsyncSession, attachment: Attachment, user: User) -> None:
    """The uploader changes their mind before posting; a posted file goes with its message."""
    if attachment.message_id is not None or attachment.uploader_id != user.id:
        raise ApiError(409, "attachment_posted", "delete the message to remove a posted file")
    await AttachmentRepository(session).set_status(attachment.id, "deleting")


async def remove(session: AsyncSession, store: FileStore, attachments: list[Attachment]) -> int:
    """Bytes first, then the row, one file at a time, committed; a file whose bytes could
    not be deleted keeps its row for the janitor's next round."""
    gone: list[uuid.UUID] = []
    for attachment in attachments:
        try:
            await asyncio.to_thread(store.delete, attachment.storage_key)
        except Exception as exc:
            log.warning("attachment %s bytes kept for now (%s)", attachment.id, type(exc).__name__)
            continue
        gone.append(attachment.id)
    if gone:
        await AttachmentRepository(session).forget(gone)
        await session.commit()
    return len(gone)


async def remove_withdrawn(session: AsyncSession, store: FileStore, ids: list[uuid.UUID]) -> int:
    """Right after the commit that withdrew them; the janitor does it if this cannot."""
    repository = AttachmentRepository(session)
    found = [a for a in [await repository.get(i) for i in ids] if a is not None]
    return await remove(session, store, found)


async def remove_abandoned(session: AsyncSession, store: FileStore, settings: Settings) -> int:
    """The janitor's round (worker): withdrawn files, files of deleted rooms, messages or
    people, and uploads never posted within attachment_unposted_hours."""
    found = await AttachmentRepository(session).abandoned(settings.attachment_unposted_hours)
    return await remove(session, store, found)


def _text_of(attachment: Attachment, data: bytes, max_pages: int) -> str:
    if attachment.kind == "text":
        return data.decode("utf-8")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ApiError(422, "pdf_encrypted", "the PDF is encrypted")
        if len(reader.pages) > max_pages:
            raise ApiError(413, "pdf_too_long", f"the PDF has over {max_pages} pages")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError):
        raise ApiError(422, "pdf_unreadable", "the PDF's text could not be read") from None
    return "\n\n".join(p.strip() for p in pages if p.strip())


async def add_to_knowledge(
    session: AsyncSession, settings: Settings, store: FileStore, user: User, attachment: Attachment
) -> KnowledgeDocument:
    """A posted text or PDF file becomes a document of its room's knowledge (one call, once)."""
    if attachment.kind not in ("text", "pdf"):
        raise ApiError(422, "not_knowledge", "only text and PDF files can become knowledge")
    if attachment.message_id is None or attachment.room_id is None:
        raise ApiError(409, "attachment_not_posted", "post the file in the room first")
    if attachment.knowledge_document_id is not None:
        raise ApiError(409, "already_knowledge", "this file is already in the room's knowledge")
    room, _ = await room_for_member(session, attachment.room_id, user)
    ensure_writable(room)
    data = await content(store, attachment)
    text = (
        await asyncio.to_thread(_text_of, attachment, data, settings.attachment_pdf_max_pages)
    ).replace("\x00", "")
    if not text.strip():
        raise ApiError(422, "empty_content", "the file has no text (a scan needs OCR first)")
    size = len(text.encode())
    if size > settings.knowledge_max_bytes:
        raise ApiError(
            413,
            "content_too_large",
            f"the file's text is {size} bytes; the limit is {settings.knowledge_max_bytes}",
        )
    document = await KnowledgeRepository(session).create(
        room.org_id, user.id, "room", room.id, attachment.name[:200], text
    )
    attachment.knowledge_document_id = document.id
    await session.flush()
    return document
