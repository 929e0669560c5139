"""Alembic environment: migrations run on a synchronous psycopg connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from erp.schema import metadata as target_metadata_all

config = context.config
target_metadata = target_metadata_all


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "the migration needs a database URL"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
