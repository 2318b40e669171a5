"""What each task queue runs. Add a workflow or activity class here to have workers serve it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.accounts import AccountActivities
from activities.agents_db import AgentDbActivities, KnowledgeDbActivities
from activities.chat_db import ChatDbActivities
from activities.crawler import CrawlerActivities
from activities.gdpr_database import GdprDatabaseActivities
from activities.gdpr_qdrant import GdprQdrantActivities
from activities.invitations import InvitationActivities
from activities.ledger import LedgerActivities
from activities.llm import LlmActivities
from activities.mail import MailActivities
from activities.notifications import NotificationActivities
from activities.retrieval import ContextElsewhere, RetrievalActivities
from activities.team_db import TeamDbActivities
from activities.temporal_admin import TemporalAdminActivities
from iaf.retrieval.embedder import Embedder, make_embedder
from iaf.retrieval.qdrant import make_vector_backend
from iaf.retrieval.store import VectorStore
from iaf.retrieval.vectors import VectorBackend
from iaf.settings import Settings
from workflows.agent_reply import AgentReply
from workflows.crawl_knowledge import CrawlKnowledge
from workflows.data_export import DataExport
from workflows.email_change_mail import EmailChangeMail
from workflows.erasure import Erasure
from workflows.index_memory import IndexMemory
from workflows.ingest_knowledge import IngestKnowledge
from workflows.invitation import Invitation
from workflows.notification_digest import NotificationDigest
from workflows.password_reset import PasswordReset
from workflows.referral import Referral
from workflows.remove_vectors import RemoveVectors
from workflows.route_message import RouteMessage
from workflows.team_reply import TeamReply


@dataclass
class WorkerClients:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client
    # Built on first use by whichever feature needs it: the embedded store admits one process.
    vectors: VectorBackend | None = None
    # The embedding model, loaded once per process by the worker that serves retrieval.
    embedder: Embedder | None = None
    retrieval: RetrievalActivities | None = None


def main_workflows() -> Sequence[type]:
    return [
        RouteMessage,
        Invitation,
        Referral,
        DataExport,
        Erasure,
        AgentReply,
        IngestKnowledge,
        IndexMemory,
        RemoveVectors,
        EmailChangeMail,
        PasswordReset,
        CrawlKnowledge,
        TeamReply,
        NotificationDigest,
    ]


def main_activities(clients: WorkerClients, serves_retrieval: bool) -> Sequence[Callable[..., Any]]:
    """The main queue's activities. A worker that also serves retrieval registers the context
    step here too, so AgentReply runs it as a local activity (no task-queue hop before the
    first token); one that does not registers a refusal that sends AgentReply to the queue."""
    chat_db = ChatDbActivities(clients.sessionmaker, clients.settings)
    context = (
        shared_retrieval(clients).build_reply_context
        if serves_retrieval
        else ContextElsewhere().build_reply_context
    )
    return [
        chat_db.record_mentions,
        context,
        *agent_activities(clients, serves_retrieval),
        *invitation_activities(clients),
        *gdpr_activities(clients),
        *crawler_activities(clients),
    ]


def crawler_activities(clients: WorkerClients) -> list[Callable[..., Any]]:
    """Knowledge from the web: HTTP to the allowed hosts, PostgreSQL, ingestion starts."""
    crawler = CrawlerActivities(clients.sessionmaker, clients.temporal, clients.settings)
    return [crawler.plan, crawler.page, crawler.finish]


def agent_activities(clients: WorkerClients, serves_retrieval: bool) -> list[Callable[..., Any]]:
    """Agent replies (local database steps, LLM streaming, intent) and knowledge bookkeeping."""
    agents = AgentDbActivities(
        clients.sessionmaker,
        clients.temporal,
        clients.settings,
        serves_retrieval=serves_retrieval,
        context=shared_retrieval(clients).build_reply_context if serves_retrieval else None,
    )
    knowledge = KnowledgeDbActivities(clients.sessionmaker)
    llm = LlmActivities(clients.sessionmaker, clients.settings)
    team = TeamDbActivities(clients.sessionmaker, clients.temporal, clients.settings)
    return [
        agents.start_replies,
        team.start_team,
        team.begin_team,
        team.gather_answers,
        team.close_team,
        agents.begin_reply,
        agents.begin_reply_with_context,
        agents.persist_reply,
        agents.settle_reply,
        agents.abort_reply,
        knowledge.mark_document_failed,
        knowledge.mark_memory_failed,
        llm.stream_reply,
        llm.classify_intent,
    ]


def invitation_activities(clients: WorkerClients) -> list[Callable[..., Any]]:
    """Invitations, referrals, notification digests, and their mail and ledger steps."""
    invitations = InvitationActivities(clients.sessionmaker, clients.temporal, clients.settings)
    mail = MailActivities(clients.sessionmaker, clients.settings)
    ledger = LedgerActivities(clients.sessionmaker, clients.settings)
    accounts = AccountActivities(clients.sessionmaker)
    notifications = NotificationActivities(clients.sessionmaker, clients.temporal, clients.settings)
    return [
        accounts.load_password_reset,
        accounts.expire_password_reset,
        mail.send_password_reset_mail,
        notifications.notify,
        notifications.digest_due,
        mail.send_digest,
        invitations.load_invitation_schedule,
        invitations.close_invitation,
        invitations.start_referral,
        invitations.load_referral,
        invitations.expire_referral,
        mail.send_invitation_mail,
        mail.send_email_change_mail,
        ledger.grant_referral,
    ]


def gdpr_activities(clients: WorkerClients) -> list[Callable[..., Any]]:
    """GDPR export and erasure steps that need PostgreSQL or Temporal."""
    db = GdprDatabaseActivities(clients.sessionmaker, clients.settings)
    admin = TemporalAdminActivities(clients.sessionmaker, clients.temporal, clients.settings)
    return [
        db.erasure_plan,
        db.erasure_begin,
        db.mark_cancelled,
        db.mark_failed,
        db.freeze,
        db.anonymise,
        db.delete_private,
        db.delete_account,
        db.audit,
        db.verify_postgres,
        db.verify_exports,
        db.verify_files,
        db.finish_erasure,
        db.export_plan,
        db.export_archive,
        db.export_expire,
        admin.cancel_workflows,
        admin.delete_workflows,
        admin.verify_temporal,
    ]


def shared_vectors(clients: WorkerClients) -> VectorBackend:
    if clients.vectors is None:
        clients.vectors = make_vector_backend(clients.settings)
    return clients.vectors


def retrieval_activities(clients: WorkerClients) -> Sequence[Callable[..., Any]]:
    """Activities that touch Qdrant; with the embedded store one process runs them (rule 6)."""
    gdpr = GdprQdrantActivities(clients.sessionmaker, shared_vectors(clients))
    retrieval = shared_retrieval(clients)
    return [
        gdpr.delete_vectors,
        gdpr.verify_qdrant,
        retrieval.build_reply_context,
        retrieval.ingest_document,
        retrieval.index_memory,
        retrieval.remove_vectors,
    ]


def shared_retrieval(clients: WorkerClients) -> RetrievalActivities:
    if clients.retrieval is None:
        clients.retrieval = RetrievalActivities(
            clients.sessionmaker,
            VectorStore(shared_vectors(clients)),
            shared_embedder(clients),
            clients.settings,
        )
    return clients.retrieval


def shared_embedder(clients: WorkerClients) -> Embedder:
    if clients.embedder is None:
        clients.embedder = make_embedder(clients.settings.embedding_model)
    return clients.embedder
