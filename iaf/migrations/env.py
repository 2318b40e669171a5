"""Alembic environment: runs against settings.database_url (or the URL given in config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from iaf.db.engine import with_driver
from iaf.db.models import Base
from iaf.settings import get_settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations() -> None:
    engine = create_engine(with_driver(url, "psycopg"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
