"""Work shared by CLI commands and the dev stack."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)

from iaf.db.migrate import upgrade
from iaf.search_attributes import SEARCH_ATTRIBUTES
from iaf.settings import Settings
from iaf.temporal_client import connect


async def ensure_search_attributes(settings: Settings) -> None:
    """Production servers need them registered once; the dev server gets them at start."""
    client = await connect(settings)
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=settings.temporal_namespace)
    )
    missing = {
        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in SEARCH_ATTRIBUTES.items()
        if name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=settings.temporal_namespace, search_attributes=missing
            )
        )


async def migrate_all(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings.database_url)
    for attempt in range(60):
        try:
            await ensure_search_attributes(settings)
            return
        except Exception as exc:
            if attempt == 59:
                # Workflows cannot start without them: fail the deploy rather than limp on.
                raise RuntimeError(f"could not register Temporal search attributes: {exc}") from exc
            await asyncio.sleep(0.5)
