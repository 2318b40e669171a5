"""What each task queue runs. Add a workflow or activity class here to have workers serve it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from iaf.activities.database import ChatDatabaseActivities
from iaf.settings import Settings
from iaf.workflows.route_message import RouteMessage


@dataclass
class WorkerClients:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client


def main_workflows() -> Sequence[type]:
    return [RouteMessage]


def main_activities(clients: WorkerClients) -> Sequence[Callable[..., Any]]:
    chat_db = ChatDatabaseActivities(clients.sessionmaker)
    return [chat_db.record_mentions]


def retrieval_activities(clients: WorkerClients) -> Sequence[Callable[..., Any]]:
    """Activities that touch Qdrant; in local mode exactly one process may run them (rule 6)."""
    return []
