"""The Alembic migrations build exactly the schema the models describe, with one head."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from iaf.db.engine import with_driver
from iaf.db.migrate import alembic_config
from iaf.db.models import Base


def test_models_and_migrations_agree(database_url):
    engine = create_engine(with_driver(database_url, "psycopg"))
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_history_has_a_single_head(database_url):
    heads = ScriptDirectory.from_config(alembic_config(database_url)).get_heads()
    assert len(heads) == 1, heads
