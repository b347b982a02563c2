"""Alembic environment: runs online against the URL set by gate_server.db.session.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from gate_server.db.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url is set by gate_server.db.session.migrate"
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
