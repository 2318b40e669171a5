"""Activities that embed text and talk to Qdrant (settings.temporal_retrieval_task_queue).

In the embedded stack one worker serves this queue, because the embedded Qdrant (Edge) admits
one process (DESIGN rule 6); in production every worker does. The embedding model and the
vector store are built once per worker process and injected here.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import OrderedDict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from iaf.agents.context import (
    HistoryItem,
    clean_query,
    merge_hits,
    refine_query,
    select_history,
)
from iaf.agents.intent import route_by_keywords
from iaf.agents.registry import AgentPersona, get_registry
from iaf.db.models import AgentRun, Room
from iaf.db.repositories.agents import AgentRunRepository
from iaf.db.repositories.knowledge import KnowledgeRepository
from iaf.db.repositories.knowledge_chunks import KnowledgeChunkRepository
from iaf.db.repositories.memories import MemoryRepository
from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.room_audience import RoomAudienceRepository
from iaf.db.repositories.room_vector_removals import RoomVectorRemovalRepository
from iaf.retrieval.embedder import Embedder
from iaf.retrieval.indexing import KnowledgeIndexer
from iaf.retrieval.store import KNOWLEDGE, MEMORIES, Hit, SearchQuery, VectorStore
from iaf.settings import Settings
from schemas.agents import ContextRequest, ContextSummary
from schemas.chat import MessageOut
from schemas.knowledge import (
    DocumentRef,
    IndexResult,
    IngestResult,
    MemoryRef,
    RemoveVectorsInput,
)

CONTEXT_NOT_SERVED = "RetrievalNotServedHere"


_TOKEN_COUNTS: OrderedDict[bytes, int] = OrderedDict()
_TOKEN_COUNTS_KEPT = 8192


def count_tokens(text: str) -> int:
    """Tokens of one history message, remembered by a hash of the text (every reply in a room
    recounts the same recent messages; the texts themselves are not kept, so erasing a
    person's messages leaves nothing of them here)."""
    import litellm

    key = hashlib.blake2b(text.encode(), digest_size=16).digest()
    if (tokens := _TOKEN_COUNTS.get(key)) is not None:
        _TOKEN_COUNTS.move_to_end(key)
        return tokens
    tokens = max(1, int(litellm.token_counter(text=text)))
    _TOKEN_COUNTS[key] = tokens
    if len(_TOKEN_COUNTS) > _TOKEN_COUNTS_KEPT:
        _TOKEN_COUNTS.popitem(last=False)
    return tokens


class RetrievalActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: VectorStore,
        embedder: Embedder,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.indexer = KnowledgeIndexer(sessionmaker, store, embedder, settings)

    # --- agent reply context --------------------------------------------------------------

    @activity.defn(name="build_reply_context")
    async def build_reply_context(self, request: ContextRequest) -> ContextSummary:
        """Assemble (step 0) or widen (later steps) the reply's context in agent_runs.context.

        The query is embedded on the embedder's thread while the room history is read."""
        async with self.sessionmaker() as session:
            runs = AgentRunRepository(session)
            run = await runs.get(request.reply_id)
            if run is None:
                raise ApplicationError("no such reply", type="ReplyMissing", non_retryable=True)
            persona = get_registry().get(run.agent_id)
            room = await session.get(Room, run.room_id)
            if persona is None or room is None:
                raise ApplicationError(
                    "agent or room gone", type="ReplyMissing", non_retryable=True
                )
            context = run.context if request.step > 0 and run.context else None
            query: str | None
            if context is None:
                question = await self._question(session, run)
                query = clean_query(question["text"])
                embedding = self._embed_soon(query)
                try:
                    context = await self._base_context(session, run, question)
                except BaseException:
                    if embedding is not None:
                        embedding.cancel()
                    raise
            else:
                query = refine_query(
                    context["question"]["text"], request.step, context["history"], persona
                )
                embedding = self._embed_soon(query)
            if embedding is not None and query:
                vector = (await embedding)[0]
                await self._retrieve(
                    session, run, room, persona, context, query, vector, request.step
                )
            if request.step == 0:
                context["handoff_hint"] = self._handoff_hint(
                    run, persona, context["question"]["text"], context
                )
                if room.kind == "project" and room.topic:
                    context["brief"] = room.topic  # agents in a project room work from it
            await runs.update(run.reply_id, context=context)
            await session.commit()
        return self._summary(request.step, context, persona)

    def _embed_soon(self, query: str | None) -> asyncio.Future[list[list[float]]] | None:
        return asyncio.ensure_future(self.embedder.embed([query])) if query else None

    @staticmethod
    async def _question(session: AsyncSession, run: AgentRun) -> dict[str, Any]:
        root_id = run.root_message_id or run.message_id
        root = await MessageRepository(session).get(root_id)
        if root is None:
            raise ApplicationError("the message is gone", type="ReplyMissing", non_retryable=True)
        return {
            "message_id": root_id,
            "text": root[0].content if root[0].deleted_at is None else "",
            "handed_over_by": None,
        }

    async def _base_context(
        self, session: AsyncSession, run: AgentRun, question: dict[str, Any]
    ) -> dict[str, Any]:
        messages = MessageRepository(session)
        root_id = question["message_id"]
        page = await messages.page(
            run.room_id,
            before=run.message_id + 1,
            after=None,
            limit=self.settings.reply_history_max_messages + 1,
        )
        # A reply drawn from organisation documents stays out of what guests will read.
        guests = bool((await RoomAudienceRepository(session).of_room_id(run.room_id)).guests)
        newest_first = [
            self._history_item(m, run.agent_id)
            for m in reversed(page)
            if m.id != root_id
            and m.deleted_at is None
            and m.type != "system"
            and m.content
            and not (guests and m.org_knowledge)
        ]
        history = select_history(newest_first, self.settings.reply_history_token_budget)
        if run.root_message_id is not None and run.message_id != run.root_message_id:
            trigger = await messages.get(run.message_id)
            question["handed_over_by"] = trigger[0].sender_agent_id if trigger else None
        return {
            "question": question,
            "history": [item.__dict__ for item in history],
            "sources": [],
            "memories": [],
            "steps": [],
            "handoff_hint": None,
        }

    @staticmethod
    def _history_item(message: MessageOut, agent_id: str) -> HistoryItem:
        own = message.sender_agent_id == agent_id
        name = message.sender_name or "someone"
        if message.sender_agent_id:
            name = f"@{message.sender_agent_id}"
        return HistoryItem(
            message_id=message.id,
            role="assistant" if own else "user",
            name=name,
            text=message.content,
            tokens=count_tokens(message.content),
        )

    async def _retrieve(
        self,
        session: AsyncSession,
        run: AgentRun,
        room: Room,
        persona: AgentPersona,
        context: dict[str, Any],
        query: str,
        vector: list[float],
        step: int,
    ) -> None:
        """One retrieval step: knowledge and memories merged into the context, best first.

        What is retrieved ends up in a reply every member reads (docs/privacy.md):
        organisation documents only when no guest is in the room, the requester's memories
        only in a room nobody but them ever reads (a /v1 conversation, a direct room with
        agents only)."""
        top_k = self.settings.retrieval_top_k
        search = SearchQuery(
            query, vector, self.settings.retrieval_mode, self.settings.retrieval_candidates
        )
        audience = await RoomAudienceRepository(session).of(room)
        sources = []
        if persona.retrieval_scope != "none":
            include_org = persona.retrieval_scope == "org+room" and not audience.guests
            sources = await self._sources(session, room, search, include_org, top_k)
        memories = []
        if audience.private_to(run.requested_by):
            memories = await self._memories(session, run, room, search)
        context["sources"] = merge_hits(
            context["sources"], sources, lambda s: (s["document_id"], s["chunk"]), top_k
        )
        context["memories"] = merge_hits(
            context["memories"], memories, lambda m: m["memory_id"], self.settings.memory_top_k
        )
        best = max((s["score"] for s in sources), default=0.0)
        context["steps"].append(
            {"step": step, "query": query, "hits": len(sources), "best_score": best}
        )

    async def _sources(
        self,
        session: AsyncSession,
        room: Room,
        search: SearchQuery,
        include_org: bool,
        top_k: int,
    ) -> list[dict[str, Any]]:
        """Chunks of the room's (and the org's) ready documents, their text from PostgreSQL;
        a point whose document is being deleted or belongs elsewhere finds no passage."""
        hits = await self.store.search_knowledge(
            search, str(room.org_id), str(room.id), include_org=include_org, limit=top_k
        )
        keys = [(uuid.UUID(h.payload["document_id"]), int(h.payload["chunk"])) for h in hits]
        passages = await KnowledgeChunkRepository(session).ready_passages(keys, room.org_id)
        return [
            {
                "label": passages[key][0],
                "document_id": str(key[0]),
                "chunk": key[1],
                "score": _relevance(hit),
                "text": passages[key][1],
                # An organisation-wide document: the reply is for the organisation's people.
                "org": hit.payload.get("room_id") is None,
            }
            for key, hit in zip(keys, hits, strict=True)
            if key in passages
        ]

    async def _memories(
        self, session: AsyncSession, run: AgentRun, room: Room, search: SearchQuery
    ) -> list[dict[str, Any]]:
        """The requester's ready memories in the room's organisation."""
        if run.requested_by is None:
            return []
        found = await self.store.search_memories(
            search, str(run.requested_by), str(room.org_id), self.settings.memory_top_k
        )
        texts = await MemoryRepository(session).ready_contents(
            [uuid.UUID(h.payload["memory_id"]) for h in found], run.requested_by
        )
        return [
            {
                "memory_id": h.payload["memory_id"],
                "score": _relevance(h),
                "text": texts[uuid.UUID(h.payload["memory_id"])],
            }
            for h in found
            if uuid.UUID(h.payload["memory_id"]) in texts
        ]

    def _handoff_hint(
        self, run: AgentRun, persona: AgentPersona, question: str, context: dict[str, Any]
    ) -> str | None:
        """Another agent, when the question is plainly theirs and nothing here helps this one."""
        if run.depth > 0 or self.settings.agent_max_handoff_depth <= 0:
            return None
        routed = route_by_keywords(question, get_registry())
        best = max((s["score"] for s in context["sources"]), default=0.0)
        if (
            routed.agent_id is not None
            and routed.agent_id != persona.id
            and routed.agent_id in persona.handoff_to
            and routed.scores.get(persona.id, 0) == 0
            and routed.scores[routed.agent_id] >= 2
            and best < self.settings.retrieval_min_score
        ):
            return routed.agent_id
        return None

    def _summary(self, step: int, context: dict[str, Any], persona: AgentPersona) -> ContextSummary:
        last = context["steps"][-1] if context["steps"] else {"hits": 0, "best_score": 0.0}
        question = context["question"]["text"]
        next_query = refine_query(question, step + 1, context["history"], persona)
        return ContextSummary(
            step=step,
            history_messages=len(context["history"]),
            history_tokens=sum(int(h["tokens"]) for h in context["history"]),
            hits=len(context["sources"]),
            best_score=max(
                [float(last["best_score"])] + [float(s["score"]) for s in context["sources"]]
            ),
            memories=len(context["memories"]),
            # No hit at all means no document in scope: a broader query cannot find one.
            can_refine=bool(context["sources"]) and next_query is not None,
            suggested_handoff=context.get("handoff_hint"),
        )

    # --- knowledge ingestion and removal ---------------------------------------------------

    @activity.defn(name="ingest_knowledge_document")
    async def ingest_document(self, ref: DocumentRef) -> IngestResult:
        """Chunk, embed and store in batches, progress on the document; a retry resumes after
        the last batch its previous attempt stored (reported in its heartbeats)."""
        details = activity.info().heartbeat_details
        resume_at = int(details[0]) if details else 0
        outcome = await self.indexer.document(
            ref.document_id, resume_at=resume_at, on_batch=activity.heartbeat
        )
        return IngestResult(status=outcome.status, chunks=outcome.chunks)

    @activity.defn(name="index_memory")
    async def index_memory(self, ref: MemoryRef) -> IndexResult:
        return IndexResult(status=(await self.indexer.memory(ref.memory_id)).status)

    @activity.defn(name="remove_vectors")
    async def remove_vectors(self, input: RemoveVectorsInput) -> IndexResult:
        """Delete the item's points, then its row (locked, so an ingestion cannot slip in).
        A deleted room's rows are gone already: its points go, then the note to do so."""
        async with self.sessionmaker() as session:
            if input.kind == "room":
                await self.store.delete_where(KNOWLEDGE, "room_id", str(input.item_id))
                await RoomVectorRemovalRepository(session).done(input.item_id)
            elif input.kind == "document":
                knowledge = KnowledgeRepository(session)
                await knowledge.get(input.item_id, for_update=True)
                await self.store.delete_where(KNOWLEDGE, "document_id", str(input.item_id))
                await knowledge.delete(input.item_id)
            else:
                memories = MemoryRepository(session)
                await memories.get(input.item_id, for_update=True)
                await self.store.delete_where(MEMORIES, "memory_id", str(input.item_id))
                await memories.delete(input.item_id)
            await session.commit()
        return IndexResult(status="removed")


def _relevance(hit: Hit) -> float:
    """The dense cosine when there is one: what retrieval_min_score is measured against."""
    return round(hit.similarity if hit.similarity is not None else hit.score, 4)


class ContextElsewhere:
    """What a worker that does not serve retrieval registers under the context step's name.

    AgentReply builds context as a local activity when its worker said it serves retrieval;
    should the workflow move to a worker that does not (its worker died), this refusal sends
    it to the retrieval task queue instead, and the refusal is recorded, so replay agrees."""

    @activity.defn(name="build_reply_context")
    async def build_reply_context(self, request: ContextRequest) -> ContextSummary:
        raise ApplicationError(
            "this worker does not serve retrieval", type=CONTEXT_NOT_SERVED, non_retryable=True
        )
